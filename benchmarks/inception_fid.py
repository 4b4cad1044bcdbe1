"""Inception FID at N = 10,000, the protocol of Lucic et al. 2018, so the literature can compare.

Each model draws one image per test item exactly as the evaluation does (conditional generators
from that item's caption, unconditional ones from noise; seed 0), and its ImageNet Inception-v3
pool features are set against those of the 10,000 Fashion-MNIST test images. The evaluation
pipeline computes the same FID at N = 200 only, because on a CPU Inception takes hours for 10k.

Why the caching: the run takes about 20-40 minutes per model on one thread of a shared CPU and
may be stopped. Features are saved every ``--chunk`` images under
``data/08_reporting/inception_fid/<key>/`` (the key hashes the input: the test tensor, or the
generator file's SHA-256 + n + seed), so a restart continues where it stopped and the real side
is computed once. The Inception network is frozen TorchScript fed channels_last tensors, fp32:
``--speed-check`` measures that against the plain network and checks that the features agree.

    python benchmarks/inception_fid.py NAME=PATH [NAME=PATH ...] [--n 10000] [--threads 1]
    python benchmarks/inception_fid.py --speed-check [--threads 1]   # ~1 minute
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from kedro.io import DatasetError
from safetensors.torch import load_file, save_file

from _common import RESULTS, machine
from fashiongan.datasets.safetensors import load_module
from fashiongan.evaluation.inception import INCEPTION_EXTRACTOR
from fashiongan.evaluation.metrics import (
    extract_features,
    frechet_distance,
    load_inception_torchscript,
)
from fashiongan.evaluation.sampling import caption_texts, sample_model, sample_subset

MODEL_INPUT = Path("data/05_model_input/fashion_mnist.safetensors")
CAPTIONS = Path("data/04_feature/fashion_mnist_captions.parquet")
EVALUATION_METRICS = Path("data/08_reporting/evaluation/default/metrics.json")
CACHE = Path("data/08_reporting/inception_fid")
EXTRACTOR = f"{INCEPTION_EXTRACTOR}; frozen TorchScript, channels_last, fp32"
TIMING = (
    "images_per_s",
    "wall_s",
    "load_before",
    "load_after",
    "threads",
    "new_images",
    "extract_s",
)
LITERATURE = {
    "source": "Lucic et al. 2018, Are GANs Created Equal?, Fashion-MNIST, Inception FID, N=10k",
    "fid": {"WGAN": 21.5, "BEGAN": 22.9, "WGAN-GP": 24.5, "NS GAN": 26.5, "MM GAN": 29.6,
            "LSGAN": 30.7, "VAE": 43.6},
}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models",
        nargs="*",
        metavar="NAME=PATH",
        help="a model folder (or its generator.safetensors) and its name",
    )
    parser.add_argument("--n", type=int, default=10_000, help="images a side (10,000 = all)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="the evaluation's sampling seed")
    parser.add_argument("--chunk", type=int, default=1_000, help="images per saved feature chunk")
    parser.add_argument("--batch-size", type=int, default=50, help="images per Inception call")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also the floor: n random training images (optional, slow)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS / "inception_fid.json")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument(
        "--speed-check",
        action="store_true",
        help="time plain vs frozen+channels_last Inception and compare features",
    )
    args = parser.parse_args(argv)
    if args.n < 2 or args.chunk < 1 or args.batch_size < 1 or args.threads < 1:
        raise ValueError("--n must be >= 2 and --chunk, --batch-size, --threads >= 1")
    if not args.models and not args.speed_check and not args.floor:
        raise ValueError("name at least one model as NAME=PATH (or pass --speed-check / --floor)")
    return args


def model_file(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` → (name, generator file); PATH is a model folder or the file itself."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"model {spec!r} is not NAME=PATH (e.g. baseline=models/baseline/default)")
    file = Path(path)
    file = file / "generator.safetensors" if file.is_dir() else file
    if not file.is_file():
        raise FileNotFoundError(f"model {name!r}: no generator file at {file}")
    return name, file


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tensor_sha256(tensor: torch.Tensor) -> str:
    """Digest of a tensor's dtype, shape and bytes: a changed input gets a new cache key."""
    digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def fast_inception() -> Callable[[torch.Tensor], torch.Tensor]:
    """The project's Inception (it feeds channels_last) with its TorchScript frozen: same fp32
    maths, ~1.4× faster on one CPU thread (see ``--speed-check``). (B, 1, H, W) → (B, 2048)."""
    inception = load_inception_torchscript()
    inception.network = torch.jit.freeze(inception.network.eval())
    return inception


def plain_inception() -> Callable[[torch.Tensor], torch.Tensor]:
    """The extractor before the speed-ups (NCHW input, not frozen), for ``--speed-check``."""
    inception = load_inception_torchscript()
    return lambda images: inception.network(inception.preprocess(images)).flatten(1)


def chunked_features(
    extractor: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    folder: Path,
    chunk: int,
    batch_size: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Features (N, 2048) of ``images``, saved every ``chunk`` images so a killed run resumes.

    Returns:
        The features (float64) and what this process computed: ``new_images``, ``extract_s``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    parts, new_images, extract_s = [], 0, 0.0
    for start in range(0, len(images), chunk):
        path = folder / f"features_{start:06d}_{chunk}.safetensors"
        if not path.is_file():
            started = time.perf_counter()
            with torch.inference_mode():
                feats = extract_features(extractor, images[start : start + chunk], batch_size)
            extract_s += time.perf_counter() - started
            new_images += len(feats)
            save_file({"features": feats.float().contiguous()}, str(path) + ".tmp")
            os.replace(str(path) + ".tmp", path)  # a kill never leaves a half-written chunk
            done = min(start + chunk, len(images))
            print(f"  {folder.name}: {done}/{len(images)} images, "
                  f"{new_images / extract_s:.2f} images/s", flush=True)  # fmt: skip
        parts.append(load_file(str(path))["features"].double())
    return torch.cat(parts), {"new_images": new_images, "extract_s": round(extract_s, 1)}


def cached_samples(file: Path, folder: Path, n: int, seed: int) -> torch.Tensor:
    """The model's n evaluation images (n, 1, 28, 28), drawn once and kept beside its features
    so that a resumed run extracts the very same images."""
    path = folder / "samples.safetensors"
    if path.is_file():
        return load_file(str(path))["images"]
    data = load_file(str(MODEL_INPUT))
    labels = data["test_labels"].long()
    index = sample_subset(len(labels), n, seed)
    texts = caption_texts(pd.read_parquet(CAPTIONS), index)
    with torch.inference_mode():
        drawn = sample_model(load_module(file), texts, labels[index], index, seed, 500, "cpu")
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"images": drawn["images"].contiguous()}, str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)
    return drawn["images"]


def real_images(n: int, seed: int, split: str = "test") -> torch.Tensor:
    """The test items the models were asked for (all 10,000 at full n), or for the floor n random
    training images drawn as the evaluation draws them (seed + 2)."""
    data = load_file(str(MODEL_INPUT))
    if split == "test":
        return data["test_images"][sample_subset(len(data["test_images"]), n, seed)]
    draw = torch.Generator().manual_seed(seed + 2)
    return data["train_images"][torch.randperm(len(data["train_images"]), generator=draw)[:n]]


def measured(
    run: Callable[[], tuple[torch.Tensor, dict]], threads: int
) -> tuple[torch.Tensor, dict]:
    """Features from ``run`` and how fast they came: images/s, wall time, load before/after."""
    load_before, started = os.getloadavg(), time.perf_counter()
    feats, stats = run()
    speed = stats["new_images"] / stats["extract_s"] if stats["new_images"] else None
    return feats, {
        "n": len(feats),
        "images_per_s": None if speed is None else round(speed, 2),
        "wall_s": round(time.perf_counter() - started, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "threads": threads,
        **stats,
    }


def project_n200() -> dict[str, object]:
    """The evaluation report's own Inception FIDs (N = 200), for context; {} if not run here."""
    if not EVALUATION_METRICS.is_file():
        return {}
    report = json.loads(EVALUATION_METRICS.read_text())
    fids = {name: row.get("fid_inception") for name, row in report.get("rows", {}).items()}
    n = report.get("settings", {}).get("inception", {}).get("n_samples")
    return {"n": n, "source": str(EVALUATION_METRICS), "fid": fids}


def update_results(path: Path, section: str, name: str | None, entry: dict) -> None:
    """Merge one entry into the results JSON (entries of other models and runs are kept)."""
    results = json.loads(path.read_text()) if path.is_file() else {"benchmark": "inception_fid"}
    results.update(machine=machine(), extractor=EXTRACTOR, literature=LITERATURE)
    n200 = project_n200() or results.get("project_n200", {})  # no report here: keep the last
    results.update(project_n200=n200, command=" ".join(["python", *sys.argv]))
    entries = results if name is None else results.setdefault(section, {})
    key = section if name is None else name
    previous = entries.get(key, {})
    if entry.get("new_images") == 0 and previous.get("cache") == entry.get("cache"):
        entry = {**entry, **{k: previous[k] for k in TIMING if k in previous}}  # all cached
    entries[key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{section}{'' if name is None else '/' + name}: {json.dumps(entry)}", flush=True)


def speed_check(args: argparse.Namespace, n_images: int = 50, repeats: int = 3) -> None:
    """Plain vs frozen + channels_last Inception on ``n_images`` test images: the median images/s
    of each, the largest feature difference, and the FID (test vs train images) with each."""
    plain = plain_inception()
    fast = fast_inception()
    test, train = real_images(n_images, args.seed), real_images(n_images, args.seed, "train")
    rows = {}
    for name, extractor in (("plain", plain), ("frozen_channels_last", fast)):
        with torch.inference_mode():
            extract_features(extractor, test[:4], args.batch_size)  # warm-up (freezing, caches)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                feats = extract_features(extractor, test, args.batch_size)
                times.append(time.perf_counter() - started)
            other = extract_features(extractor, train, args.batch_size)
        times.sort()
        rows[name] = {"images_per_s": round(n_images / times[len(times) // 2], 2),
                      "feats": feats, "fid": frechet_distance(feats, other)}  # fmt: skip
    gap = (rows["plain"]["feats"] - rows["frozen_channels_last"]["feats"]).abs().max().item()
    scale = rows["plain"]["feats"].abs().max().item()
    entry = {name: {k: v for k, v in row.items() if k != "feats"} for name, row in rows.items()}
    entry.update(n_images=n_images, repeats=repeats, threads=args.threads,
                 max_abs_feature_diff=gap, max_rel_feature_diff=gap / scale,
                 speedup=round(entry["frozen_channels_last"]["images_per_s"]
                               / entry["plain"]["images_per_s"], 2),
                 load_after=[round(x, 2) for x in os.getloadavg()])  # fmt: skip
    update_results(args.results, "speed_check", None, entry)


def score(args: argparse.Namespace, name: str, images: torch.Tensor, key: str, real, extra: dict):
    """Extract (resumably) and score one model's or the floor's images against the test side."""
    extractor = fast_inception()
    run = functools.partial(
        chunked_features, extractor, images, args.cache / key, args.chunk, args.batch_size
    )
    feats, stats = measured(run, args.threads)
    entry = {"fid": round(frechet_distance(real, feats), 3), **stats, "seed": args.seed,
             "extractor": EXTRACTOR, "cache": str(args.cache / key), **extra}  # fmt: skip
    update_results(args.results, "models", name, entry)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    models = [model_file(spec) for spec in args.models]  # bad specs fail before any work
    if args.speed_check:
        speed_check(args)
    if not models and not args.floor:
        return 0
    test = real_images(args.n, args.seed)
    real_key = f"real-test-{tensor_sha256(test)[:16]}"
    print(f"real test side: {len(test)} images → {args.cache / real_key}", flush=True)
    run = functools.partial(
        chunked_features, fast_inception(), test, args.cache / real_key, args.chunk, args.batch_size
    )
    real, stats = measured(run, args.threads)
    update_results(args.results, "real_test", None, {**stats, "cache": str(args.cache / real_key)})
    for name, file in models:
        sha = file_sha256(file)
        key = f"{name}-{sha[:16]}-n{args.n}-seed{args.seed}"
        print(f"{name}: {file} (sha256 {sha[:16]}) → {args.cache / key}", flush=True)
        images = cached_samples(file, args.cache / key, args.n, args.seed)
        score(args, name, images, key, real, {"generator": str(file), "generator_sha256": sha})
    if args.floor:
        train = real_images(args.n, args.seed, "train")
        key = f"floor-train-{tensor_sha256(train)[:16]}"
        score(args, "floor", train, key, real, {"optional": True, "what": "random train images"})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DatasetError, FileNotFoundError, ValueError, KeyError) as err:
        print(f"inception_fid: {err}", file=sys.stderr)
        sys.exit(2)
