"""Training-step time of the baseline and conditional GANs on 1 and 2 torch threads, alone and
beside one CPU-bound process, side by side in one run.

Each cell times the trainers' own step (``prepare_baseline`` / ``prepare_training``: the real
default configs and model sizes, on real Fashion-MNIST and the cached conditioning when present,
else random tensors of the same shapes) for ``--seconds`` per round; rounds interleave the
cells so that a change in the machine's load hits them alike. "Beside" runs a busy-loop
process (pure Python, one core) for the whole of that half of the round. The medians of the
per-step times give steps/s; the ratios compare 2 threads with 1 and contention with none.
``os.getloadavg()`` is recorded before and after, since "alone" is only as quiet as the
machine; ``auto_threads_picked`` is what ``num_threads: auto`` chose at the start of each half
round (alone, and with the competitor running).

    python benchmarks/threads.py [--seconds 4] [--rounds 3]   # about 2-3 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from _common import BUNDLED_FEATURES, parameters, save
from fashiongan.compute import free_cores
from fashiongan.config import overridden
from fashiongan.training.baseline import prepare_baseline
from fashiongan.training.conditional import prepare_training

THREADS = (1, 2)


def catalog_paths(*names: str) -> list[Path]:
    """Where the catalog puts these datasets for the default run (read now, not hard-coded)."""
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(Path.cwd())
    loader = settings.CONFIG_LOADER_CLASS(conf_source="conf", **settings.CONFIG_LOADER_ARGS)
    catalog = loader["catalog"]
    return [Path(catalog[name]["filepath"]) for name in names]


def load_data() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], bool]:
    """The training split and its conditioning, or random tensors of the same shapes."""
    model_input, conditioning = catalog_paths(
        "fashion_mnist_model_input", "conditional.conditioning"
    )
    if model_input.is_file() and conditioning.is_file():
        return load_file(str(model_input)), load_file(str(conditioning)), True
    n, texts, dim = 4096, 512, 384
    g = torch.Generator().manual_seed(0)
    data = {
        "train_images": torch.rand(n, 1, 28, 28, generator=g) * 2 - 1,
        "train_labels": torch.arange(n) % 10,
    }
    conditioning = {
        "text_embeddings": torch.randn(texts, dim, generator=g),
        "caption_index": torch.randint(0, texts, (n,), generator=g),
        "reference_index": torch.randint(0, n, (n,), generator=g),
        "modification_index": torch.randint(0, texts, (n,), generator=g),
        "sample_text": torch.randn(8, dim, generator=g),
    }
    return data, conditioning, False


def make_steps(data: dict, conditioning: dict) -> dict[str, Callable[[int], object]]:
    """The default baseline and conditional training steps, on the CPU, nothing saved."""
    baseline = overridden(parameters("baseline").training, device="cpu", checkpoint_dir=None)
    conditional = overridden(parameters("conditional").training, device="cpu", checkpoint_dir=None)
    images, labels = data["train_images"], data["train_labels"]
    return {
        "baseline": prepare_baseline(images, baseline).step,
        "conditional": prepare_training(
            images, labels, conditioning, conditional, model_extra=BUNDLED_FEATURES
        ).step,
    }


@contextlib.contextmanager
def busy_process(on: bool) -> Iterator[None]:
    """One CPU-bound competitor (a pure-Python busy loop) while the block runs."""
    if not on:
        yield
        return
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)  # let it get going
    try:
        yield
    finally:
        competitor.kill()
        competitor.wait()


def time_steps(step: Callable[[int], object], first: int, seconds: float) -> list[float]:
    """Per-step wall times of consecutive steps for about ``seconds`` (at least 3 steps)."""
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - started < seconds:
        begun = time.perf_counter()
        step(first + len(times))
        times.append(time.perf_counter() - begun)
    return times


def measure(steps: dict, seconds: float, rounds: int) -> tuple[dict, dict]:
    """All cells, interleaved per round: {"<model>/<alone|beside_busy>/<n>t": step times}, and
    what ``num_threads: auto`` picked at the start of each half round."""
    times: dict[str, list[float]] = {}
    auto: dict[str, list[int]] = {"alone": [], "beside_busy": []}
    counters, previous = dict.fromkeys(steps, 0), torch.get_num_threads()
    for _ in range(rounds):
        for contention in ("alone", "beside_busy"):
            with busy_process(contention == "beside_busy"):
                auto[contention].append(free_cores())
                for model, step in steps.items():
                    for threads in THREADS:
                        torch.set_num_threads(threads)
                        for _ in range(2):  # warm-up on this thread count
                            step(counters[model])
                            counters[model] += 1
                        cell = times.setdefault(f"{model}/{contention}/{threads}t", [])
                        new = time_steps(step, counters[model], seconds)
                        counters[model] += len(new)
                        cell.extend(new)
    torch.set_num_threads(previous)
    return times, auto


def summarise(times: dict[str, list[float]]) -> dict[str, dict]:
    """Per model: steps/s per cell, and the ratios the defaults are chosen from."""
    result: dict[str, dict] = {}
    for key, values in times.items():
        model, contention, threads = key.split("/")
        median = statistics.median(values)
        result.setdefault(model, {})[f"{contention}_{threads}"] = {
            "median_step_ms": round(1000 * median, 2),
            "steps_per_s": round(1 / median, 2),
            "steps_timed": len(values),
        }
    for cells in result.values():
        rate = {name: cell["steps_per_s"] for name, cell in cells.items()}
        cells["ratios"] = {
            "alone_2t_over_1t": round(rate["alone_2t"] / rate["alone_1t"], 3),
            "beside_busy_2t_over_1t": round(rate["beside_busy_2t"] / rate["beside_busy_1t"], 3),
            "1t_beside_busy_over_alone": round(rate["beside_busy_1t"] / rate["alone_1t"], 3),
            "2t_beside_busy_over_alone": round(rate["beside_busy_2t"] / rate["alone_2t"], 3),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="per cell and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data, conditioning, real = load_data()
    steps = make_steps(data, conditioning)
    load_before = os.getloadavg()
    started = time.perf_counter()
    times, auto = measure(steps, args.seconds, args.rounds)
    wall = time.perf_counter() - started
    save(
        "threads",
        {
            "command": "python benchmarks/threads.py "
            f"--seconds {args.seconds:g} --rounds {args.rounds}",
            "real_data": real,
            "seconds_per_cell_and_round": args.seconds,
            "rounds": args.rounds,
            "wall_s": round(wall, 1),
            "load_before": [round(v, 2) for v in load_before],
            "load_after": [round(v, 2) for v in os.getloadavg()],
            "auto_threads_picked": auto,
            "results": summarise(times),
        },
    )


if __name__ == "__main__":
    main()
