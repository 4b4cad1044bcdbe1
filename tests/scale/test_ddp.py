"""torchrun + DDP on CPU (Gloo): 2 processes against 1 with the same global batch.

Tolerance: the MLP baseline has no BatchNorm and the test sets dropout to 0, so the 2-rank run
computes the same global-batch gradients as 1 process; only the order of the float32 sums differs
(DDP averages two half-batch means). After 12 Adam steps the weights agree within 1e-6 (measured:
about 2e-8). The conditional GAN is not compared number for number on CPU: torch's SyncBatchNorm
needs CUDA, so on Gloo each rank normalises with its half-batch statistics, and its mode-seeking
term is a ratio of means taken per rank. It is checked for what DDP guarantees instead: replicas
with identical parameters, metrics averaged over ranks, and losses in line with 1 process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fashiongan.models.mlp_gan import MLPGANConfig, MLPGenerator
from fashiongan.training import distributed
from fashiongan.training.baseline import train_mlp_gan
from tests.scale._worker import BASELINE, ddp
from tests.scale.conftest import WORKER, finish, start, torchrun

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The scenarios under torchrun with 2 processes, and meanwhile here in 1 (one thread each)."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    double = start(torchrun(2, str(WORKER), "ddp", str(two)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ddp(one)
    finally:
        torch.set_num_threads(threads)
    finish(double)
    return {"one": one, "two": two}


def tensors(folder: Path, rank: int = 0) -> dict[str, torch.Tensor]:
    return load_file(str(folder / f"rank{rank}.safetensors"))


def report(folder: Path, rank: int = 0) -> dict:
    return json.loads((folder / f"rank{rank}.json").read_text())


def test_two_gloo_ranks_match_one_process(runs):
    one, two = tensors(runs["one"]), tensors(runs["two"])
    assert report(runs["two"])["world"] == 2 and report(runs["one"])["world"] == 1
    baseline = [k for k in one if k.startswith("baseline.")]
    assert len(baseline) == 14  # weight and bias of G's 4 linear layers and D's 3
    for key in baseline:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-6, msg=key)
    # Something was learned, so agreeing is not trivial: weights moved well beyond the tolerance.
    torch.manual_seed(BASELINE.seed)  # as the trainer seeds before building: its initial G
    initial = MLPGenerator(MLPGANConfig(**BASELINE.model.model_dump()))
    assert (one["baseline.0.net.0.weight"] - initial.net[0].weight).abs().max() > 1e-4
    history_one, history_two = report(runs["one"])["history"], report(runs["two"])["history"]
    assert [r["step"] for r in history_two] == [2, 4, 6, 8, 10, 12]
    for a, b in zip(history_one, history_two, strict=True):
        assert b == pytest.approx(a, abs=1e-6)  # metrics are the global batch's, not rank 0's


def test_only_rank_zero_writes_checkpoints_and_ranks_agree(runs):
    rank0, rank1 = report(runs["two"], 0), report(runs["two"], 1)
    assert rank0["checkpoints_saved"] and rank1["checkpoints_saved"] == []
    assert rank0["history"] == rank1["history"]
    zero, other = tensors(runs["two"], 0), tensors(runs["two"], 1)
    for key, value in zero.items():
        if "running_" not in key:  # per-rank BN statistics on CPU; every parameter is shared
            assert torch.equal(value, other[key]), key


def test_every_rank_resumes_from_the_checkpoint_rank_zero_picks(runs):
    """Newest checkpoint torn by rank 0: all ranks fall back to the previous one, same result."""
    for rank in (0, 1):
        result = tensors(runs["two"], rank)
        for key in [k for k in result if k.startswith("baseline.0.")]:
            assert torch.equal(result["resumed." + key[len("baseline.") :]], result[key]), key
        assert report(runs["two"], rank)["resumed_history"] == report(runs["two"], rank)["history"]


def test_conditional_gan_trains_under_ddp(runs):
    one, two = (
        report(runs["one"])["conditional_history"],
        report(runs["two"])["conditional_history"],
    )
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for name in ("d_loss", "e_loss", "g_adv_loss", "g_triplet_loss"):  # means over the run
        mean_one, mean_two = (sum(r[name] for r in h) / len(h) for h in (one, two))
        assert mean_two == pytest.approx(mean_one, rel=0.1), name
    weights = tensors(runs["two"])
    assert all(torch.isfinite(v).all() for k, v in weights.items() if k.startswith("conditional"))


def test_global_batch_must_split_evenly(monkeypatch):
    monkeypatch.setattr(distributed, "world", lambda: 3)
    with pytest.raises(ValueError, match=r"baseline.training.batch_size is the global batch \(8\)"):
        train_mlp_gan(torch.zeros(16, 1, 28, 28), BASELINE)


def test_shards_partition_the_global_batch(monkeypatch):
    batch = torch.arange(12)
    monkeypatch.setattr(distributed, "world", lambda: 3)
    parts = []
    for rank in range(3):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        parts.append(distributed.shard(batch))
    assert torch.equal(torch.cat(parts), batch)
    monkeypatch.undo()
    assert distributed.shard(batch) is batch  # one process: the batch itself
