"""The web app (Gradio): chat with the catalog, generate from a caption, compare models.

Run from the project root (``make app``)::

    python -m fashiongan.search.app [--host 127.0.0.1] [--port 7860]

Tabs:
    Chat: messages (text and/or an uploaded picture), the detected keywords, the generated
        images and a gallery of the matching catalog items.
    Generate: caption + optional reference picture + seed → a grid of samples.
    Compare: the same query on every trained model, side by side.

Every handler turns bad input into one message on screen and keeps the app serving. The app
listens on 127.0.0.1 unless told otherwise; ``/search`` is also a JSON API endpoint (used by
the load benchmark).
"""

from __future__ import annotations

import logging
import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import click  # noqa: E402
import gradio as gr  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from fashiongan.compute import torch_threads  # noqa: E402
from fashiongan.images import tile, to_picture  # noqa: E402
from fashiongan.search.service import (  # noqa: E402
    EXAMPLE_QUERY,
    SearchInputError,
    SearchResult,
    SearchService,
)

log = logging.getLogger(__name__)

EXAMPLES = ["black running trainers", "an oversized striped hoodie", "a purse", "a light dress"]


def picture(images: torch.Tensor | None, ncols: int = 4, scale: int = 4) -> Image.Image | None:
    """(n, C, H, W) in [-1, 1] → one picture, ``ncols`` per row, each enlarged ×scale."""
    return None if images is None else to_picture(tile(images, ncols), scale)


def gallery_items(service: SearchService, result: SearchResult) -> list[tuple[Image.Image, str]]:
    """(picture, caption) per hit: rank, category, cosine score and title."""
    return [
        (
            service.catalog.image(hit["row"]),
            f"{hit['rank']}. {hit['category']} · {hit['score']:.2f} — {hit['title']}",
        )
        for hit in result.hits
    ]


def describe(result: SearchResult) -> str:
    """The assistant's chat reply (markdown)."""
    lines = []
    if result.keywords:
        lines.append("**Detected keywords:** " + ", ".join(f"`{k}`" for k in result.keywords))
    elif result.text:
        lines.append("**Detected keywords:** none — searching with your words as typed.")
    if result.generator_text:
        lines.append(f"Generated {len(result.images)} images of *{result.generator_text}*.")
    elif result.images is None:
        lines.append("Searched with your picture.")
    if result.hits:
        best = result.hits[0]
        lines.append(
            f"Found {len(result.hits)} items; best: **{best['title']}** "
            f"({best['category']}, score {best['score']:.2f})."
        )
    lines += [f"_Note: {notice}_" for notice in result.notices]
    return "\n\n".join(lines)


def _error(err: Exception) -> str:
    if isinstance(err, SearchInputError):
        return f"⚠️ {err}"
    log.exception("query failed")
    return f"⚠️ Something went wrong on our side ({type(err).__name__}); please try again."


# --- the handlers: plain functions of the service (one per event) ---------------------------------
def answer_chat(service: SearchService, k: int, message: dict | None, history: list | None):
    """The Chat tab: the user's turn, the reply, the generated picture, the gallery, keywords."""
    history = list(history or [])
    message = message or {}
    text = (message.get("text") or "").strip()
    files = message.get("files") or []
    upload = files[0] if files else None
    if text:
        history.append({"role": "user", "content": text})
    if upload is not None:
        history.append({"role": "user", "content": {"path": _path(upload)}})
    try:
        result = service.search(text or None, _path(upload) if upload else None, k=k)
    except Exception as err:  # one message on screen, and the app keeps serving
        history.append({"role": "assistant", "content": _error(err)})
        return history, None, None, [], ""
    generated = picture(result.images)
    history.append({"role": "assistant", "content": describe(result)})
    if generated is not None:
        history.append({"role": "assistant", "content": gr.Image(generated, show_label=False)})
    keywords = ", ".join(f"`{w}`" for w in result.keywords) or "—"
    return history, None, generated, gallery_items(service, result), f"**Keywords:** {keywords}"


def generate_samples(
    service: SearchService, caption: str, reference: str | None, seed: float, n: float, model: str
):
    """The Generate tab: a grid of samples and the notices, or no grid and the error."""
    try:
        images, notices = service.generate(
            caption, reference, model=model, n_images=int(n), seed=int(seed or 0)
        )
    except Exception as err:
        return None, _error(err)
    return picture(images, ncols=min(8, int(n))), "\n\n".join(f"_{x}_" for x in notices)


def compare_models(
    service: SearchService, k: int, query: str, reference: str | None, seed: float
) -> list[Any]:
    """The Compare tab: (reply, picture, gallery) per model, in ``service.model_names`` order."""
    outputs: list[Any] = []
    for name in service.model_names:
        try:
            result = service.search(query or None, reference, model=name, k=k, seed=int(seed))
        except Exception as err:
            outputs += [_error(err), None, []]
            continue
        outputs += [describe(result), picture(result.images), gallery_items(service, result)]
    return outputs


def search_json(service: SearchService, text: str, k: int = 10, seed: int = 0) -> dict:
    """Text query → the JSON the CLI prints; errors come back as {"error": message}."""
    try:
        return service.search(text, k=int(k), seed=int(seed)).to_dict()
    except SearchInputError as err:
        return {"error": str(err)}


# --- the layout: one builder per tab -------------------------------------------------------------
def build_app(service: SearchService) -> gr.Blocks:
    """The Gradio Blocks app over ``service`` (its settings give k: ``search_app.query``)."""
    k = service.settings.k
    with gr.Blocks(title="FashionGAN search") as demo:
        gr.Markdown(
            "## FashionGAN search\nDescribe an item (or upload a picture): a GAN draws it, and "
            "the catalog items that look most like the drawing come back."
        )
        chat_tab(service, k)
        generate_tab(service)
        compare_tab(service, k)

        def search_api(text: str, k: int = 10, seed: int = 0) -> dict:
            """Text query → the JSON the CLI prints; errors come back as {"error": message}."""
            return search_json(service, text, k, seed)

        gr.api(search_api, api_name="search")
    return demo


def chat_tab(service: SearchService, k: int) -> None:
    """Messages (text and/or a picture) → reply, keywords, generated image, matching items."""
    with gr.Tab("Chat"):
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=420, elem_id="chat")
                box = gr.MultimodalTextbox(
                    placeholder=f"e.g. '{EXAMPLE_QUERY}', or attach a picture…",
                    file_count="single",
                    sources=["upload"],
                    show_label=False,
                    elem_id="chat-input",
                )
                gr.Examples(EXAMPLES, inputs=box, label="Try")
            with gr.Column(scale=2):
                keywords = gr.Markdown("**Keywords:** —", elem_id="keywords")
                generated = gr.Image(
                    label="Generated", type="pil", interactive=False, elem_id="generated"
                )
        gallery = gr.Gallery(
            label="Matching catalog items", columns=5, height="auto", elem_id="results"
        )

        def chat(message: dict | None, history: list | None):
            return answer_chat(service, k, message, history)

        box.submit(
            chat, [box, chatbot], [chatbot, box, generated, gallery, keywords], api_name="chat"
        )


def generate_tab(service: SearchService) -> None:
    """Caption + optional reference picture + seed → a grid of samples from one model."""
    with gr.Tab("Generate"), gr.Row():
        with gr.Column():
            caption = gr.Textbox(label="Caption", placeholder=EXAMPLE_QUERY)
            reference = gr.Image(
                label="Reference picture (optional)", type="filepath", sources=["upload"]
            )
            with gr.Row():
                seed = gr.Number(label="Seed", value=0, precision=0)
                count = gr.Slider(1, 16, value=8, step=1, label="Images")
            model = gr.Dropdown(service.model_names, value=service.default_model, label="Model")
            button = gr.Button("Generate", variant="primary")
        with gr.Column():
            grid = gr.Image(label="Samples", interactive=False, elem_id="samples")
            notes = gr.Markdown()

    def generate(caption: str, reference: str | None, seed: float, n: float, model: str):
        return generate_samples(service, caption, reference, seed, n, model)

    button.click(
        generate, [caption, reference, seed, count, model], [grid, notes], api_name="generate"
    )


def compare_tab(service: SearchService, k: int) -> None:
    """The same query on every trained model, side by side."""
    with gr.Tab("Compare"):
        with gr.Row():
            query = gr.Textbox(label="Query", placeholder=EXAMPLE_QUERY, scale=3)
            reference = gr.Image(
                label="Reference (optional)", type="filepath", sources=["upload"], scale=1
            )
            seed = gr.Number(label="Seed", value=0, precision=0, scale=1)
        button = gr.Button("Compare", variant="primary")
        outputs = []
        with gr.Row():
            for name in service.model_names:
                with gr.Column():
                    gr.Markdown(f"### {name}")
                    outputs += [
                        gr.Markdown(),
                        gr.Image(label="Generated", interactive=False),
                        gr.Gallery(label="Top items", columns=3, height="auto"),
                    ]

    def compare(query: str, reference: str | None, seed: float):
        return compare_models(service, k, query, reference, seed)

    button.click(compare, [query, reference, seed], outputs, api_name="compare")


def _path(upload: Any) -> str:
    """Gradio passes uploads as paths (str) or FileData-like dicts."""
    return upload if isinstance(upload, str) else upload.get("path", "")


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    upload_max_mb: int = 20,
    block: bool = True,
    concurrency: int = 1,
):
    """Start the server; ``block=False`` returns at once (tests, benchmarks: call demo.close())."""
    demo.queue(default_concurrency_limit=concurrency, max_size=None)
    return demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        share=False,
        inbrowser=False,
        show_error=False,
        quiet=not block,
        max_file_size=f"{upload_max_mb}mb",
        footer_links=["api"],
        theme=gr.themes.Soft(),
    )


class StartupError(click.ClickException):
    """The app cannot start for a reason the user can fix (no index yet, a bad port): exit 2."""

    exit_code = 2


@click.command()
@click.option("--host", default=None, help="Interface to listen on [search_app.host: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [search_app.port: 7860].")
@click.option("--conf-source", default="conf", show_default=True, help="Kedro conf folder.")
@click.option("--env", default=None, help="Kedro config environment [local].")
def main(host: str | None, port: int | None, conf_source: str, env: str | None) -> None:
    """Serve the FashionGAN search app (run from the project root)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if port is not None and not 1 <= port <= 65535:
        raise StartupError(f"--port must be between 1 and 65535, got {port}")
    service, settings = _startup_service(conf_source, env)
    host = host or settings.host
    port = port or settings.port
    click.echo(f"FashionGAN search on http://{host}:{port} (models: {service.model_names})")
    with torch_threads(settings.threads):
        try:
            launch(build_app(service), host, port, int(settings.upload_max_mb))
        except OSError as err:  # the port is taken, or the host is not an interface here
            reason = str(err).split(". ")[0]
            raise StartupError(
                f"cannot listen on {host}:{port} ({reason}): pass another --port or --host"
            ) from None


def _startup_service(conf_source: str, env: str | None):
    """The service and its settings, or one line saying why not (the traceback to a file when
    the cause is not the user's)."""
    from pathlib import Path

    from fashiongan.errors import conf_problem, failure_line
    from fashiongan.search.service import load_service

    try:
        if problem := conf_problem(Path(conf_source), env):
            raise SearchInputError(problem)
        return load_service(conf_source, env)
    except SearchInputError as err:
        raise StartupError(str(err)) from None
    except Exception as err:
        raise click.ClickException(failure_line(err, "search_app_error.log")) from None


if __name__ == "__main__":
    main()
