"""The ``fashiongan`` console command: sample images from trained generators.

Errors a user can fix (no model yet, an unreadable image, empty text) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DEFAULT_BASELINE = Path("models/baseline/generator.safetensors")
DEFAULT_CONDITIONAL = Path("models/conditional/generator.safetensors")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fashiongan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="sample images to a PNG grid or an .npz")
    gen.add_argument(
        "--model",
        type=Path,
        help="generator .safetensors (default: conditional if --text, else baseline)",
    )
    gen.add_argument("--text", help='what to draw, e.g. "a dark ankle boot" (conditional models)')
    gen.add_argument("--image", type=Path, help="reference image for a composed query")
    gen.add_argument("--n", type=int, default=16, help="number of images")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", type=Path, required=True, help="grid.png or images.npz")
    return parser


def _generate(args: argparse.Namespace) -> None:
    from fashiongan.generation import generate, load_generator
    from fashiongan.images import load_image
    from fashiongan.plotting import image_grid, to_uint8

    if args.out.suffix not in (".png", ".npz"):
        raise ValueError(f"--out must end in .png or .npz, got {args.out.name}")
    model_path = args.model or (
        DEFAULT_CONDITIONAL if args.text is not None or args.image else DEFAULT_BASELINE
    )
    generator = load_generator(model_path)
    reference = None
    if args.image is not None:
        config = generator.config
        reference = load_image(args.image, config.image_size, config.channels)
    images = generate(generator, args.n, args.seed, args.text, reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npz":
        pixels = to_uint8(images).numpy()
        pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        np.savez_compressed(args.out, images=pixels, captions=np.array([args.text or ""] * args.n))
    else:
        title = f"{model_path.parent.name}: {args.text}" if args.text else model_path.parent.name
        image_grid(images, ncols=min(8, args.n), title=title).savefig(args.out, dpi=110)
    print(f"wrote {args.n} images to {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from fashiongan.generation import GenerationError
    from fashiongan.images import ImageInputError

    try:
        if args.command == "generate":
            _generate(args)
    except (GenerationError, ImageInputError, ValueError, OSError) as err:
        print(f"fashiongan: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
