"""The ``fashiongan`` console command (also merged into ``kedro`` as project commands).

Errors a user can fix (no model yet, an unreadable image, empty text) print one line and exit 2.
Kedro imports this module's ``cli`` group to extend its own CLI, so it must stay a click group.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

DEFAULT_BASELINE = Path("models/baseline/generator.safetensors")
DEFAULT_CONDITIONAL = Path("models/conditional/generator.safetensors")


class UserError(click.ClickException):
    """A one-line error with exit code 2 (bad input, missing model)."""

    exit_code = 2


@click.group(name="fashiongan", help="FashionGAN: generate fashion items from text and images.")
def cli() -> None:
    """Command group."""


@cli.command()
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="Generator .safetensors (default: conditional if --text, else baseline).",
)
@click.option("--text", help='What to draw, e.g. "a dark ankle boot" (conditional models).')
@click.option(
    "--image", type=click.Path(path_type=Path), help="Reference image for a composed query."
)
@click.option("--n", "n", type=int, default=16, show_default=True, help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="grid.png or images.npz"
)
def generate(
    model: Path | None, text: str | None, image: Path | None, n: int, seed: int, out: Path
) -> None:
    """Sample images from a trained generator into a PNG grid or an .npz (uint8 `images`, `captions`)."""
    from fashiongan.generation import GenerationError, load_generator
    from fashiongan.generation import generate as sample
    from fashiongan.images import ImageInputError, load_image
    from fashiongan.pixels import to_uint8
    from fashiongan.plotting import image_grid

    try:
        if out.suffix not in (".png", ".npz"):
            raise GenerationError(f"--out must end in .png or .npz, got {out.name}")
        model_path = model or (
            DEFAULT_CONDITIONAL if text is not None or image else DEFAULT_BASELINE
        )
        generator = load_generator(model_path)
        reference = None
        if image is not None:
            reference = load_image(image, generator.config.image_size, generator.config.channels)
        images = sample(generator, n, seed, text, reference)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".npz":
            pixels = to_uint8(images).numpy()
            pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
            np.savez_compressed(out, images=pixels, captions=np.array([text or ""] * n))
        else:
            title = f"{model_path.parent.name}: {text}" if text else model_path.parent.name
            image_grid(images, ncols=min(8, n), title=title).savefig(out, dpi=110)
    except (GenerationError, ImageInputError, OSError) as err:
        raise UserError(str(err)) from err
    click.echo(f"wrote {n} images to {out}")


class _OneLineErrors(click.Command):
    """Kedro's ``run``, with parameter errors printed as one line (exit 2) instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from fashiongan.config import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as err:
            raise UserError(f"bad parameter: {err}") from None


def _kedro_run() -> click.Command:
    from kedro.framework.cli.project import run

    return _OneLineErrors(
        name="run",
        params=run.params,
        callback=run.callback,
        help=run.help,
        short_help=run.short_help,
    )


def _register_commands() -> None:
    from fashiongan.search.cli import search

    cli.add_command(search)
    cli.add_command(_kedro_run())


_register_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="fashiongan")
