"""The helpers of benchmarks/conditional_variants.py and step_options.py: the sampling noise's
scale, the extra averages of G tracked beside a run, and the step table's arithmetic."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(BENCHMARKS))  # the scripts import their siblings
    try:
        yield SimpleNamespace(
            variants=importlib.import_module("conditional_variants"),
            step_options=importlib.import_module("step_options"),
        )
    finally:
        sys.path.remove(str(BENCHMARKS))


class NoiseEcho(nn.Module):
    """A 'generator' that draws its noise: what generate() feeds it, made visible."""

    config = SimpleNamespace(noise_dim=3)

    def forward(self, noise: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return noise + 0 * text[:, :1]


def test_noise_scale_widens_the_same_draw(scripts):
    text = torch.zeros(7, 5)
    plain = scripts.variants.generate(NoiseEcho(), text, seed=0, batch=3)
    wide = scripts.variants.generate(NoiseEcho(), text, seed=0, noise_scale=1.5, batch=3)
    assert plain.shape == (7, 3)
    torch.testing.assert_close(wide, 1.5 * plain)
    other = scripts.variants.generate(NoiseEcho(), text, seed=1)
    assert not torch.equal(plain, other)


def test_extra_averages_follow_the_run_and_leave_the_trainer_as_it_was(scripts, monkeypatch):
    training = scripts.variants.conditional_training
    generator = nn.Linear(2, 2)

    def prepare(*args, **kwargs):
        return SimpleNamespace(nets=(generator, None, None), hooks=[])

    monkeypatch.setattr(training, "prepare_training", prepare)
    with scripts.variants.extra_averages([(0.5, 10), (0.999, 10), (0.999, 3)]) as averages:
        run = training.prepare_training()
        assert len(run.hooks) == 3
        for step in range(30):  # past the warm-up, which caps both decays at first
            with torch.no_grad():
                generator.weight.add_(1.0)
            for hook in run.hooks:
                hook(step)
    assert training.prepare_training is prepare
    slow, fast = averages[0.999, 10].module.weight, averages[0.5, 10].module.weight
    assert not torch.allclose(slow, fast)  # different decays, different averages
    assert (fast - slow).min() > 0  # the shorter average is nearer the rising weights
    assert (generator.weight - fast).min() > 0  # and still behind them
    longer = averages[0.999, 3].module.weight  # a shorter warm-up keeps more of the early steps
    assert (slow - longer).min() > 0


def test_extra_averages_read_decay_and_optional_warmup(scripts):
    wanted = scripts.variants.averages_wanted("0.998,0.9999@4")
    assert wanted == [(0.998, scripts.variants.WARMUP), (0.9999, 4)]


def test_step_table_gives_seconds_an_epoch_and_the_compiled_speedup(scripts):
    times = {
        "batch_32": [0.04, 0.05, 0.06],
        "batch_64": [0.08, 0.1, 0.3],
        "batch_64_compiled": [0.05, 0.05, 0.2],
    }
    table = scripts.step_options.summarise(times, n_train=640, default_batch=64)
    assert table["batch_32"] == {"median_step_ms": 50.0, "s_per_epoch": 1.0, "steps_timed": 3}
    assert table["batch_64"]["s_per_epoch"] == 1.0
    assert table["compiled_speedup"] == 2.0
