"""Short screening runs of conditional-GAN variants, scored as the evaluation pipeline scores.

Each variant trains from scratch for a few epochs on the real training split (the cached
conditioning of ``kedro run --pipelines=train_gan --namespaces=conditional``), then draws one
image for each of N test captions and reports: evaluator-feature FID against those test items,
precision / recall / coverage (k = 5, evaluator features, the same N; the evaluation reports
them at N = 10,000, so compare these only with each other),
the evaluator's class accuracy on what was asked (macro, and per class), the caption grammar's
tone / fit / pattern accuracy where a caption asks for them, and the mean L1 distance between two
images of the same caption under different noise (0 = the noise is ignored). One seed each: a
screening, not a verdict; differences of a few hundredths are within run-to-run noise.

    python benchmarks/conditional_variants.py --epochs 2 \\
        'diversity_1={"diversity_weight": 1.0}' 'diversity_025={"diversity_weight": 0.25}' \\
        'tuned_1={"text_encoder": {"trainable_top_layers": 1}}'

``--saved models/conditional/default NAME`` scores the model a pipeline run saved there
(generator and the text encoder beside it) instead of training one, so full runs compare on the same footing;
``--noise-scale 1.1`` draws its noise 1.1 times wider (above 1: more varied, less faithful).

A variant with ``ema_decay`` is scored twice: its saved (averaged) generator as ``NAME`` and the
live generator from its last checkpoint as ``NAME:live``, which is the same run without the
average (the average does not change training): a side by side with no seed noise;
``--extra-ema 0.998,0.99999@4`` scores averages at other decays (and, after ``@``, other
warm-up lengths: see ``fashiongan.training.ema``) from the same run as ``NAME:ema0.998``,
``NAME:ema0.99999@4`` and so on. Training runs on ``--threads`` torch threads (default 1).

Overrides are of ``conditional.training`` (nested keys merge into their block:
``{"model": {"g_channels": 16}}``), except a ``text_encoder`` entry, which overrides
``conditional.text_encoder`` (a tuned encoder or one with a text head gets its conditioning
cache recomputed here, and the test captions are encoded with the trained encoder).

Needs data/05_model_input and the captions (make data: ``data_processing`` then ``captions``),
the conditioning (the conditional pipeline's ``encode_conditioning`` node) and models/evaluator/default
(make evaluator). Results accumulate in
benchmarks/results/conditional_variants.json (a variant run again replaces its entry).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

from _common import RESULTS, machine, parameters
from fashiongan.config import overridden
from fashiongan.datasets import TextEncoderDataset
from fashiongan.datasets.safetensors import load_module
from fashiongan.evaluation.metrics import (
    conditional_accuracy,
    frechet_distance,
    precision_recall_density_coverage,
)
from fashiongan.evaluation.sampling import catalog_captions, requested_attributes
from fashiongan.evaluation.scoring import attribute_accuracy
from fashiongan.pipelines.train_gan.nodes import encode_conditioning, train_conditional
from fashiongan.training import conditional as conditional_training
from fashiongan.training.ema import WARMUP, averaging_hook, generator_average

MODEL_INPUT = Path("data/05_model_input/fashion_mnist.safetensors")
CONDITIONING = Path("data/05_model_input/conditional/default/conditioning.safetensors")
CAPTIONS = Path("data/04_feature/fashion_mnist_captions.parquet")
COMPOSED = Path("data/04_feature/composed_queries.parquet")
ATTRIBUTES = Path("data/04_feature/fashion_mnist_attributes.safetensors")
EVALUATOR = Path("models/evaluator/default/evaluator.safetensors")


def dotted(overrides: dict, prefix: str = "") -> dict:
    """Nested JSON overrides as :func:`~fashiongan.config.overridden`'s ``a__b`` keys."""
    flat = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            flat |= dotted(value, f"{prefix}{key}__")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def generate(
    generator, text: torch.Tensor, seed: int, noise_scale: float = 1.0, batch: int = 500
) -> torch.Tensor:
    """One image per caption; ``noise_scale`` > 1 widens the noise (the truncation trick's inverse)."""
    z = noise_scale * torch.randn(
        len(text), generator.config.noise_dim, generator=torch.Generator().manual_seed(seed)
    )
    with torch.no_grad():
        return torch.cat(
            [generator(z[i : i + batch], text[i : i + batch]) for i in range(0, len(text), batch)]
        )


def score(generator, text_encoder, data: dict, n: int, noise_scale: float = 1.0) -> dict:
    evaluator = load_module(EVALUATOR).eval()
    index = torch.randperm(len(data["test_labels"]), generator=torch.Generator().manual_seed(0))[:n]
    index = index.sort().values
    captions = catalog_captions(pd.read_parquet(CAPTIONS))
    texts = captions.loc[index.tolist(), "caption"].astype(str).tolist()
    _, embeddings, rows = text_encoder.encode_unique(texts)
    text = embeddings[rows]  # the encoder the generator was trained with (tuned or not)
    images = generate(generator, text, 0, noise_scale)
    other_noise = generate(generator, text, 1, noise_scale)
    labels = data["test_labels"].long()[index]
    real_feats, _ = evaluator.predict(data["test_images"][index])
    fake_feats, predicted = evaluator.predict(images)
    accuracy = conditional_accuracy(predicted, labels, evaluator.config.n_classes)
    attributes = attribute_accuracy(
        images, labels, requested_attributes(texts), load_file(str(ATTRIBUTES))
    )
    spread = precision_recall_density_coverage(real_feats, fake_feats, k=5)
    return {
        "n": n,
        **({"noise_scale": noise_scale} if noise_scale != 1.0 else {}),
        "fid_evaluator": frechet_distance(real_feats, fake_feats),
        **{key: spread[key] for key in ("precision", "recall", "coverage")},
        "class_accuracy": accuracy["mean"],
        "class_accuracy_per_class": accuracy["per_class"],
        "tone": attributes["tone"],
        "fit": attributes["fit"],
        "pattern": attributes["pattern"],
        "noise_l1": float((images - other_noise).abs().mean()),
    }


def live_generator(average: torch.nn.Module, checkpoints: Path) -> torch.nn.Module:
    """The trained generator itself (not its average) from the run's newest checkpoint."""
    newest = sorted(checkpoints.rglob("ckpt-*.safetensors"))[-1]
    prefix = "module.G."
    weights = {
        k[len(prefix) :]: v for k, v in load_file(str(newest)).items() if k.startswith(prefix)
    }
    live = copy.deepcopy(average)
    live.load_state_dict(weights)
    return live.eval()


@contextlib.contextmanager
def extra_averages(
    decays: list[tuple[float, int]],
) -> Iterator[dict[tuple[float, int], torch.nn.Module]]:
    """While training: more averages of G's weights, one per (decay, warm-up), updated after
    every step.

    Averages only read the weights, so they score the run's own generator at other decays with
    no seed noise between them (as ``:live`` does for no average).
    """
    averages: dict[tuple[float, int], torch.nn.Module] = {}
    prepare = conditional_training.prepare_training

    def prepare_with_averages(*args, **kwargs):
        run = prepare(*args, **kwargs)
        generator = run.nets[0]
        for decay, warmup in decays:
            averages[decay, warmup] = generator_average(generator, decay, warmup)
            run.hooks.append(averaging_hook(averages[decay, warmup], generator))
        return run

    conditional_training.prepare_training = prepare_with_averages
    try:
        yield averages
    finally:
        conditional_training.prepare_training = prepare


def train_and_score(name: str, overrides: dict, args: argparse.Namespace, data: dict) -> dict:
    """Train one variant and score it; with ``ema_decay`` also its live generator (``name:live``).

    The average does not change training, so ``name:live`` is the same run without it: a side
    by side with no seed noise between the two.
    """
    base = parameters("conditional")
    encoder = overridden(base.text_encoder, **dotted(overrides.get("text_encoder", {})))
    conditioning = load_file(str(CONDITIONING))
    if encoder.trainable_top_layers or encoder.head != "none":  # needs the cached token states
        conditioning = encode_conditioning(
            pd.read_parquet(CAPTIONS), pd.read_parquet(COMPOSED), base.sample_captions, encoder
        )
    with tempfile.TemporaryDirectory() as checkpoints:
        training = overridden(
            base.training,
            **{
                "epochs": args.epochs,
                "checkpoint_dir": checkpoints,
                "resume": False,
                "device": "cpu",
                "num_threads": args.threads,
                **dotted({k: v for k, v in overrides.items() if k != "text_encoder"}),
            },
        )
        with extra_averages(args.extra_ema) as averages:
            generator, _, _, text_encoder, history, summary = train_conditional(
                data, conditioning, training, encoder, base.sample_captions, "benchmark"
            )
        live = live_generator(generator, Path(checkpoints)) if training.ema_decay else None
    entry = {
        "overrides": overrides,
        "epochs": args.epochs,
        "num_threads": args.threads,
        "train_s": summary["wall_time_s"],
        "load_after_training": [round(v, 2) for v in os.getloadavg()],
        **score(generator, text_encoder, data, args.n),
        "final_window": history.iloc[-1].to_dict(),
    }
    entries = {name: entry}
    if live is not None:
        entries[f"{name}:live"] = {
            **entry,
            **score(live, text_encoder, data, args.n),
            "live_of": name,
        }
    for (decay, warmup), average in averages.items():
        scores = score(average.module.cpu().eval(), text_encoder, data, args.n)
        tag = f"{decay:g}" if warmup == WARMUP else f"{decay:g}@{warmup}"
        entries[f"{name}:ema{tag}"] = {
            **entry,
            **scores,
            "ema_decay": decay,
            "ema_warmup": warmup,
            "average_of": name,
        }
    return entries


def averages_wanted(text: str) -> list[tuple[float, int]]:
    """``0.998,0.9999@4`` as [(0.998, WARMUP), (0.9999, 4)]."""
    wanted = []
    for item in text.split(","):
        decay, _, warmup = item.partition("@")
        wanted.append((float(decay), int(warmup or WARMUP)))
    return wanted


def record(name: str, entry: dict) -> None:
    """Print one variant's scores and merge them into the results file.

    The file is read again just before writing, so screenings running side by side in separate
    processes keep each other's entries.
    """
    print(name, json.dumps({k: v for k, v in entry.items() if "per_class" not in k}))
    path = RESULTS / "conditional_variants.json"
    results = json.loads(path.read_text()) if path.is_file() else {"variants": {}}
    results["variants"][name] = entry
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps({**results, "machine": machine()}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variants", nargs="+", help="name={json overrides of conditional.training}")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n", type=int, default=3000, help="test captions scored")
    parser.add_argument("--saved", type=Path, help="score the model saved in this folder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while training")
    parser.add_argument(
        "--extra-ema",
        type=averages_wanted,
        default=[],
        help="also score averages of G at these decays (comma-separated DECAY or DECAY@WARMUP,"
        " warm-up steps of the (1 + n) / (warmup + n) rule) as NAME:ema<decay>[@<warmup>]",
    )
    parser.add_argument(
        "--noise-scale", type=float, default=1.0, help="--saved: scale the sampling noise by this"
    )
    args = parser.parse_args()
    data = load_file(str(MODEL_INPUT))
    if args.saved:
        (name,) = args.variants
        entry = {
            "saved": str(args.saved),
            **score(
                load_module(args.saved / "generator.safetensors"),
                TextEncoderDataset(filepath=str(args.saved / "text_encoder")).load(),
                data,
                args.n,
                args.noise_scale,
            ),
        }
        record(name, entry)
        return
    for spec in args.variants:
        name, _, overrides = spec.partition("=")
        for key, entry in train_and_score(name, json.loads(overrides or "{}"), args, data).items():
            record(key, entry)


if __name__ == "__main__":
    main()
