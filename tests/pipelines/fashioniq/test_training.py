import pytest
import torch

from fashiongan.config import (
    ConditionalTraining,
    ConfigError,
    TrainingItems,
    load_parameters,
    parse_block,
)
from fashiongan.pipelines.fashioniq.nodes import make_training_items, training_input
from fashiongan.training.conditional import train_conditional_gan
from tests.conftest import REPO_ROOT
from tests.model_configs import BUNDLED_FEATURES
from tests.pipelines.fashioniq.conftest import EXPECTED_IDENTITY, EXPECTED_TRAIN_PAIRS, asin

TINY_TRAINING = {
    "seed": 0,
    "device": "cpu",
    "epochs": 1,
    "batch_size": EXPECTED_TRAIN_PAIRS + EXPECTED_IDENTITY,  # one step
    "loss": "hinge",
    "real_label": 0.9,
    "gp_lambda": 10.0,
    "n_critic": 1,
    "g_lr": 1e-4,
    "d_lr": 4e-4,
    "g_betas": [0.0, 0.9],
    "d_betas": [0.0, 0.9],
    "e_lr": 1e-3,
    "triplet_margin": 0.2,
    "triplet_weight": 1.0,
    "diversity_weight": 1.0,
    "text_kl_weight": 1.0,
    "image_drop": 0.1,
    "log_every": 1,
    "sample_columns": 2,
    "checkpoint_dir": None,
    "resume": False,
    "model": {
        "stages": 4,
        "noise_dim": 8,
        "text_channels": 2,
        "noise_channels": 2,
        "text_code_dim": 0,
        "g_channels": 4,
        "d_channels": 4,
        "embed_dim": 8,
        "minibatch_std": False,
    },
    "embedding": {"width": 4, "dim": 8},
}


def test_training_items_point_at_the_candidates(ingested):
    _, _, (images, items, pairs, _, _) = ingested
    training = make_training_items(pairs, TrainingItems(identity_caption="is the same"))
    kinds = training["kind"].value_counts().to_dict()
    assert kinds == {"pair": EXPECTED_TRAIN_PAIRS, "identity": EXPECTED_IDENTITY}
    assert list(training["index"]) == list(range(len(training)))
    train = pairs[pairs["split"] == "train"].reset_index(drop=True)
    rows = training["image_row"].to_numpy()
    reference_rows = rows[training["reference_index"].to_numpy()]
    # every pair: the item is its target, the reference item holds its candidate picture
    assert (rows[: len(train)] == train["target_row"].to_numpy()).all()
    assert (reference_rows[: len(train)] == train["candidate_row"].to_numpy()).all()
    identity = training[training["kind"] == "identity"]
    assert (identity["reference_index"] == identity["index"]).all()
    assert (identity["caption"] == "is the same").all()
    # dress train g1 is a candidate only (its target-side pair lost g5's picture)
    assert asin("dress", "train", 1) in set(identity["candidate"])
    assert (training["caption"] == training["modification"]).all()
    assert set(training["label"]) == {0, 1, 2}


def test_one_training_step_at_64x64_rgb(ingested):
    _, _, (images, _, pairs, _, _) = ingested
    training = make_training_items(pairs, TrainingItems(identity_caption="is the same"))
    n = len(training)
    texts = sorted(set(training["caption"]))
    text_index = torch.tensor([texts.index(t) for t in training["caption"]])
    table = torch.nn.functional.normalize(
        torch.randn(len(texts), 8, generator=torch.Generator().manual_seed(0)), dim=1
    )
    conditioning = {
        "text_embeddings": table,
        "caption_index": text_index,
        "reference_index": torch.tensor(training["reference_index"].to_numpy()),
        "modification_index": text_index,
        "sample_text": table[:2],
    }
    pictures = images["images"][torch.as_tensor(training["image_row"].to_numpy())].float()
    labels = torch.as_tensor(training["label"].to_numpy())
    params = ConditionalTraining.model_validate(
        load_parameters(REPO_ROOT / "conf")["fashioniq"].training.model_dump() | TINY_TRAINING
    )
    generator, _, embedder, history = train_conditional_gan(
        pictures, labels, conditioning, params, ["a", "b"], model_extra=BUNDLED_FEATURES
    )
    assert pictures.shape == (n, 3, 64, 64)
    assert len(history) == 1 and all(torch.isfinite(torch.tensor(v)) for v in history[0].values())
    assert generator.config.image_size == 64 and generator.config.channels == 3
    with torch.no_grad():
        out = generator(torch.randn(2, 8), table[:2], pictures[:2])
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    assert embedder(out).shape == (2, 8)


def test_training_input_gathers_the_items_and_fingerprints_them(ingested):
    _, _, (images, _, pairs, _, _) = ingested
    items = make_training_items(pairs, TrainingItems(identity_caption="is the same"))
    encoder = load_parameters(REPO_ROOT / "conf")["fashioniq"].text_encoder
    model_input = training_input(images, items, encoder)
    rows = torch.as_tensor(items["image_row"].to_numpy())
    assert torch.equal(model_input["train_images"], images["images"][rows].float())
    assert model_input["train_labels"].tolist() == items["label"].tolist()
    size, digest = model_input["data_fingerprint"].tolist()
    assert size == len(items)
    # another item list (one caption changed) is other data: another fingerprint
    changed = items.assign(caption=items["caption"].where(items.index != 0, "is green"))
    assert training_input(images, changed, encoder)["data_fingerprint"][1] != digest
    shuffled = items.sample(frac=1, random_state=0)  # row order is not what the data is
    assert training_input(images, shuffled, encoder)["data_fingerprint"][1] == digest


def test_fine_tuning_bert_is_refused_for_fashioniq():
    """Its evaluation encodes queries with the frozen BERT, so a tuned one would not match."""
    raw = load_parameters(REPO_ROOT / "conf")["fashioniq"].model_dump()
    raw["text_encoder"]["trainable_top_layers"] = 1
    with pytest.raises(
        ConfigError, match=r"fashioniq\.text_encoder\.trainable_top_layers: input should be 0"
    ):
        parse_block("fashioniq", raw)
