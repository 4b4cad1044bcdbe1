"""The ``fashiongan`` console command (also merged into ``kedro`` as project commands).

Errors a user can fix (no model yet, an unreadable image, empty text) print one line and exit 2.
``run`` is Kedro's own, with every failure as one line too: a bad parameter, configuration
environment, pipeline or namespace, or a file that cannot be read (exit 2), and anything else
(exit 1); the full traceback goes to ``logs/kedro_run_error.log`` and the line says so.
Kedro imports this module's ``cli`` group to extend its own CLI, so it must stay a click group.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

from fashiongan.errors import (
    RUN_ERROR_LOG,
    conf_problem,
    failure_line,
    flatten,
    one_line,
    with_traceback_note,
    write_traceback,
)
from fashiongan.lifecycle import exits, signals

DEFAULT_BASELINE = Path("models/baseline/default/generator.safetensors")
DEFAULT_CONDITIONAL = Path("models/conditional/default/generator.safetensors")


class UserError(click.ClickException):
    """A one-line error with exit code 2 (bad input, missing model)."""

    exit_code = 2


class _Commands(click.Group):
    """The command group, with ``run`` built only when asked for: Kedro's CLI module configures
    Kedro's logging when imported, which would print log lines above every ``generate``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "run"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "run" and "run" not in self.commands:
            self.add_command(_kedro_run())
        return super().get_command(ctx, cmd_name)


@click.group(
    name="fashiongan",
    cls=_Commands,
    help="FashionGAN: generate fashion items from text and images.",
)
def cli() -> None:
    """Command group."""


@cli.command()
@click.option(
    "--model",
    help="A generator .safetensors, its folder, or a registered model: "
    "models:/fashiongan-conditional@champion, models:/fashiongan-baseline/3 "
    "(default: models/conditional/default if --text, else models/baseline/default).",
)
@click.option("--text", help='What to draw, e.g. "a dark ankle boot" (conditional models).')
@click.option(
    "--image", type=click.Path(path_type=Path), help="Reference image for a composed query."
)
@click.option(
    "--n",
    "n",
    type=int,
    default=16,
    show_default=True,
    help="Number of images: at most 256 in a PNG grid (use .npz for more), and never more than "
    "2 GiB of pixels (n × C × H × W × 4 bytes).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="grid.png or images.npz"
)
def generate(
    model: str | None, text: str | None, image: Path | None, n: int, seed: int, out: Path
) -> None:
    """Sample images from a trained generator into a PNG grid or an .npz (uint8 `images`, `captions`)."""
    from fashiongan.generation import GenerationError, load_generator
    from fashiongan.generation import generate as sample
    from fashiongan.images import ImageInputError, load_image
    from fashiongan.registry import ModelNotFoundError

    try:
        _check_output(out, n)
        model_path = _generator_file(model, conditional=text is not None or image is not None)
        generator = load_generator(model_path)
        reference = None
        if image is not None:
            reference = load_image(image, generator.config.image_size, generator.config.channels)
        images = sample(generator, n, seed, text, reference)
        label = model if model and model.startswith("models:/") else model_path.parent.name
        title = f"{label}: {text}" if text else label
        _write_images(images, out, text, title)
    except (GenerationError, ImageInputError, ModelNotFoundError, OSError) as err:
        raise UserError(str(err)) from err
    except Exception as err:  # a bug, not the user's doing: one line, the frames in a file
        raise click.ClickException(failure_line(err, "fashiongan_error.log")) from None
    click.echo(f"wrote {n} images to {out}")


def _generator_file(model: str | None, conditional: bool) -> Path:
    """The generator file ``--model`` names: a file, a model folder, or a ``models:/`` URI
    (downloaded from the project's MLflow registry); the default models when not given."""
    from fashiongan.registry import resolve_model_dir

    if model is None:
        return DEFAULT_CONDITIONAL if conditional else DEFAULT_BASELINE
    path = resolve_model_dir(model)
    return path / "generator.safetensors" if path.is_dir() else path


def _check_output(out: Path, n: int) -> None:
    """Refuse an output the command cannot write, before loading any model: a PNG grid of a
    hundred thousand images would take minutes and gigabytes before failing."""
    from fashiongan.generation import MAX_GRID_IMAGES, GenerationError

    if out.suffix not in (".png", ".npz"):
        raise GenerationError(f"--out must end in .png or .npz, got {out.name}")
    if out.suffix == ".png" and n > MAX_GRID_IMAGES:
        raise GenerationError(
            f"--n {n} is too many for a PNG grid (at most {MAX_GRID_IMAGES}): write them to "
            f"an .npz instead (--out {out.with_suffix('.npz').name})"
        )


def _write_images(images, out: Path, text: str | None, title: str) -> None:
    """An .npz of uint8 images and their captions, or a PNG grid titled ``title``."""
    from fashiongan.pixels import to_uint8
    from fashiongan.plotting import image_grid

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        pixels = to_uint8(images).numpy()
        pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        np.savez_compressed(out, images=pixels, captions=np.array([text or ""] * len(images)))
    else:
        image_grid(images, ncols=min(8, len(images)), title=title).savefig(out, dpi=110)


class RunFailed(click.ClickException):
    """A failed ``kedro run``: one line, and an exit code from :class:`ExitCode`."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _OneLineErrors(click.Command):
    """Kedro's ``run``, with every failure printed as one line instead of a traceback.

    A bad parameter or configuration environment is refused before any work (exit 2). Anything
    raised by the run prints one line (:func:`fashiongan.lifecycle.exits.user_line` says which
    failures are the user's, exit 2; others exit 1) and where its full traceback was written; a
    stopped run exits 128 + the signal's number.
    """

    def invoke(self, ctx: click.Context) -> object:
        from fashiongan.config import ConfigError

        project = _project_path(ctx)
        _check_environment(ctx, project)
        try:
            return super().invoke(ctx)
        except ConfigError as err:
            raise UserError(f"bad parameter: {err}") from None
        except (click.exceptions.Exit, click.exceptions.Abort, UserError):
            raise
        except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM; the MLflow run ends KILLED at exit
            raise RunFailed(*exits.interrupted(signals.signal_number(err))) from None
        except click.ClickException as err:  # KedroCliError adds "Run with --verbose" lines
            raise UserError(flatten(err.message)) from None
        except Exception as err:
            raise _run_failure(ctx, project, err) from None


def _project_path(ctx: click.Context) -> Path:
    """The Kedro project root (Kedro passes its metadata as the context object)."""
    metadata = ctx.find_root().obj
    return Path(getattr(metadata, "project_path", None) or Path.cwd())


def _check_environment(ctx: click.Context, project: Path) -> None:
    """Refuse an ``--env`` (or ``KEDRO_ENV``) with no folder under the conf source, naming the
    ones there are: otherwise it fails deep in MLflow's setup with a message that never names it.
    """
    from kedro.framework.project import settings

    env = ctx.params.get("env") or os.environ.get("KEDRO_ENV")
    source = Path(ctx.params.get("conf_source") or settings.CONF_SOURCE)
    conf = source if source.is_absolute() else project / source
    if env and conf.is_dir() and (problem := conf_problem(conf, env, source.as_posix())):
        raise UserError(problem)


def _run_failure(ctx: click.Context, project: Path, err: Exception) -> RunFailed:
    """The one line for a failed run; the full traceback goes to ``logs/`` in the project."""
    try:
        line = exits.user_line(
            err, ctx.params.get("pipelines") or (), ctx.params.get("namespaces") or ()
        )
    except Exception:  # the explanation is a courtesy: never hide the error behind another
        line = None
    log = write_traceback(err, project / RUN_ERROR_LOG.parent)
    code = exits.ExitCode.BUG if line is None else exits.ExitCode.USER
    return RunFailed(with_traceback_note(line or one_line(err), log), exit_code=code)


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


_register_commands()


def main() -> None:
    """Console-script entry point: the project's commands without Kedro's ``run`` (``kedro run``
    has it), so ``fashiongan --help`` lists them without importing Kedro's CLI."""
    console = click.Group(name="fashiongan", help=cli.help, commands=dict(cli.commands))
    console(prog_name="fashiongan")
