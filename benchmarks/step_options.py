"""What an epoch of the conditional GAN costs at other batch sizes, and with ``torch.compile``.

The trainer's own step (``prepare_training``: the default config on real Fashion-MNIST and the
cached conditioning when present) at each ``--batches`` size in eager mode, and at the default
batch with G, D and E wrapped in ``torch.compile`` (inductor, CPU). Cells interleave over
``--rounds`` rounds of ``--seconds`` each on ``--threads`` torch threads, so a change in the
machine's load hits them alike; the medians of the per-step times give ms a step and seconds
an epoch (the training split over the batch). ``compile_s`` is the first three compiled steps
(what a run pays once). The load average is recorded before and after.

    python benchmarks/step_options.py [--batches 32,48,64] [--threads 2]   # about 4 minutes
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from _common import BUNDLED_FEATURES, parameters, save
from fashiongan.config import overridden
from fashiongan.training.conditional import critic_of, prepare_training
from threads import load_data, time_steps


def make_steps(batches: list[int], data: dict, conditioning: dict) -> tuple[dict, float]:
    """Eager steps at each batch size, the compiled step at the default one, its compile time."""
    base = parameters("conditional").training
    images, labels = data["train_images"], data["train_labels"]

    def prepared(batch_size: int):
        params = overridden(base, device="cpu", checkpoint_dir=None, batch_size=batch_size)
        return prepare_training(
            images, labels, conditioning, params, model_extra=BUNDLED_FEATURES
        ).step

    steps = {f"batch_{b}": prepared(b) for b in batches}
    compiled = prepared(base.batch_size)
    compiled.g, compiled.d, compiled.e = map(torch.compile, (compiled.g, compiled.d, compiled.e))
    compiled.critic = critic_of(compiled.d, with_heads=base.aux_weight > 0)
    started = time.perf_counter()
    for step in range(3):
        compiled(step)
    steps[f"batch_{base.batch_size}_compiled"] = compiled
    return steps, time.perf_counter() - started


def measure(steps: dict, seconds: float, rounds: int) -> dict[str, list[float]]:
    """Per-step times of every cell, interleaved per round."""
    times: dict[str, list[float]] = {}
    counters = dict.fromkeys(steps, 3)
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(2):  # warm-up after the other cells
                step(counters[name])
                counters[name] += 1
            new = time_steps(step, counters[name], seconds)
            counters[name] += len(new)
            times.setdefault(name, []).extend(new)
    return times


def summarise(times: dict[str, list[float]], n_train: int, default_batch: int) -> dict:
    """ms a step and s an epoch per cell; the compiled step's speed-up over the eager one."""
    cells = {}
    for name, values in times.items():
        batch = int(name.split("_")[1])
        median = statistics.median(values)
        cells[name] = {
            "median_step_ms": round(1000 * median, 1),
            "s_per_epoch": round(median * (n_train // batch), 1),
            "steps_timed": len(values),
        }
    eager, compiled = cells[f"batch_{default_batch}"], cells[f"batch_{default_batch}_compiled"]
    cells["compiled_speedup"] = round(eager["median_step_ms"] / compiled["median_step_ms"], 3)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", default="32,48,64", help="eager batch sizes, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0, help="per cell and round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, conditioning, real = load_data()
    batches = [int(b) for b in args.batches.split(",")]
    load_before = os.getloadavg()
    steps, compile_s = make_steps(batches, data, conditioning)
    times = measure(steps, args.seconds, args.rounds)
    default_batch = parameters("conditional").training.batch_size
    save(
        "step_options",
        {
            "command": f"python benchmarks/step_options.py --batches {args.batches} "
            f"--threads {args.threads} --seconds {args.seconds:g} --rounds {args.rounds}",
            "real_data": real,
            "threads": args.threads,
            "load_before": [round(v, 2) for v in load_before],
            "load_after": [round(v, 2) for v in os.getloadavg()],
            "compile_s": round(compile_s, 1),
            "results": summarise(times, len(data["train_images"]), default_batch),
        },
    )


if __name__ == "__main__":
    main()
