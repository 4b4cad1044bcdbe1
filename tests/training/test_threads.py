"""How many torch threads a trainer takes: a count as given, or ``auto`` from the free cores."""

import pytest
import torch
from pydantic import ValidationError

from fashiongan import compute
from fashiongan.compute import free_cores, resolve_threads, running_elsewhere, torch_threads
from fashiongan.config import load_parameters, overridden
from fashiongan.training.baseline import fingerprint, train_mlp_gan
from tests.conftest import REPO_ROOT

BASELINE = load_parameters(REPO_ROOT / "conf")["baseline"].training


@pytest.mark.parametrize(
    "cores,busy,expected",
    [
        (2, 0, 2),  # a quiet 2-core machine: both
        (2, 0.3, 2),  # background noise (a 1-minute load average) does not cost a core
        (2, 1, 1),  # one other CPU-bound process: the one free core
        (2, 1.6, 1),
        (2, 5, 1),  # oversubscribed: still one, never zero
        (16, 3, 13),
        (4, 0, 4),  # never more than the usable cores
    ],
)
def test_free_cores_subtracts_the_busy_ones_and_keeps_one(cores, busy, expected):
    assert free_cores(cores=cores, busy=busy) == expected


def test_running_elsewhere_is_the_median_runnable_count_less_this_process(tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("1.90 1.20 0.80 3/412 12345\n")  # 3 running: this reader and 2 others
    assert running_elsewhere(samples=3, interval_s=0, source=loadavg) == 2
    assert running_elsewhere(source=tmp_path / "missing") is None  # no /proc: macOS, Windows


def test_free_cores_reads_the_affinity_and_what_runs_now(monkeypatch):
    monkeypatch.setattr(compute.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(compute, "running_elsewhere", lambda *args: 1)
    monkeypatch.setattr(compute.os, "getloadavg", lambda: (3.5, 3.0, 3.0))  # lagging: unused
    assert free_cores() == 3


def test_without_proc_the_one_minute_load_and_the_cpu_count_stand_in(monkeypatch):
    monkeypatch.delattr(compute.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(compute.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(compute, "running_elsewhere", lambda *args: None)
    monkeypatch.setattr(compute.os, "getloadavg", lambda: (2.2, 0.1, 0.1))  # the 1-minute one
    assert free_cores() == 6


@pytest.fixture
def threads_restored():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_auto_resolves_to_the_free_cores_and_counts_pass_through(monkeypatch, threads_restored):
    monkeypatch.setattr(compute, "free_cores", lambda: 3)
    torch.set_num_threads(4)
    assert [resolve_threads(n) for n in ("auto", 2, None)] == [3, 2, None]
    with torch_threads("auto"):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == 4


def test_auto_never_takes_more_threads_than_torch_has(monkeypatch, threads_restored):
    """A worker pinned to one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)) stays on one."""
    monkeypatch.setattr(compute, "free_cores", lambda **kwargs: 2)
    torch.set_num_threads(1)
    assert resolve_threads("auto") == 1
    (follow,) = compute.thread_hooks("auto")
    follow.checked = -1e9  # due now
    follow(1)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("value", [0, -1, "two", 1.5])
def test_a_thread_setting_is_a_count_or_auto(value):
    with pytest.raises(ValidationError, match="num_threads"):
        overridden(BASELINE, num_threads=value)
    assert overridden(BASELINE, num_threads="auto").num_threads == "auto"


def test_threads_do_not_shape_the_baseline_run():
    assert fingerprint(BASELINE) == fingerprint(overridden(BASELINE, num_threads="auto"))


def test_the_baseline_trains_on_its_threads_and_restores_them(monkeypatch):
    seen = []
    monkeypatch.setattr(compute, "free_cores", lambda: 1)
    monkeypatch.setattr(
        "fashiongan.training.baseline.fit", lambda *a, **k: seen.append(torch.get_num_threads())
    )
    images = torch.zeros(8, 1, 28, 28)
    before = torch.get_num_threads()
    for n in ("auto", 2):
        train_mlp_gan(images, overridden(BASELINE, num_threads=n, batch_size=4, device="cpu"))
    assert seen == [1, 2] and torch.get_num_threads() == before


def test_auto_follows_the_free_cores_during_training(monkeypatch, threads_restored):
    busy = iter([1, 0])  # a competitor by the first check, gone by the second
    monkeypatch.setattr(compute, "busy_cores", lambda **kwargs: next(busy))
    monkeypatch.setattr(compute, "usable_cores", lambda: 2)
    clock = iter([0.0, 10.0, 31.0, 31.0, 40.0, 62.0, 62.0])  # seconds: checks at 31 and 62
    monkeypatch.setattr(compute.time, "monotonic", lambda: next(clock))
    torch.set_num_threads(2)
    (follow,) = compute.thread_hooks("auto")
    seen = []
    for step in (1, 2, 3, 4):
        follow(step)
        seen.append(torch.get_num_threads())
    assert seen == [2, 1, 1, 2]
    assert compute.thread_hooks(2) == [] and compute.thread_hooks(None) == []
