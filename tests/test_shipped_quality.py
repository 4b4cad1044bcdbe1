"""Is the shipped configuration any good? A short run of conf/base's conditional GAN, judged.

``tests/test_product_quality.py`` trains without the text code; here every option of
``conditional`` in conf/base stays as shipped (the text code, the attention text head trained
with the GAN, the AC-GAN heads, the EMA generator, the triplet and diversity terms), only
shorter and narrower, through the train_gan node and the catalog's model files as a training
run writes them. An evaluator CNN trained on the real items judges the samples, and the
trained generator and embedder are scored on the evaluation's retrieval protocol over the 200
test items; the samples' evaluator-feature FID and recall (the evaluation's own metric
functions) lie between a real floor (one half of the test items against the other) and an
untrained generator of the same config.

The same run draws "a dark X" and "a light X" from the same noise (the light one must be
lighter), checks that a caption's samples spread through its text code, and serves the 200
test items through the search service for 40 simulated shoppers of
``benchmarks/dialog_search.py`` (the GAN dialog against joined-text search).

Measured on a 2-core machine, seeds 42, 43, 44 of the GAN, and seed 42 three more times (the
test trains seed 42; a run is not bit-identical to the next, so the thresholds cover both
spreads). Broken defaults, in scratch runs (not committed):

- a generator that ignores its caption: class accuracy 0.085-0.10, the shuffled control's level
  (fails, 3 runs of 3); composed synthetic R@10 0.11-0.12 below text-only in 2 runs (fails),
  less in a third; FID 5.2 (fails, one run); light over dark 0 (fails, 4 runs of 4); the
  dialog's finished-share lead under 0.2 at turn 2 in 3 runs of 4 (0.125-0.175: fails), its
  percentile lead under 1 in 2 runs of 3, as the service's boosts keep much of the lead; the
  text-code share 0.61-0.71 (fails in 1 run of 4);
- ``aux_weight: 0``: class accuracy 0.37, 0.425, 0.44, 0.505 (fail) and one run at 0.5 or more;
  R@10 0.06-0.09 below text-only (passes; in a later run synthetic 0.32 below image-only
  0.34: fails); the tone, text-code and dialog tests pass;
- ``text_code_dim: 0`` (seeds 42-44 and a rerun of 42): only the text-code test fails (share
  0.49-0.51), and the check that the run is conf/base's; every sample figure is as good or
  better after so short a run (class accuracy 0.71-0.85, FID 0.62-1.02, recall 0.81-0.985),
  the code paying off only over thousands of steps (``tests/test_product_quality.py``,
  docs/quality.md).

The module takes 25-45 s of its own (65 s with a training beside it); the tone, text-code and
dialog tests add about 10 s of it (the dialog 8-9 s: the service's build and 400 turns).
"""

from __future__ import annotations

import importlib
import random
import sys

import pytest
import torch

from fashiongan.attributes import measure
from fashiongan.compute import torch_threads
from fashiongan.config import load_parameters, overridden
from fashiongan.datasets import TextEncoderDataset, TorchModelDataset
from fashiongan.evaluation.retrieval import retrieval_protocol, retrieve_with_model
from fashiongan.evaluation.sampling import catalog_captions, encode_texts, sample_models
from fashiongan.evaluation.scoring import feature_distances
from fashiongan.generation import text_encoder
from fashiongan.pipelines.captions.nodes import describe_items, pair_composed_queries
from fashiongan.pipelines.search_index.nodes import (
    build_search_index,
    collect_catalog,
    embed_catalog,
)
from fashiongan.pipelines.train_gan.nodes import encode_conditioning, train_conditional
from fashiongan.search.catalog import Catalog
from fashiongan.search.service import SearchService
from fashiongan.text.captions import CLASS_SYNONYMS, TONE_WORDS
from fashiongan.training.evaluator import train_evaluator_cnn
from tests.conftest import REPO_ROOT
from tests.retrieval_chance import random_ranking_hit_rate
from tests.test_product_quality import (
    CHANCE,
    N_CLASSES,
    class_accuracy,
    drawn_model_input,
    short_evaluator_training,
    shuffled_test_captions,
)

#: Lowest class accuracy of samples for the asked captions (measured 0.69, 0.725, 0.64 for
#: seeds 42-44; 0.725, 0.705 and 0.71 on reruns of 42).
MIN_ACCURACY = 0.55
#: Lowest lead over the same captions shuffled across items (measured 0.555-0.655; shuffled
#: 0.07-0.085, chance 0.1).
MIN_LEAD_OVER_SHUFFLED = 0.4
#: Largest shortfall of the composed synthetic query's R@10 from text-only (measured -0.04 to
#: +0.04 over the six runs: on par after so short a run; text-only 0.41-0.45).
MAX_SHORTFALL_FROM_TEXT = 0.1
#: Largest evaluator-feature FID of the short run's samples, 100 against 100 test items
#: (measured 1.07, 1.15 for seeds 42, 43; the real floor 0.40, an untrained generator 9.68).
MAX_FID = 4.0
#: Lowest k-NN recall of those samples (measured 0.81, 0.96; the floor 1.0, untrained 0.0).
MIN_RECALL = 0.5
#: Lowest share of "a light X" drawings lighter than "a dark X" from the same noise (measured
#: 0.895-0.925 over seeds 42-44 and reruns; aux_weight 0: 0.78-0.875; text_code_dim 0:
#: 0.63-0.925; a caption-blind generator 0).
MIN_LIGHTER_SHARE = 0.7
#: Lowest share of a caption's drawing change made by redrawing the noise's first half (where
#: the text code is drawn) against redrawing its second half (measured 0.744-0.766, seeds 42
#: and 44 twice each; text_code_dim 0: 0.494-0.506; caption-blind 0.61-0.71; aux_weight 0:
#: 0.756, 0.761).
MIN_CODE_SHARE = 0.62
#: Simulated shoppers of the dialog benchmark (benchmarks/dialog_search.py), and their turns.
N_SHOPPERS, N_TURNS = 40, 5
#: Lowest lead of the GAN dialog's mean rank percentile of the target over joined-text search
#: on each turn from 2 (measured 2.2-3.1 over seeds 42-44; text_code_dim 0: 2.0-2.9;
#: aux_weight 0: 3.2-4.0; caption-blind: -3.9 to +2.5, below 1 in 2 runs of 3).
MIN_PERCENTILE_LEAD = 1.0
#: Lowest lead of its share of finished dialogs (the top result matches the target's class,
#: tone, fit and pattern) on each turn from 2 (measured 0.325-0.425 over seeds 42-44;
#: text_code_dim 0: 0.2-0.45; aux_weight 0: 0.275-0.425; caption-blind 0.125-0.3, under 0.2
#: at turn 2 in 3 runs of 4).
MIN_FINISHED_LEAD = 0.2


def shipped_conditional():
    """conf/base's ``conditional`` block, its encoder on the CPU."""
    conditional = load_parameters(REPO_ROOT / "conf")["conditional"]
    return conditional.model_copy(
        update={"text_encoder": overridden(conditional.text_encoder, device="cpu")}
    )


def short_shipped_training(seed: int):
    """conf/base's conditional training for 300 steps (30 epochs of 10 batches), narrower.

    Every option stays on at its shipped value; the learning rates are raised for so short
    a run, as ``tests/test_product_quality.py`` does.
    """
    return overridden(
        shipped_conditional().training,
        seed=seed, device="cpu", num_threads=1, epochs=30, batch_size=32,
        checkpoint_dir=None, log_every=1000, sample_columns=2, g_lr=1e-3, d_lr=2e-3,
        model__g_channels=16, model__d_channels=16, model__text_channels=8,
        model__noise_channels=4, model__embed_dim=16, embedding__width=4, embedding__dim=16,
    )  # fmt: skip


def train_shipped(model_input, captions, folder, seed: int):
    """Train through the train_gan node, save G and its text encoder as the catalog does, and
    load G back (its config then names the saved encoder, head included)."""
    conditional = shipped_conditional()
    composed = pair_composed_queries(captions, conditional.composed)
    samples = tuple(conditional.sample_captions[:2])
    conditioning = encode_conditioning(captions, composed, samples, conditional.text_encoder)
    training = short_shipped_training(seed)
    generator, discriminator, embedder, encoder, *_ = train_conditional(
        model_input, conditioning, training, conditional.text_encoder, samples, "default"
    )
    TextEncoderDataset(filepath=str(folder / "text_encoder")).save(encoder)
    dataset = TorchModelDataset(filepath=str(folder / "generator.safetensors"))
    dataset.save(generator)
    return dataset.load(), discriminator, embedder


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The trained generator (loaded back) and embedder, the judge, the drawn data and its
    captions; and the discriminator."""
    model_input = drawn_model_input()
    with torch_threads(1):
        attributes, captions = describe_items(model_input, shipped_conditional().captions)
        generator, discriminator, embedder = train_shipped(
            model_input, captions, tmp_path_factory.mktemp("shipped"), seed=42
        )
        judge, _ = train_evaluator_cnn(model_input, short_evaluator_training())
    return (generator, embedder, judge, model_input, captions), discriminator, attributes


def test_the_shipped_options_were_trained(shipped):
    """The judged run is conf/base's: text code, a trained attention head, AC-GAN heads."""
    (generator, *_), discriminator, _ = shipped
    shipped_model = shipped_conditional().training.model
    assert generator.config.text_code_dim == shipped_model.text_code_dim > 0
    encoder = text_encoder(generator.config.text_encoder, generator.config.text_pooling)
    assert encoder.head_kind == "attention" and encoder.head.out.weight.abs().sum() > 0
    assert shipped_conditional().training.aux_weight > 0 and discriminator.aux is not None


def judged_accuracies(trained) -> tuple[float, float, float]:
    """The judge's accuracy on the real test items, on samples of the asked captions, and on
    samples of the captions shuffled across items."""
    generator, _, judge, model_input, captions = trained
    _, predicted = judge.predict(model_input["test_images"], 64)
    real = (predicted == model_input["test_labels"]).double().mean().item()
    with torch_threads(1):
        asked = class_accuracy(generator, judge, model_input, captions)
        shuffled = class_accuracy(generator, judge, model_input, shuffled_test_captions(captions))
    return real, asked, shuffled


def test_samples_of_the_shipped_config_show_the_asked_class(shipped):
    real, asked, shuffled = judged_accuracies(shipped[0])
    assert real >= 0.9, f"the judge knows {real:.3f} of the real items: it can't judge"
    assert asked >= MIN_ACCURACY, f"class accuracy {asked:.3f} (chance {CHANCE})"
    assert asked - shuffled >= MIN_LEAD_OVER_SHUFFLED, (
        f"asked {asked:.3f} vs shuffled captions {shuffled:.3f}: the caption does not decide"
    )


def retrieval_recall_at_10(trained) -> tuple[dict[str, float], float]:
    """Composed-query R@10 of each method on the 200 test items, and a random ranking's."""
    generator, embedder, _, model_input, captions = trained
    settings = overridden(
        load_parameters(REPO_ROOT / "conf")["evaluation"].retrieval, n_queries=100, n_images=2
    )
    images = model_input["test_images"]
    protocol = retrieval_protocol(catalog_captions(captions), len(images), settings)
    with torch_threads(1):
        result = retrieve_with_model(generator, embedder, images, protocol, settings, 64, "cpu")
    chance = random_ranking_hit_rate(protocol.relevant["composed"], len(images) - 1, 10)
    recalls = {
        method: scores["overall"]["recall_at_10"]
        for method, scores in result.scores["composed"].items()
    }
    return recalls, chance


def test_composed_retrieval_beats_image_only_and_keeps_up_with_text_only(shipped):
    """A reference image and a change asked in words: the generated picture of the result
    finds the target's kind better than the reference image does, about as well as BERT
    reading the change."""
    recalls, chance = retrieval_recall_at_10(shipped[0])
    figures = ", ".join(f"{m} {v:.3f}" for m, v in recalls.items())
    message = f"composed R@10: {figures} (a random ranking {chance:.3f})"
    assert chance < 0.3, message  # about 2.5% of the catalog is relevant to a query
    synthetic = recalls["synthetic"]
    # measured leads over image-only (0.30-0.32): 0.05-0.15 over six runs
    assert synthetic > recalls["image"], message
    assert synthetic >= recalls["text"] - MAX_SHORTFALL_FROM_TEXT, message


def distribution_rows(trained) -> dict[str, dict[str, float]]:
    """The evaluation's evaluator-feature metrics of three sets against one half of the test
    items: the other half (the real floor), the short run's samples for that other half's
    captions, and an untrained generator's of the same config (the control); 100 each, so
    every FID carries the same small-N bias."""
    generator, _, judge, model_input, captions = trained
    params = load_parameters(REPO_ROOT / "conf")["evaluation"]
    halves = torch.randperm(
        len(model_input["test_labels"]), generator=torch.Generator().manual_seed(0)
    )
    reference, other = halves.chunk(2)
    torch.manual_seed(0)
    untrained = type(generator)(generator.config)
    with torch_threads(1):
        samples = sample_models(
            {"short run": generator, "untrained": untrained},
            model_input["test_labels"], captions, None, 0, 64, "cpu",
        )  # fmt: skip
        feats, _ = judge.predict(model_input["test_images"], 64)
        rows = {"floor": feature_distances(feats[reference], feats[other], params)}
        for name, sample in samples.items():
            fake, _ = judge.predict(sample["images"][other], 64)
            rows[name] = feature_distances(feats[reference], fake, params)
    return rows


def test_short_run_fid_and_recall_lie_between_the_real_floor_and_an_untrained_generator(shipped):
    rows = distribution_rows(shipped[0])
    figures = "; ".join(f"{n} FID {r['fid']:.2f} recall {r['recall']:.3f}" for n, r in rows.items())
    floor, short, untrained = rows["floor"], rows["short run"], rows["untrained"]
    assert floor["fid"] < short["fid"] < min(MAX_FID, untrained["fid"]), figures
    assert short["recall"] >= MIN_RECALL and short["recall"] > untrained["recall"], figures


def class_captions(tone: int | None, n: int) -> list[str]:
    """``n`` copies of one caption per class: "a coat", or with the tone's word ("a dark
    coat", "a light coat": the same words but one)."""
    word = "" if tone is None else f"{TONE_WORDS[tone][0]} "
    return [f"a {word}{CLASS_SYNONYMS[label][0]}" for label in range(N_CLASSES) for _ in range(n)]


def drawn(generator, texts: list[str], noise: torch.Tensor) -> torch.Tensor:
    """The generator's drawings (N, 1, 28, 28) of ``texts`` from ``noise`` (N, noise_dim)."""
    with torch_threads(1), torch.no_grad():
        return generator.eval()(noise, encode_texts(generator.config, texts))


def seeded_noise(n: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def lighter_share(generator, n: int = 20) -> float:
    """Share of (dark, light) pairs, same class and noise, whose light drawing is lighter (the
    mean of its item pixels, ``fashiongan.attributes.measure``'s intensity)."""
    noise = seeded_noise(N_CLASSES * n, generator.config.noise_dim, 1)
    dark, light = (measure(drawn(generator, class_captions(tone, n), noise)) for tone in (0, 2))
    return (light["intensity"] > dark["intensity"]).double().mean().item()


def test_a_light_caption_draws_a_lighter_item_than_a_dark_one(shipped):
    """The caption's tone word reaches the picture. Judged in pairs from the same noise: after
    300 steps every sample is darker than its class's real items (the tone cut points call
    99-100 % of them dark, so the evaluation's attribute accuracy sits at the share of captions
    asking dark: 0.44 for asked and within-class shuffled captions alike), but the light one
    of a pair is the lighter one."""
    share = lighter_share(shipped[0][0])
    assert share >= MIN_LIGHTER_SHARE, f"light drawn lighter than dark in {share:.3f} of pairs"


def code_noise_share(generator, n: int = 20) -> float:
    """How much of a caption's spread comes from the noise's first half: the mean pixel change
    of its drawings when the first half is redrawn, over that and the change when the second
    half is. A fixed half, not the config's ``text_code_dim``, so that a generator without the
    code is measured the same way (both halves then reach the picture alike: 0.5)."""
    texts = class_captions(None, n)
    noise = seeded_noise(len(texts), generator.config.noise_dim, 1)
    half = noise.shape[1] // 2
    first, second = noise.clone(), noise.clone()
    first[:, :half] = seeded_noise(len(texts), half, 5)
    second[:, half:] = seeded_noise(len(texts), noise.shape[1] - half, 6)
    base = drawn(generator, texts, noise)
    change = [
        (drawn(generator, texts, z) - base).flatten(1).norm(dim=1).mean() for z in (first, second)
    ]
    return (change[0] / (change[0] + change[1])).item()


def test_a_caption_stands_for_many_items_through_its_text_code(shipped):
    """StackGAN's conditioning augmentation (``model.text_code_dim``: 32 of the 64 noise
    entries): a caption is drawn as a Gaussian code, so the code's noise moves a caption's
    drawing more than the rest of the noise does.

    A behaviour check, not a quality score: after 300 steps no sample figure favours the code
    (text_code_dim 0, seeds 42-44 and a rerun: class accuracy 0.71-0.85 against 0.675-0.72,
    FID 0.62-1.02 against 1.04-1.23, recall 0.81-0.985 against 0.74-0.905, light-over-dark
    pairs 0.63-0.91 against 0.895-0.92, shopper-worded queries' class 0.50-0.51 against 0.46);
    its recall gain shows over thousands of steps (docs/quality.md).
    """
    share = code_noise_share(shipped[0][0])
    assert share >= MIN_CODE_SHARE, f"the code's noise makes {share:.3f} of a caption's change"


@pytest.fixture(scope="module")
def dialog_bench():
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))  # the script imports its sibling _common
    try:
        yield importlib.import_module("dialog_search")
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))


def shop(shipped) -> SearchService:
    """The search app over the 200 test items, built as the search_index pipeline and the app
    build it (conf/base's index and query settings), with the short run's models."""
    (generator, embedder, _, model_input, captions), _, attributes = shipped
    params = load_parameters(REPO_ROOT / "conf")
    index_params, class_names = params["search_index"], params["fashion_mnist"].class_names
    table, thumbnails = collect_catalog(
        model_input, captions, embedder, class_names, index_params.source
    )
    vectors = embed_catalog(thumbnails, embedder, index_params.embed_batch_size)
    index, _ = build_search_index(vectors, index_params.index)
    catalog = Catalog.measured(table, thumbnails["images"], attributes)
    return SearchService(
        {"conditional": generator}, embedder, index, catalog, params["search_app"].query,
        attribute_thresholds=attributes,
    )  # fmt: skip


def dialog_turns(bench, service: SearchService, method: str) -> list[dict]:
    """The benchmark's per-turn summary of one method over the fixed shoppers (the script's
    seed-0 targets, openings and statements)."""
    keys = bench.catalog_keys(service)
    judge = bench.Judge(keys)
    targets = random.Random("0-targets").sample(range(len(keys)), N_SHOPPERS)
    dialogs = []
    for shopper, target in enumerate(targets):
        opening = bench.first_turn(keys, target, random.Random(f"0-{shopper}-opening"))
        statements = random.Random(f"0-{shopper}-statements")
        dialogs.append(
            bench.run_dialog(service, judge, method, target, opening, N_TURNS, statements)
        )
    return bench.summarise(dialogs, N_TURNS)["per_turn"]


def test_the_gan_dialog_ranks_the_wanted_item_above_joined_text(shipped, dialog_bench):
    """Issue #31's "GAN dialog above joined text from turn 2", on 40 simulated shoppers.

    The benchmark's success@10 cannot show it on 200 drawn items: both find a top-10 item
    with the target's four measured keys from turn 1 (turns 2-5, seeds 42-44: the GAN dialog
    0.95-1.0, joined text 0.95-1.0, the GAN behind at turn 2 or 3 in every seed). Its other
    two figures can: from turn 2 the picked top result plus the stated change ranks the
    target itself higher (mean rank percentile) and finishes more dialogs (the top result
    matches all four). Much of that lead is the service's ranking (the read class and
    attributes boosted, measured on the pictures): a caption-blind generator keeps part of it.
    """
    with torch_threads(1):
        service = shop(shipped)
        gan, text = (dialog_turns(dialog_bench, service, m) for m in ("gan_pick", "text_only"))
    figures = "; ".join(
        f"turn {g['turn']}: percentile {g['mean_rank_percentile']:.1f} vs "
        f"{t['mean_rank_percentile']:.1f}, finished {g['finished']:.3f} vs {t['finished']:.3f}"
        for g, t in zip(gan, text, strict=True)
    )
    for g, t in zip(gan[1:], text[1:], strict=True):
        lead = g["mean_rank_percentile"] - t["mean_rank_percentile"]
        assert lead >= MIN_PERCENTILE_LEAD, figures
        assert g["finished"] - t["finished"] >= MIN_FINISHED_LEAD, figures
