import copy
import hashlib
import json
import math

import pytest
import torch
from kedro.io import DatasetError
from pydantic import ValidationError
from safetensors.torch import load_file

from fashiongan.config import load_parameters, overridden
from fashiongan.training.conditional import build_models, fingerprint, train_conditional_gan
from tests.conftest import REPO_ROOT, draw_items
from tests.model_configs import BUNDLED_FEATURES, text_encoder_params

N, U, D = 64, 10, 12
#: conf/base's block, shrunk: 4 steps an epoch of a 4-channel model.
PARAMS = overridden(
    load_parameters(REPO_ROOT / "conf")["conditional"].training,
    seed=5, device="cpu", num_threads=1, ema_decay=None, epochs=3, batch_size=16, loss="hinge",
    n_critic=1, real_label=0.9, gp_lambda=10.0, image_drop=0.5, g_lr=1e-4, d_lr=4e-4, e_lr=1e-3, g_betas=(0.0, 0.9),
    d_betas=(0.0, 0.9), triplet_margin=0.2, triplet_weight=1.0, diversity_weight=1.0,
    aux_weight=0.0, log_every=3, sample_columns=2, checkpoint_dir=None,
    model__g_channels=4, model__d_channels=4, model__text_channels=2, model__noise_channels=2,
    model__embed_dim=8, model__noise_dim=4, model__minibatch_std=False, model__text_code_dim=0,
    embedding__width=4, embedding__dim=8,
)  # fmt: skip


def with_(**changes):
    """PARAMS with ``changes``, validated again."""
    return overridden(PARAMS, **changes)


def train(*args, **kwargs):
    """:func:`train_conditional_gan`, G's config naming the bundled MiniLM as the features'
    encoder unless the test names another (``model_extra``)."""
    return train_conditional_gan(*args, **{"model_extra": BUNDLED_FEATURES} | kwargs)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(N, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.arange(N) % 4
    conditioning = {
        "text_embeddings": torch.randn(U, D, generator=g),
        "caption_index": torch.randint(0, U, (N,), generator=g),
        "reference_index": torch.randint(0, N, (N,), generator=g),
        "modification_index": torch.randint(0, U, (N,), generator=g),
        "sample_text": torch.randn(2, D, generator=g),
    }
    return images, labels, conditioning


@pytest.mark.parametrize("loss", ["bce", "wgan-gp", "hinge"])
def test_each_loss_trains_and_changes_weights(data, loss):
    params = with_(loss=loss, epochs=1, n_critic=2 if loss == "wgan-gp" else 1)
    torch.manual_seed(params.seed)  # as the trainer seeds before building: its initial weights
    initial = build_models(params, data[0], D, aux_classes=(), model_extra=BUNDLED_FEATURES)
    trained = train(*data, params)
    history = trained[3]
    assert len(history) >= 1 and all(
        torch.isfinite(torch.tensor(list(r.values()))).all() for r in history
    )
    assert trained[0].config.text_dim == D
    for before, after in zip(initial, trained[:3], strict=True):
        unchanged = [
            name
            for (name, a), b in zip(before.named_parameters(), after.parameters(), strict=True)
            if torch.equal(a, b)
        ]
        # Hinge (with every score inside its margin, as at the start) and WGAN are linear in
        # the scores with weights −1 (real), ½ (fake), ½ (wrong caption): D's output bias gets
        # no gradient from them. BCE's does.
        frozen_by_the_loss = ["out.bias"] if loss != "bce" and before is initial[1] else []
        assert unchanged == frozen_by_the_loss, f"{type(after).__name__} did not train {unchanged}"


def test_checkpoint_resume_reproduces_uninterrupted_run(data, tmp_path, monkeypatch):
    g_full, _, e_full, history = train(*data, PARAMS)

    class Killed(BaseException):
        pass

    def die_at_step_9(step, **losses):  # mid-epoch 3 (4 steps an epoch)
        if step == 9:
            raise Killed

    checkpoints = str(tmp_path / "ckpt")
    monkeypatch.setattr("fashiongan.training.loop.check_finite", die_at_step_9)
    with pytest.raises(Killed):
        train(*data, with_(checkpoint_dir=checkpoints))
    monkeypatch.undo()
    assert (
        sorted(p.name for p in (tmp_path / "ckpt").rglob("ckpt-*"))[-1]
        == "ckpt-000000008.safetensors"
    )
    g_resumed, _, e_resumed, resumed_history = train(*data, with_(checkpoint_dir=checkpoints))
    assert resumed_history == history
    for full, resumed in ((g_full, g_resumed), (e_full, e_resumed)):
        for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize(
    "override,message",
    [
        ({"loss": "lsgan"}, "loss"),
        ({"epochs": 0}, "epochs"),
        ({"image_drop": 2}, "image_drop"),
        ({"aux_weight": -1}, "aux_weight"),
        ({"text_lr": 0.0}, "text_lr"),
    ],
)
def test_out_of_range_parameters_are_refused_by_the_block(override, message):
    with pytest.raises(ValidationError, match=message):
        with_(**override)


@pytest.mark.parametrize(
    "override,message",
    [
        ({"aux_weight": 1.0}, "aux_weight needs \\['item_attributes', 'text_attributes'\\]"),
        ({"batch_size": N + 1}, f"batch_size {N + 1} is larger than the {N} training images"),
    ],
)
def test_what_only_the_data_can_tell_is_a_clear_error(data, override, message):
    with pytest.raises(ValueError, match=message):
        train(*data, with_(**override))


@pytest.fixture
def attributed(data):
    """The fixture plus what the caption grammar knows: stated (-1 = not) and true attributes."""
    images, labels, conditioning = data
    g = torch.Generator().manual_seed(1)
    return (
        images,
        labels,
        {
            **conditioning,
            "text_attributes": torch.randint(-1, 3, (U, 3), generator=g),
            "item_attributes": torch.randint(0, 3, (N, 3), generator=g),
        },
    )


def test_auxiliary_heads_train_and_resume_exactly(attributed, tmp_path):
    images, labels, conditioning = attributed
    params = with_(aux_weight=0.5, epochs=2, log_every=4)  # 4 steps an epoch
    _, discriminator, _, history = train(images, labels, conditioning, params)
    checkpoints = str(tmp_path / "ckpt")
    train(images, labels, conditioning, overridden(params, checkpoint_dir=checkpoints, epochs=1))
    _, resumed, _, resumed_history = train(
        images, labels, conditioning, overridden(params, checkpoint_dir=checkpoints)
    )
    assert resumed_history == history
    for a, b in zip(
        discriminator.state_dict().values(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_auxiliary_classifier_term(attributed, tmp_path):
    from fashiongan.datasets import TorchModelDataset

    _, labels, conditioning = attributed
    # Items whose class shows (a box of a width and tone per class): a class head can learn it.
    images = torch.from_numpy(draw_items(labels.numpy())).float()[:, None] / 127.5 - 1
    params = with_(aux_weight=1.0, epochs=6, d_lr=1e-2)
    generator, discriminator, _, history = train(images, labels, conditioning, params)
    assert discriminator.config.aux_classes == (4, 3, 3, 3)  # 4 classes in the fixture
    assert {"d_aux_loss", "g_aux_loss"} <= set(history[-1])
    # D learns to name the real items' class: its class head's cross-entropy falls below
    # chance, ln 4 (measured 0.88-0.96 over seeds 5-7; 1.39-1.47 with D's aux term zeroed).
    captions = conditioning["text_embeddings"][conditioning["caption_index"]]
    with torch.no_grad():
        _, (class_logits, *_) = discriminator(images, captions, aux=True)
    assert torch.nn.functional.cross_entropy(class_logits, labels) < math.log(4) - 0.2
    score, heads = discriminator(images[:5], conditioning["text_embeddings"][:5], aux=True)
    assert score.shape == (5,) and [h.shape for h in heads] == [(5, 4), (5, 3), (5, 3), (5, 3)]
    dataset = TorchModelDataset(filepath=str(tmp_path / "d.safetensors"))
    dataset.save(discriminator)
    assert dataset.load().config.aux_classes == (4, 3, 3, 3)
    _, plain, _, plain_history = train(
        images, labels, conditioning, overridden(params, aux_weight=0.0)
    )
    assert plain.aux is None and "d_aux_loss" not in plain_history[-1]
    with pytest.raises(ValueError, match="no auxiliary heads"):
        plain(images[:2], conditioning["text_embeddings"][:2], aux=True)


def test_model_files_of_a_retired_option_load_when_it_was_off(attributed, tmp_path):
    """Files written while ``aux_twin`` existed carry it in their config: off loads, on is named."""
    from safetensors.torch import save_file

    from fashiongan.datasets import TorchModelDataset

    _, discriminator, _, _ = train(*attributed, with_(aux_weight=1.0, epochs=1))
    dataset = TorchModelDataset(filepath=str(tmp_path / "d.safetensors"))
    dataset.save(discriminator)
    tensors = load_file(dataset.path)
    for twin, loads in ((False, True), (True, False)):
        config = {**discriminator.config.model_dump(mode="json"), "aux_twin": twin}
        old = tmp_path / f"old_{twin}.safetensors"
        metadata = {"class": "fashiongan.models.conditional_gan.ConditionalDiscriminator"}
        save_file(tensors, str(old), metadata={**metadata, "config": json.dumps(config)})
        if loads:
            loaded = TorchModelDataset(filepath=str(old)).load()
            assert loaded.config == discriminator.config
        else:
            with pytest.raises(
                DatasetError, match="trained with aux_twin=True, an option no longer"
            ):
                TorchModelDataset(filepath=str(old)).load()


def test_text_code_trains_saves_and_reloads(data, tmp_path):
    from fashiongan.datasets import TorchModelDataset

    params = with_(model__text_code_dim=3, text_kl_weight=2.0, epochs=2)
    torch.manual_seed(params.seed)  # as the trainer seeds before building: its initial weights
    initial = build_models(params, data[0], D, aux_classes=(), model_extra=BUNDLED_FEATURES)[
        0
    ].text_code
    generator, _, _, history = train(*data, params)
    assert generator.config.text_code_dim == 3
    assert not torch.equal(generator.text_code.weight, initial.weight)  # the code's map trained
    plain_history = train(*data, with_(epochs=1))[3]
    assert "g_text_kl_loss" in history[-1] and "g_text_kl_loss" not in plain_history[-1]
    before = generator.text_code.weight.clone()
    dataset = TorchModelDataset(filepath=str(tmp_path / "g.safetensors"))
    dataset.save(generator)
    loaded = dataset.load()
    assert loaded.config.text_code_dim == 3 and torch.equal(loaded.text_code.weight, before)
    with pytest.raises(ValidationError, match="text_code_dim .* at most noise_dim"):
        with_(model__text_code_dim=5)  # PARAMS' noise_dim is 4


TEXTS = [
    "a dark ankle boot",
    "light trousers",
    "a wide patterned pullover",
    "a slim dress, plain",
    "looking for a handbag",
    "the same but darker",
    "as a dress instead",
    "wider, with a pattern",
    "white sneakers",
    "a plain t-shirt",
]


@pytest.fixture(scope="module")
def bert():
    """The bundled MiniLM with its last layer trainable, and the conditioning it caches."""
    from fashiongan.text.encoder import TextEncoder

    encoder = TextEncoder.from_params(text_encoder_params(trainable_top_layers=1), "cpu")
    hidden, mask = encoder.hidden_below_top(TEXTS)
    return encoder, {
        "text_embeddings": encoder.encode(TEXTS),
        "text_hidden": hidden,
        "text_mask": mask,
        "text_hidden_top_layers": torch.tensor(1),
    }


@pytest.fixture
def tuned_data(data, bert):
    """The tiny data with real texts; a fresh copy of the encoder (training tunes it in place)."""
    images, labels, conditioning = data
    encoder, cached = bert
    conditioning = {**conditioning, **cached, "sample_index": torch.tensor([0, 1])}
    conditioning["sample_text"] = cached["text_embeddings"][:2]
    return images, labels, conditioning, copy.deepcopy(encoder)


def test_top_layer_fine_tuning_trains_that_layer_only(tuned_data, bert):
    images, labels, conditioning, encoder = tuned_data
    params = with_(epochs=1, text_lr=1e-3)
    train(images, labels, conditioning, params, None, encoder)
    before, after = bert[0].model.encoder.layer, encoder.model.encoder.layer
    assert not torch.equal(before[-1].output.dense.weight, after[-1].output.dense.weight)
    for frozen in range(len(before) - 1):
        assert torch.equal(before[frozen].output.dense.weight, after[frozen].output.dense.weight)
    assert torch.equal(
        bert[0].model.embeddings.word_embeddings.weight,
        encoder.model.embeddings.word_embeddings.weight,
    )
    assert encoder.device.type == "cpu"
    # The tuned layer now gives other features than the cache it started from.
    tuned = encoder.encode(TEXTS)
    assert (tuned - conditioning["text_embeddings"]).abs().max() > 1e-4


def test_a_frozen_encoder_trains_exactly_like_cached_features(data, bert):
    from fashiongan.text.encoder import TextEncoder

    images, labels, conditioning = data
    frozen = TextEncoder.from_params(text_encoder_params(), "cpu")  # k = 0: features cached
    _, _, _, history = train(images, labels, conditioning, PARAMS, None, frozen)
    _, _, _, reference = train(images, labels, conditioning, PARAMS)
    assert history == reference


@pytest.mark.parametrize("trained_text", ["tuned_data", "headed_data"])
def test_training_text_features_resumes_exactly(trained_text, request, tmp_path, monkeypatch):
    """Killed and restarted, a run that trains BERT's top layer or a text head ends exactly as
    an uninterrupted one: same history, generator and text weights."""
    images, labels, conditioning, encoder = request.getfixturevalue(trained_text)
    params = with_(text_lr=1e-3, diversity_weight=0.25)
    full_encoder = copy.deepcopy(encoder)
    g_full, _, _, history = train(images, labels, conditioning, params, None, full_encoder)

    class Killed(BaseException):
        pass

    def die_at_step_9(step, **losses):
        if step == 9:
            raise Killed

    checkpoints = overridden(params, checkpoint_dir=str(tmp_path / "ckpt"))
    monkeypatch.setattr("fashiongan.training.loop.check_finite", die_at_step_9)
    with pytest.raises(Killed):
        train(images, labels, conditioning, checkpoints, None, copy.deepcopy(encoder))
    monkeypatch.undo()
    resumed_encoder = copy.deepcopy(encoder)  # as loaded again after the restart: untrained
    g_resumed, _, _, resumed_history = train(
        images, labels, conditioning, checkpoints, None, resumed_encoder
    )
    assert resumed_history == history

    def text_weights(text_encoder):
        head = [] if text_encoder.head is None else list(text_encoder.head.parameters())
        return [*text_encoder.top_layers.parameters(), *head]

    assert text_weights(full_encoder)  # something was trained
    for a, b in zip(text_weights(full_encoder), text_weights(resumed_encoder), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(g_full.state_dict().values(), g_resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_fine_tuning_needs_the_cached_hidden_states(data, bert):
    images, labels, conditioning = data
    with pytest.raises(ValueError, match="text_hidden.*rerun encode_conditioning"):
        train(images, labels, conditioning, PARAMS, None, copy.deepcopy(bert[0]))


def test_a_cache_made_for_another_k_is_refused(tuned_data):
    """Layer 5's output cached for k = 1 must not feed layers 4 and 5 (k = 2): it would run
    layer 5 twice, with no shape error to say so."""
    images, labels, conditioning, encoder = tuned_data
    encoder.set_trainable_top_layers(2)
    with pytest.raises(ValueError, match="top 2 layers .* cached below 1"):
        train(images, labels, conditioning, with_(text_lr=1e-3), None, encoder)


def test_fine_tuning_is_refused_under_torchrun(tuned_data, monkeypatch):
    from fashiongan.training import distributed

    images, labels, conditioning, encoder = tuned_data
    monkeypatch.setattr(distributed, "world", lambda: 2)
    with pytest.raises(ValueError, match="not supported under torchrun"):
        train(images, labels, conditioning, PARAMS, None, encoder)


def test_fine_tuning_needs_its_learning_rate():
    values = PARAMS.model_dump()
    del values["text_lr"]
    with pytest.raises(ValidationError, match="text_lr"):
        type(PARAMS).model_validate(values)


MODEL_EXTRA = {"text_encoder": "./text_encoder", "text_pooling": "cls"}
FINGERPRINT_EXTRA = {
    "text_encoder": {"base": "bundled", "trainable_top_layers": 0, "max_length": 64},
    "data_fingerprint": "64-12345",
}


#: The block's run control: how long, how often, where (declared in config.py, RUN_CONTROL).
RUN_CONTROL = {
    "epochs", "log_every", "sample_columns", "checkpoint_dir", "resume", "device",
    "mlflow_prefix", "num_threads",
}  # fmt: skip


def test_fingerprint_is_the_block_less_its_run_control_plus_the_pipelines_facts():
    values = PARAMS.model_dump(mode="json")
    shaping = {k: v for k, v in values.items() if k not in RUN_CONTROL}
    as_hashed = {**shaping, **FINGERPRINT_EXTRA, "model": {**values["model"], **MODEL_EXTRA}}
    expected = hashlib.sha256(json.dumps(as_hashed, sort_keys=True).encode()).hexdigest()[:16]
    assert fingerprint(PARAMS, MODEL_EXTRA, FINGERPRINT_EXTRA) == expected
    assert fingerprint(PARAMS) != expected
    control = with_(epochs=9, log_every=1, sample_columns=5, device="cuda", num_threads="auto")
    assert fingerprint(PARAMS) == fingerprint(overridden(control, resume=False, mlflow_prefix="x/"))
    for change in (
        {"ema_decay": 0.99}, {"text_head_lr": 0.5}, {"text_kl_weight": 5.0}, {"loss": "bce"},
        {"model__minibatch_std": True}, {"model__text_code_dim": 2}, {"embedding__dim": 4},
    ):  # fmt: skip
        assert fingerprint(PARAMS) != fingerprint(with_(**change)), change


def test_model_extra_reaches_the_saved_config_and_the_checkpoint_folder(data, tmp_path):
    checkpoints = tmp_path / "ckpt"
    generator, discriminator, _, _ = train(
        *data, with_(epochs=1, checkpoint_dir=str(checkpoints)),
        model_extra=MODEL_EXTRA, fingerprint_extra=FINGERPRINT_EXTRA,
    )  # fmt: skip
    assert (generator.config.text_encoder, discriminator.config.text_pooling) == (
        "./text_encoder",
        "cls",
    )
    (folder,) = checkpoints.iterdir()
    assert folder.name == fingerprint(PARAMS, MODEL_EXTRA, FINGERPRINT_EXTRA)


def checkpointed_generators(checkpoints) -> dict[str, dict[str, torch.Tensor]]:
    """The newest checkpoint's generator weights, per module name (G, G_average.module)."""
    newest = sorted(checkpoints.rglob("ckpt-*.safetensors"))[-1]
    tensors = load_file(str(newest))
    found: dict[str, dict[str, torch.Tensor]] = {}
    for name in ("G", "G_average.module"):
        prefix = f"module.{name}."
        found[name] = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    return found


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_average_changes_only_the_returned_generator(data, tmp_path):
    off = train(*data, with_(checkpoint_dir=str(tmp_path / "off")))
    on = train(*data, with_(ema_decay=0.9, checkpoint_dir=str(tmp_path / "on")))
    saved_off = checkpointed_generators(tmp_path / "off")
    saved_on = checkpointed_generators(tmp_path / "on")
    assert saved_off["G_average.module"] == {}  # off: the checkpoint holds what it always held
    assert on[3] == off[3]  # training itself is untouched: same losses, same D, E and live G
    assert same_weights(off[1].state_dict(), on[1].state_dict())
    assert same_weights(off[2].state_dict(), on[2].state_dict())
    assert same_weights(off[0].state_dict(), saved_on["G"])
    average = on[0].state_dict()  # what the pipeline saves as generator.safetensors
    assert same_weights(average, saved_on["G_average.module"])
    assert average.keys() == off[0].state_dict().keys()  # the same file layout
    assert not torch.equal(average["text_proj.0.weight"], saved_on["G"]["text_proj.0.weight"])


def test_the_average_resumes_exactly(data, tmp_path, monkeypatch):
    params = with_(ema_decay=0.9)
    uninterrupted = train(*data, params)[0]

    class Killed(BaseException):
        pass

    def die_at_step_9(step, **losses):  # after the checkpoint of epoch 2 (4 steps an epoch)
        if step == 9:
            raise Killed

    checkpoints = str(tmp_path / "ckpt")
    monkeypatch.setattr("fashiongan.training.loop.check_finite", die_at_step_9)
    with pytest.raises(Killed):
        train(*data, overridden(params, checkpoint_dir=checkpoints))
    monkeypatch.undo()
    resumed = train(*data, overridden(params, checkpoint_dir=checkpoints))[0]
    for a, b in zip(
        uninterrupted.state_dict().values(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_training_runs_on_its_threads_and_restores_them(data, monkeypatch):
    seen = []
    monkeypatch.setattr("fashiongan.compute.free_cores", lambda: 1)
    monkeypatch.setattr(
        "fashiongan.training.conditional.fit", lambda *a, **k: seen.append(torch.get_num_threads())
    )
    before = torch.get_num_threads()
    train(*data, with_(num_threads="auto", epochs=1))
    train(*data, with_(num_threads=2, epochs=1))
    assert seen == [1, 2] and torch.get_num_threads() == before


@pytest.fixture
def headed_data(data, bert):
    """The tiny data with real texts, cached for an encoder with a text head (k = 0)."""
    from fashiongan.text.encoder import TextEncoder

    images, labels, conditioning = data
    encoder = TextEncoder.from_params(text_encoder_params(head="attention", head_pools=2), "cpu")
    hidden, mask = encoder.hidden_below_top(TEXTS)
    cached = {"text_hidden": hidden, "text_mask": mask, "text_hidden_top_layers": torch.tensor(0)}
    conditioning = {**conditioning, **cached, "sample_index": torch.tensor([0, 1])}
    conditioning["text_embeddings"] = bert[1]["text_embeddings"]
    conditioning["sample_text"] = conditioning["text_embeddings"][:2]
    return images, labels, conditioning, encoder


def test_the_text_head_trains_and_bert_stays_frozen(headed_data):
    images, labels, conditioning, encoder = headed_data
    bert_before = copy.deepcopy(encoder.model.state_dict())
    train(images, labels, conditioning, with_(epochs=1), None, encoder)
    assert encoder.head.out.weight.abs().sum() > 0  # it started at zero
    for name, value in encoder.model.state_dict().items():
        assert torch.equal(value, bert_before[name]), name
    trained = encoder.encode(TEXTS)
    assert (trained - conditioning["text_embeddings"]).abs().max() > 1e-4


def test_minibatch_spread_reaches_d_and_trains(data):
    """conf/base turns D's minibatch spread on: D's embedding reads one more map, and it trains."""
    assert load_parameters(REPO_ROOT / "conf")["conditional"].training.model.minibatch_std
    params = with_(model__minibatch_std=True, epochs=1)
    _, discriminator, _, history = train(*data, params)
    assert discriminator.config.minibatch_std
    bottom = discriminator.config.bottom_size**2
    assert discriminator.embed[0].in_features == (2 * 4 + 1) * bottom  # 2 stages of 4 channels
    assert all(torch.isfinite(torch.tensor(list(row.values()))).all() for row in history)
    torch.manual_seed(params.seed)  # as the trainer seeds before building: its initial weights
    initial = build_models(params, data[0], D, aux_classes=(), model_extra=BUNDLED_FEATURES)[
        1
    ].embed[0]
    spread = slice(2 * 4 * bottom, None)  # the spread map is the last channel D's embedding reads
    # The raw weights: spectral norm's sigma rescales every column, spread map or not.
    after, before = discriminator.embed[0].weight_orig, initial.weight_orig
    assert not torch.equal(after[:, spread], before[:, spread])  # the map carried a signal


def test_the_conditioning_is_read_once_and_typed(data):
    from fashiongan.training.conditioning import Conditioning

    _, _, tensors = data
    conditioning = Conditioning.of(tensors)
    assert conditioning.text_dim == D and conditioning.text_attributes is None
    assert Conditioning.of(conditioning) is conditioning
    assert conditioning.missing("text_mask", "item_attributes") == ["item_attributes", "text_mask"]
    lacking = {k: v for k, v in tensors.items() if k != "caption_index"}
    with pytest.raises(ValueError, match=r"lacks \['caption_index'\] and has unknown \[\]"):
        Conditioning.of(lacking)
    with pytest.raises(ValueError, match=r"unknown \['caption_idx'\]"):
        Conditioning.of({**tensors, "caption_idx": tensors["caption_index"]})
