"""``fashiongan search``: one query from the command line, JSON on stdout.

Registered on the project CLI with::

    from fashiongan.search.cli import search
    cli.add_command(search)

Bad input (empty text, an unreadable image, no index yet, a missing conf folder or environment)
prints one line on stderr and exits 2; anything else prints one line and where its traceback went.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


class SearchUsageError(click.ClickException):
    """A one-line error with exit code 2."""

    exit_code = 2


@click.command(name="search")
@click.option("--text", help='What you are looking for, e.g. "black running trainers".')
@click.option(
    "--image",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A picture: alone (query by example) or with --text (composed query).",
)
@click.option("--k", "k", type=int, default=None, help="Catalog items to return [default: 10].")
@click.option("--n-images", type=int, default=None, help="Images generated per query [4].")
@click.option("--seed", type=int, default=None, help="Noise seed [0].")
@click.option("--model", help="A name under search_app.models (default: the conditional GAN).")
@click.option(
    "--save-images",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the generated images as a PNG grid.",
)
@click.option(
    "--conf-source",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("conf"),
    show_default=True,
    help="Kedro conf folder (run from the project root: catalog paths are relative).",
)
@click.option("--env", default=None, help="Kedro config environment [local].")
def search(
    text: str | None,
    image: Path | None,
    k: int | None,
    n_images: int | None,
    seed: int | None,
    model: str | None,
    save_images: Path | None,
    conf_source: Path,
    env: str | None,
) -> None:
    """Search the catalog with text and/or a picture; print the results as JSON."""
    from fashiongan.compute import torch_threads
    from fashiongan.errors import conf_problem, failure_line
    from fashiongan.search.service import SearchInputError, load_service

    try:
        if problem := conf_problem(conf_source, env):
            raise SearchInputError(problem)
        if save_images is not None and save_images.suffix != ".png":
            raise SearchInputError(f"--save-images must end in .png, got {save_images.name}")
        if image is not None and not image.is_file():
            raise SearchInputError(f"{image}: no such file")
        if not (text and text.strip()) and image is None:
            raise SearchInputError(
                "give --text (e.g. --text 'a dark ankle boot') and/or --image PATH"
            )
        service, settings = load_service(conf_source, env, models=[model] if model else None)
        with torch_threads(settings.threads):
            result = service.search(text, image, model=model, k=k, n_images=n_images, seed=seed)
        if save_images is not None and result.images is not None:
            from fashiongan.plotting import image_grid

            save_images.parent.mkdir(parents=True, exist_ok=True)
            figure = image_grid(result.images, ncols=min(8, len(result.images)), title=text)
            figure.savefig(save_images, dpi=110)
    except SearchInputError as err:
        raise SearchUsageError(str(err)) from err
    except Exception as err:  # not the user's doing: one line, the frames in a file
        raise click.ClickException(failure_line(err, "fashiongan_error.log")) from None
    click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    search()
