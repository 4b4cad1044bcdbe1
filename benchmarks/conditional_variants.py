"""Short screening runs of conditional-GAN variants, scored as the evaluation pipeline scores.

Each variant trains from scratch for a few epochs on the real training split (the cached
conditioning of ``kedro run --pipelines=train_gan --namespaces=conditional``), then draws one
image for each of N test captions and reports: evaluator-feature FID against those test items,
the evaluator's class accuracy on what was asked (macro, and per class), the caption grammar's
tone / fit / pattern accuracy where a caption asks for them, and the mean L1 distance between two
images of the same caption under different noise (0 = the noise is ignored). One seed each: a
screening, not a verdict; differences of a few hundredths are within run-to-run noise.

    python benchmarks/conditional_variants.py --epochs 2 \\
        'diversity_1={"diversity_weight": 1.0}' 'diversity_025={"diversity_weight": 0.25}' \\
        'tuned_1={"text_encoder": {"trainable_top_layers": 1}}'

``--saved models/conditional NAME`` scores the model a pipeline run saved there (generator and
the text encoder beside it) instead of training one, so full runs compare on the same footing.

Overrides are of ``conditional.training`` (nested keys merge into their block:
``{"model": {"g_channels": 16}}``), except a ``text_encoder`` entry, which overrides
``conditional.text_encoder`` (a tuned encoder gets its conditioning cache recomputed here, and
the test captions are encoded with the tuned encoder).

Needs data/05_model_input and the captions (make data: ``data_processing`` then ``captions``),
the conditioning (the conditional pipeline's ``encode_conditioning`` node) and models/evaluator
(make evaluator). Results accumulate in
benchmarks/results/conditional_variants.json (a variant run again replaces its entry).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

from _common import RESULTS, machine, parameters
from fashiongan.config import overridden
from fashiongan.datasets import TextEncoderDataset
from fashiongan.datasets.safetensors import load_module
from fashiongan.evaluation.metrics import conditional_accuracy, frechet_distance
from fashiongan.evaluation.sampling import catalog_captions, requested_attributes
from fashiongan.evaluation.scoring import attribute_accuracy
from fashiongan.pipelines.train_gan.nodes import encode_conditioning, train_conditional

MODEL_INPUT = Path("data/05_model_input/fashion_mnist.safetensors")
CONDITIONING = Path("data/05_model_input/conditional_conditioning.safetensors")
CAPTIONS = Path("data/04_feature/fashion_mnist_captions.parquet")
COMPOSED = Path("data/04_feature/composed_queries.parquet")
ATTRIBUTES = Path("data/04_feature/fashion_mnist_attributes.safetensors")
EVALUATOR = Path("models/evaluator/evaluator.safetensors")


def dotted(overrides: dict, prefix: str = "") -> dict:
    """Nested JSON overrides as :func:`~fashiongan.config.overridden`'s ``a__b`` keys."""
    flat = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            flat |= dotted(value, f"{prefix}{key}__")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def generate(generator, text: torch.Tensor, seed: int, batch: int = 500) -> torch.Tensor:
    z = torch.randn(
        len(text), generator.config.noise_dim, generator=torch.Generator().manual_seed(seed)
    )
    with torch.no_grad():
        return torch.cat(
            [generator(z[i : i + batch], text[i : i + batch]) for i in range(0, len(text), batch)]
        )


def score(generator, text_encoder, data: dict, n: int) -> dict:
    evaluator = load_module(EVALUATOR).eval()
    index = torch.randperm(len(data["test_labels"]), generator=torch.Generator().manual_seed(0))[:n]
    index = index.sort().values
    captions = catalog_captions(pd.read_parquet(CAPTIONS))
    texts = captions.loc[index.tolist(), "caption"].astype(str).tolist()
    _, embeddings, rows = text_encoder.encode_unique(texts)
    text = embeddings[rows]  # the encoder the generator was trained with (tuned or not)
    images, other_noise = generate(generator, text, 0), generate(generator, text, 1)
    labels = data["test_labels"].long()[index]
    real_feats, _ = evaluator.predict(data["test_images"][index])
    fake_feats, predicted = evaluator.predict(images)
    accuracy = conditional_accuracy(predicted, labels, evaluator.config.n_classes)
    attributes = attribute_accuracy(
        images, labels, requested_attributes(texts), load_file(str(ATTRIBUTES))
    )
    return {
        "n": n,
        "fid_evaluator": frechet_distance(real_feats, fake_feats),
        "class_accuracy": accuracy["mean"],
        "class_accuracy_per_class": accuracy["per_class"],
        "tone": attributes["tone"],
        "fit": attributes["fit"],
        "pattern": attributes["pattern"],
        "noise_l1": float((images - other_noise).abs().mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variants", nargs="+", help="name={json overrides of conditional.training}")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n", type=int, default=3000, help="test captions scored")
    parser.add_argument("--saved", type=Path, help="score the model saved in this folder")
    args = parser.parse_args()
    base = parameters("conditional")
    data, conditioning = load_file(str(MODEL_INPUT)), load_file(str(CONDITIONING))
    path = RESULTS / "conditional_variants.json"
    results = json.loads(path.read_text()) if path.is_file() else {"variants": {}}
    if args.saved:
        (name,) = args.variants
        entry = {
            "saved": str(args.saved),
            "epochs": args.epochs,
            **score(
                load_module(args.saved / "generator.safetensors"),
                TextEncoderDataset(filepath=str(args.saved / "text_encoder")).load(),
                data,
                args.n,
            ),
        }
        results["variants"][name] = entry
        print(name, json.dumps({k: v for k, v in entry.items() if "per_class" not in k}))
        path.write_text(json.dumps({**results, "machine": machine()}, indent=2) + "\n")
        return
    for spec in args.variants:
        name, _, overrides = spec.partition("=")
        overrides = json.loads(overrides or "{}")
        encoder = overridden(base.text_encoder, **dotted(overrides.get("text_encoder", {})))
        variant_conditioning = conditioning
        if encoder.trainable_top_layers:  # tuning needs the frozen layers' states
            variant_conditioning = encode_conditioning(
                pd.read_parquet(CAPTIONS),
                pd.read_parquet(COMPOSED),
                base.sample_captions,
                encoder,
            )
        training = overridden(
            base.training,
            **{
                "epochs": args.epochs,
                "checkpoint_dir": None,
                "device": "cpu",
                **dotted({k: v for k, v in overrides.items() if k != "text_encoder"}),
            },
        )
        generator, _, _, text_encoder, history, summary = train_conditional(
            data, variant_conditioning, training, encoder, base.sample_captions
        )
        entry = {
            "overrides": overrides,
            "epochs": args.epochs,
            "train_s": summary["wall_time_s"],
            **score(generator, text_encoder, data, args.n),
            "final_window": history.iloc[-1].to_dict(),
        }
        results["variants"][name] = entry
        print(name, json.dumps({k: v for k, v in entry.items() if "per_class" not in k}))
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps({**results, "machine": machine()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
