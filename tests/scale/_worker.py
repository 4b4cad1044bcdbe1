"""Training processes the scale-out tests start: run by ``torchrun`` or plain ``python``.

    python tests/scale/_worker.py ddp OUT_DIR              # (also under torchrun --nproc_per_node=2)
    python tests/scale/_worker.py train OUT_DIR --checkpoints DIR [--slow SECONDS]

``ddp`` trains the tiny baseline three times in one process group — uninterrupted; stopped at
step 8 with checkpoints; resumed after rank 0 corrupts the newest checkpoint — plus the tiny
conditional GAN once, and writes ``rank<r>.safetensors`` / ``rank<r>.json`` per rank.
``train`` trains the tiny conditional GAN with checkpoints and writes ``weights.safetensors``;
``--slow`` prints ``step N`` and sleeps after each step so that a test can SIGKILL it mid-epoch.
The tests call ``ddp`` and ``train`` in their own process too, as the uninterrupted references.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import save_file

from fashiongan.config import load_parameters, overridden
from fashiongan.training import distributed, loop
from fashiongan.training.baseline import train_mlp_gan
from fashiongan.training.conditional import train_conditional_gan

_BLOCKS = load_parameters(Path(__file__).resolve().parents[2] / "conf")
BASELINE = overridden(
    _BLOCKS["baseline"].training,
    seed=3, device="cpu", iterations=12,
    batch_size=8,  # global batch: 4 per rank with 2 processes
    d_lr=2e-4, g_lr=1e-4, d_betas=(0.5, 0.999), g_betas=(0.5, 0.999), log_every=2,
    sample_every=0, checkpoint_every=4, checkpoint_dir=None, model__noise_dim=16,
    model__generator_hidden=(16, 32, 32), model__discriminator_hidden=(32, 16),
    model__dropout=0.0,  # masks are per-rank draws: with dropout, 2 ranks ≠ 1 process exactly
)  # fmt: skip
CONDITIONAL = overridden(
    _BLOCKS["conditional"].training,
    seed=5, device="cpu", epochs=3, batch_size=16, loss="hinge", n_critic=1, real_label=0.9,
    gp_lambda=10.0, image_drop=0.5, g_lr=1e-4, d_lr=4e-4, e_lr=1e-3, g_betas=(0.0, 0.9),
    d_betas=(0.0, 0.9), triplet_margin=0.2, triplet_weight=1.0, diversity_weight=0.5,
    aux_weight=0.0, log_every=2, sample_columns=2, checkpoint_dir=None,
    model__g_channels=4, model__d_channels=4, model__text_channels=2, model__noise_channels=2,
    model__embed_dim=8, model__noise_dim=4, model__text_code_dim=2, embedding__width=4,
    embedding__dim=8,
)  # fmt: skip
#: G's config names the bundled MiniLM as the encoder behind the (random) features.
FEATURES = {"text_encoder": "bundled", "text_pooling": _BLOCKS["conditional"].text_encoder.pooling}


def tiny_data() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """64 images, 4 classes, 10 fake caption embeddings: the same on every rank and run."""
    g = torch.Generator().manual_seed(0)
    n, u, d = 64, 10, 12
    images = torch.rand(n, 1, 28, 28, generator=g) * 2 - 1
    conditioning = {
        "text_embeddings": torch.randn(u, d, generator=g),
        "caption_index": torch.randint(0, u, (n,), generator=g),
        "reference_index": torch.randint(0, n, (n,), generator=g),
        "modification_index": torch.randint(0, u, (n,), generator=g),
        "sample_text": torch.randn(2, d, generator=g),
    }
    return images, torch.arange(n) % 4, conditioning


def weights(prefix: str, *modules: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}{i}.{k}": v.detach().clone().contiguous()
        for i, m in enumerate(modules)
        for k, v in m.state_dict().items()
    }


@contextlib.contextmanager
def count_saves() -> Iterator[list[str]]:
    """Record the checkpoints this process writes (to show that only rank 0 writes any)."""
    saved: list[str] = []
    original = loop.save_checkpoint

    def recording(directory, state, fingerprint, keep=2):
        path = original(directory, state, fingerprint, keep)
        saved.append(path.name)
        return path

    loop.save_checkpoint = recording
    try:
        yield saved
    finally:
        loop.save_checkpoint = original


def ddp(out: Path) -> None:
    """The DDP scenarios; also called in-process by the test as the 1-process reference."""
    out.mkdir(parents=True, exist_ok=True)
    with count_saves() as saved:
        _ddp(out, saved)


def _ddp(out: Path, saved: list[str]) -> None:
    images, labels, conditioning = tiny_data()
    checkpoints = out / "checkpoints"
    g_full, d_full, history = train_mlp_gan(images, BASELINE)
    train_mlp_gan(images, overridden(BASELINE, iterations=8, checkpoint_dir=str(checkpoints)))
    distributed.barrier()
    if distributed.is_main_process():  # a torn write: resume must fall back to step 4 everywhere
        latest = sorted(checkpoints.glob("*/ckpt-*.safetensors"))[-1]
        latest.write_bytes(latest.read_bytes()[:100])
    distributed.barrier()
    g_resumed, _, resumed_history = train_mlp_gan(
        images, overridden(BASELINE, checkpoint_dir=str(checkpoints))
    )
    g_cond, d_cond, e_cond, cond_history = train_conditional_gan(
        images, labels, conditioning, CONDITIONAL, model_extra=FEATURES
    )
    tensors = {
        **weights("baseline.", g_full, d_full),
        **weights("resumed.", g_resumed),
        **weights("conditional.", g_cond, d_cond, e_cond),
    }
    rank = distributed.rank()
    save_file(tensors, str(out / f"rank{rank}.safetensors"))
    report = {
        "world": distributed.world(),
        "history": history,
        "resumed_history": resumed_history,
        "conditional_history": cond_history,
        "checkpoints_saved": saved,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report))


def train(out: Path, checkpoints: Path, slow: float) -> None:
    if slow:
        check = loop.check_finite

        def announce_and_wait(step: int, **losses: float) -> None:
            check(step, **losses)
            print(f"step {step}", flush=True)
            time.sleep(slow)

        loop.check_finite = announce_and_wait
    out.mkdir(parents=True, exist_ok=True)
    images, labels, conditioning = tiny_data()
    params = overridden(CONDITIONAL, epochs=4, checkpoint_dir=str(checkpoints))
    g, d, e, history = train_conditional_gan(
        images, labels, conditioning, params, model_extra=FEATURES
    )
    save_file(weights("", g, d, e), str(out / "weights.safetensors"))
    (out / "history.json").write_text(json.dumps(history))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ddp", "train"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoints", type=Path)
    parser.add_argument("--slow", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)  # 2 ranks on 2 shared cores; also the same math in every run
    os.environ.setdefault(distributed.LAUNCHER_ENV, "1")  # this script writes per rank itself
    args.out.mkdir(parents=True, exist_ok=True)
    if args.mode == "ddp":
        ddp(args.out)
        distributed.teardown()
    else:
        train(args.out, args.checkpoints, args.slow)


if __name__ == "__main__":
    main(sys.argv[1:])
