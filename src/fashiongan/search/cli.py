"""``fashiongan search``: one query, or one turn of a conversation, from the command line; JSON
on stdout.

A conversation lives in a session file (``--session PATH``: read when it exists, written after
the turn): the reference (the last generated image, a picked catalog item, an upload) and a
summary of each turn, so that ``--text darker`` modifies what the previous call drew.
``--reference-id ID`` makes a catalog item the reference first ("use this as reference")::

    fashiongan search --session coat.json --text "a coat"
    fashiongan search --session coat.json --text "darker"
    fashiongan search --session coat.json --reference-id fmnist-test-00012 --text "as a dress"

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
@click.option(
    "--model",
    help="A name under search_app.models (default: the conditional GAN), a model folder, or a "
    "registry URI: models:/fashiongan-conditional@champion.",
)
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
@click.option(
    "--session",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A conversation file (JSON): read if it exists, written after the turn.",
)
@click.option("--reference-id", help="A catalog item id to use as the reference first.")
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
    session: Path | None,
    reference_id: str | None,
) -> None:
    """Search the catalog with text and/or a picture (a turn of a --session conversation);
    print the results as JSON."""
    from fashiongan.compute import torch_threads
    from fashiongan.errors import conf_problem, failure_line
    from fashiongan.search.contract import SearchInputError, check_request
    from fashiongan.search.loading import load_service, load_settings

    options = {"k": k, "n_images": n_images, "seed": seed, "pick": reference_id, "model": model}
    try:
        if problem := conf_problem(conf_source, env):
            raise SearchInputError(problem)
        if save_images is not None and save_images.suffix != ".png":
            raise SearchInputError(f"--save-images must end in .png, got {save_images.name}")
        app_settings, _ = load_settings(conf_source, env)
        check_request(app_settings.query, text, image, **options)  # before the slow models load
        conversation = _read_session(session)
        service, settings = load_service(conf_source, env, models=[model] if model else None)
        with torch_threads(settings.threads):
            result = service.converse(conversation, text, image, **options)
        if session is not None:
            _write_session(session, service.session(result.conversation["id"]))
        if save_images is not None and result.images is not None:
            from fashiongan.plotting import image_grid

            save_images.parent.mkdir(parents=True, exist_ok=True)
            figure = image_grid(result.images, ncols=min(8, len(result.images)), title=text)
            figure.savefig(save_images, dpi=110)
    except SearchInputError as err:
        raise SearchUsageError(_with_option(err)) from err
    except Exception as err:  # not the user's doing: one line, the frames in a file
        raise click.ClickException(failure_line(err, "fashiongan_error.log")) from None
    click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))


#: The CLI option of each request field, so that a message names what the user typed.
_OPTIONS = {"text": "--text", "image": "--image", "k": "--k", "n_images": "--n-images",
            "seed": "--seed", "reference_id": "--reference-id", "model": "--model"}  # fmt: skip


def _with_option(err) -> str:
    """The one-line message, led by the option at fault when there is one."""
    option = _OPTIONS.get(getattr(err, "field", None) or "")
    return f"{option}: {err}" if option else str(err)


def _read_session(path: Path | None):
    """The conversation in ``path`` (None: no file yet, a new conversation)."""
    from fashiongan.search.contract import SearchInputError
    from fashiongan.search.conversation import ConversationSession

    if path is None or not path.exists():
        return None
    try:
        return ConversationSession.from_dict(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = err.msg if isinstance(err, json.JSONDecodeError) else err
        raise SearchInputError(
            f"{path}: not a search session file ({reason}); give a new --session path"
        ) from None


def _write_session(path: Path, conversation) -> None:
    """Write the conversation after the turn, so the next call continues from its reference."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(conversation.to_dict(), indent=1) + "\n")


if __name__ == "__main__":
    search()
