"""The web app (Gradio): chat with the catalog, generate from a caption, compare models.

Run from the project root (``make app``)::

    python -m fashiongan.search.app [--host 127.0.0.1] [--port 7860]

Tabs:
    Chat: a conversation (``fashiongan.search.conversation``): messages (text and/or an uploaded
        picture) describe an item or modify the reference ("darker", "as a dress"); the reply
        says which, the previous drawing is shown beside the new one, and a clicked result
        becomes the reference ("Use as reference").
    Generate: caption + optional reference picture + seed → a grid of samples.
    Compare: the same query on every trained model, side by side.

Every handler turns bad input into one message on screen and keeps the app serving. The app
listens on 127.0.0.1 unless told otherwise.

JSON APIs (both keep a conversation by the ``conversation.id`` they return):
    ``POST /api/search`` (plain HTTP, beside the UI): a body ``{"text", "k", "seed",
        "conversation_id", "reference_id"}`` → the JSON ``fashiongan search`` prints (200), or
        ``{"error", "field"}`` with 400 for bad input (413 for a body over ``upload_max_mb``)
        and 500 for a failure on our side. Concurrent requests are micro-batched
        (:mod:`fashiongan.search.batching`): their drawings run as one forward pass.
    ``/search`` (Gradio's API, through its queue, one request at a time): the same turn.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import click  # noqa: E402
import gradio as gr  # noqa: E402
import torch  # noqa: E402
from fastapi import Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from PIL import Image  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402

from fashiongan.compute import torch_threads  # noqa: E402
from fashiongan.config import SearchAppParams  # noqa: E402
from fashiongan.images import tile, to_picture  # noqa: E402
from fashiongan.search.batching import BatchedSearch  # noqa: E402
from fashiongan.search.contract import EXAMPLE_QUERY, SearchInputError  # noqa: E402
from fashiongan.search.service import SearchResult, SearchService  # noqa: E402

log = logging.getLogger(__name__)

EXAMPLES = ["black running trainers", "an oversized striped hoodie", "a purse", "a light dress"]
API_PATH = "/api/search"
API_FIELDS = ("text", "k", "seed", "conversation_id", "reference_id")


def picture(images: torch.Tensor | None, ncols: int = 4, scale: int = 4) -> Image.Image | None:
    """(n, C, H, W) in [-1, 1] → one picture, ``ncols`` per row, each enlarged ×scale."""
    return None if images is None else to_picture(tile(images, ncols), scale)


def gallery_items(service: SearchService, result: SearchResult) -> list[tuple[Image.Image, str]]:
    """(picture, caption) per hit: rank, category, score, title and the item id."""
    return [
        (
            service.catalog.image(hit["row"]),
            f"{hit['rank']}. {hit['category']} · {hit['score']:.2f} — {hit['title']} ({hit['id']})",
        )
        for hit in result.hits
    ]


def describe(result: SearchResult) -> str:
    """The assistant's chat reply (markdown): what the message was read as, then the results."""
    lines = []
    turn = result.conversation
    if turn is not None and turn["decision"] in ("modify", "start over", "pick"):
        lines.append(f"**{turn['decision'].capitalize()}:** {turn['reason']}.")
        if turn["decision"] == "modify" and turn["reference"]:
            lines.append(f"Starting from {turn['reference']['description']}.")
    if result.keywords:
        lines.append("**Read as:** " + ", ".join(f"`{k}`" for k in result.keywords))
    elif result.text and (turn is None or turn["decision"] == "new"):
        lines.append("**Read as:** nothing I know — searching with your words as typed.")
    if excluded := _excluded(result):
        lines.append("**Not:** " + ", ".join(f"`{x}`" for x in excluded))
    if result.generator_text and result.images is not None:
        lines.append(f"Generated {len(result.images)} images of *{result.generator_text}*.")
    elif result.images is None and result.hits:
        lines.append("Searched with your picture.")
    elif turn is not None and turn["decision"] == "start over":
        lines.append("Starting over: describe what you are looking for.")
    if result.hits:
        best = result.hits[0]
        lines.append(
            f"Found {len(result.hits)} items; best: **{best['title']}** "
            f"({best['category']}, score {best['score']:.2f})."
        )
    lines += [f"_Note: {notice}_" for notice in result.notices]
    return "\n\n".join(lines)


def _excluded(result: SearchResult) -> list[str]:
    """The excluded values as the reading names them ("dark", "sneaker")."""
    intent = None if result.intent is None else result.intent.to_dict()
    excluded = (intent or {}).get("excluded") or {}
    return [name for names in excluded.values() for name in names]


def status(result: SearchResult) -> str:
    """The panel beside the pictures: keywords, the turn's decision and the wanted item."""
    keywords = ", ".join(f"`{w}`" for w in result.keywords) or "—"
    lines = [f"**Keywords:** {keywords}"]
    if excluded := _excluded(result):
        lines.append("**Excluded:** " + ", ".join(f"`{x}`" for x in excluded))
    turn = result.conversation
    if turn is not None:
        lines.append(f"**Turn {turn['turn']}:** {turn['decision']} — {turn['reason']}")
        if turn.get("wanted") and turn["wanted"].get("caption"):
            lines.append(f"**Looking for:** {turn['wanted']['caption']}")
    return "\n\n".join(lines)


def _error(err: Exception) -> str:
    if isinstance(err, SearchInputError):
        return f"⚠️ {err}"
    log.exception("query failed")
    return f"⚠️ Something went wrong on our side ({type(err).__name__}); please try again."


# --- the handlers: plain functions of the service (one per event) ---------------------------------
def answer_chat(
    service: SearchService,
    k: int,
    message: dict | None,
    history: list | None,
    conversation_id: str | None = None,
):
    """The Chat tab, one turn of the conversation ``conversation_id`` (None: a new one).

    Returns:
        history, the cleared input box, the previous picture (this turn's reference), the
        generated picture, the gallery, the status panel, the conversation id, the shown ids.
    """
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
        result = service.converse(conversation_id, text, _path(upload) if upload else None, k=k)
    except Exception as err:  # one message on screen, and the app keeps serving
        history.append({"role": "assistant", "content": _error(err)})
        return history, None, None, None, [], "", conversation_id, []
    generated = picture(result.images, ncols=2)  # 2 × 2: big enough beside the previous one
    history.append({"role": "assistant", "content": describe(result)})
    if generated is not None:
        history.append({"role": "assistant", "content": gr.Image(generated, show_label=False)})
    previous = picture(result.reference_image, scale=8)
    ids = [hit["id"] for hit in result.hits]
    items = gallery_items(service, result)
    return history, None, previous, generated, items, status(result), result.conversation["id"], ids


def select_result(shown_ids: list[str], evt: gr.SelectData) -> tuple[str | None, str]:
    """A gallery click: remember the item; the button below makes it the reference."""
    index = evt.index if isinstance(evt.index, int) else evt.index[0]
    if not shown_ids or not 0 <= index < len(shown_ids):
        return None, ""
    return shown_ids[index], f"Selected result {index + 1} (`{shown_ids[index]}`)."


def use_as_reference(
    service: SearchService, conversation_id: str | None, item_id: str | None, history: list | None
):
    """ "Use this as reference": the selected catalog item becomes the conversation's reference.

    Returns:
        history, the reference picture, the status panel, the conversation id.
    """
    history = list(history or [])
    if not item_id:
        history.append({"role": "assistant", "content": "⚠️ Click a result first."})
        return history, None, "", conversation_id
    try:
        result = service.converse(conversation_id, pick=item_id)
    except Exception as err:
        history.append({"role": "assistant", "content": _error(err)})
        return history, None, "", conversation_id
    reference = result.conversation["reference"]
    history.append(
        {
            "role": "assistant",
            "content": f"Using {reference['description']} as the reference: tell me what to "
            "change (e.g. 'darker', 'as a dress').",
        }
    )
    shown = picture(result.reference_image, scale=8)
    return history, shown, f"**Reference:** {reference['description']}", result.conversation["id"]


def generate_samples(
    service: SearchService, caption: str, reference: str | None, seed: float, n: float, model: str
):
    """The Generate tab: a grid of samples and the notices, or no grid and the error."""
    try:
        images, notices = service.generate(caption, reference, model=model, n_images=n, seed=seed)
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
            result = service.search(query, reference, model=name, k=k, seed=seed)
        except Exception as err:
            outputs += [_error(err), None, []]
            continue
        outputs += [describe(result), picture(result.images), gallery_items(service, result)]
    return outputs


def search_json(
    service: SearchService,
    text: Any,
    k: Any = None,
    seed: Any = None,
    conversation_id: Any = None,
    reference_id: Any = None,
) -> dict:
    """One turn → the JSON the CLI prints, with ``conversation.id`` to send back next turn (an
    empty id starts a conversation); bad input comes back as ``{"error": …, "field": …}`` (the
    input contract's message), anything else as ``{"error": …, "field": null}`` and a log line."""
    try:
        return service.converse(conversation_id, text, k=k, seed=seed, pick=reference_id).to_dict()
    except SearchInputError as err:
        return err.to_dict()
    except Exception as err:  # never Gradio's generic exception: the cause goes to the log
        log.exception("search API request failed")
        return {"error": f"the search failed on our side ({type(err).__name__})", "field": None}


# --- POST /api/search: plain JSON over HTTP, micro-batched ---------------------------------------
_EXAMPLE_BODY = json.dumps({"text": EXAMPLE_QUERY, "k": 10})


class BodyTooLarge(SearchInputError):
    """A request body over the size the app reads (HTTP 413)."""


def answer_api(api: BatchedSearch, body: Any) -> tuple[int, dict]:
    """One ``POST /api/search`` body → (HTTP status, JSON): 200 and the turn, 400 and the input
    contract's ``{"error", "field"}``, or 500 and one line (the cause goes to the log)."""
    try:
        result = api.converse(**_api_request(body))
    except SearchInputError as err:
        return 400, err.to_dict()
    except Exception as err:
        log.exception("POST %s failed", API_PATH)
        error = f"the search failed on our side ({type(err).__name__})"
        return 500, {"error": error, "field": None}
    return 200, result.to_dict()


def _api_request(body: Any) -> dict[str, Any]:
    """The body's fields as :meth:`BatchedSearch.converse` arguments (checked there).

    Raises:
        SearchInputError: not a JSON object, or a field the API does not know.
    """
    if not isinstance(body, dict):
        raise SearchInputError(f"the body must be a JSON object, e.g. {_EXAMPLE_BODY}")
    unknown = sorted(set(body) - set(API_FIELDS))
    if unknown:
        fields = ", ".join(API_FIELDS)
        raise SearchInputError(f"unknown field {unknown[0]!r}; the fields: {fields}", unknown[0])
    names = {"conversation_id": "conversation", "reference_id": "pick"}
    return {names.get(key, key): value for key, value in body.items()}


async def _json_body(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, read up to ``max_bytes``.

    Raises:
        BodyTooLarge: over ``max_bytes``.
        SearchInputError: not JSON (or not UTF-8).
    """
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise BodyTooLarge(f"the body is over {max_bytes:,} bytes: send a short JSON object")
    try:
        return json.loads(raw)
    except ValueError:
        raise SearchInputError(
            f"the body is not JSON: send an object such as {_EXAMPLE_BODY}"
        ) from None


def search_endpoint(api: BatchedSearch, max_body_bytes: int):
    """The ASGI handler of ``POST /api/search``: the body read, the turn run in a worker thread
    (the event loop keeps serving the UI meanwhile)."""

    async def search(request: Request) -> JSONResponse:
        try:
            body = await _json_body(request, max_body_bytes)
        except SearchInputError as err:
            status = 413 if isinstance(err, BodyTooLarge) else 400
            return JSONResponse(err.to_dict(), status_code=status)
        status, payload = await run_in_threadpool(answer_api, api, body)
        return JSONResponse(payload, status_code=status)

    return search


class SearchBlocks(gr.Blocks):
    """The app's Blocks and, when ``api`` is given, ``POST /api/search`` served beside the UI
    (:func:`launch` adds the route to the server); :meth:`close` stops both."""

    def __init__(self, api: BatchedSearch | None, max_body_bytes: int, **options: Any) -> None:
        super().__init__(**options)
        self.search_api = api
        self.max_body_bytes = max_body_bytes

    def mount_api(self) -> None:
        """Add ``POST /api/search`` to the running server's FastAPI app (none without api)."""
        if self.search_api is not None:
            endpoint = search_endpoint(self.search_api, self.max_body_bytes)
            self.server_app.add_api_route(
                API_PATH, endpoint, methods=["POST"], include_in_schema=False
            )

    def close(self, verbose: bool = True) -> None:
        super().close(verbose)
        if self.search_api is not None:
            self.search_api.close()


# --- the layout: one builder per tab -------------------------------------------------------------
def build_app(service: SearchService, settings: SearchAppParams | None = None) -> SearchBlocks:
    """The Gradio Blocks app over ``service`` (its settings give k: ``search_app.query``) and,
    given the ``search_app`` settings, the micro-batched ``POST /api/search`` beside it."""
    k = service.query.k
    api, max_body_bytes = None, 0
    if settings is not None:
        api = BatchedSearch(service, settings.api_max_batch, settings.api_max_wait_ms)
        max_body_bytes = int(settings.upload_max_mb * 1024 * 1024)
    with SearchBlocks(api, max_body_bytes, title="FashionGAN search") as demo:
        gr.Markdown(
            "## FashionGAN search\nDescribe an item (or upload a picture): a GAN draws it, and "
            "the catalog items that look most like the drawing come back."
        )
        chat_tab(service, k)
        generate_tab(service)
        compare_tab(service, k)

        def search_api(
            text: str,
            k: str | int | None = None,
            seed: str | int | None = None,
            conversation_id: str = "",
            reference_id: str = "",
        ) -> dict:
            """One turn of a conversation (empty id: a new one) → the JSON the CLI prints, with
            ``conversation.id``; errors come back as {"error": message}."""
            return search_json(service, text, k, seed, conversation_id, reference_id)

        gr.api(search_api, api_name="search")
    return demo


def chat_tab(service: SearchService, k: int) -> None:
    """A conversation: messages (text and/or a picture) → reply, the previous and the new
    drawing, the matching items; a clicked item can become the reference."""
    with gr.Tab("Chat"):
        conversation, shown_ids, selected = gr.State(None), gr.State([]), gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=420, elem_id="chat")
                box = gr.MultimodalTextbox(
                    placeholder=f"e.g. '{EXAMPLE_QUERY}', then 'darker', 'as a dress'…",
                    file_count="single",
                    sources=["upload"],
                    show_label=False,
                    elem_id="chat-input",
                )
                gr.Examples(EXAMPLES, inputs=box, label="Try")
            with gr.Column(scale=2):
                keywords = gr.Markdown("**Keywords:** —", elem_id="keywords")
                with gr.Row():
                    previous = gr.Image(
                        label="Before (reference)", type="pil", interactive=False,
                        elem_id="previous",
                    )  # fmt: skip
                    generated = gr.Image(
                        label="Generated", type="pil", interactive=False, elem_id="generated"
                    )
        gallery = gr.Gallery(
            label="Matching catalog items (click one, then 'Use as reference')",
            columns=5, height="auto", elem_id="results", allow_preview=False,
        )  # fmt: skip
        with gr.Row():
            picked = gr.Markdown("", elem_id="selected")
            use = gr.Button("Use as reference", elem_id="use-reference", scale=0)

        def chat(message: dict | None, history: list | None, conversation_id: str | None):
            return answer_chat(service, k, message, history, conversation_id)

        def pick(conversation_id: str | None, item_id: str | None, history: list | None):
            return use_as_reference(service, conversation_id, item_id, history)

        box.submit(
            chat,
            [box, chatbot, conversation],
            [chatbot, box, previous, generated, gallery, keywords, conversation, shown_ids],
            api_name="chat",
        ).then(lambda: (None, ""), None, [selected, picked], api_visibility="private")
        gallery.select(select_result, [shown_ids], [selected, picked])
        use.click(
            pick, [conversation, selected, chatbot], [chatbot, previous, keywords, conversation]
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
    demo: SearchBlocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    upload_max_mb: int = 20,
    block: bool = True,
    concurrency: int = 1,
):
    """Start the server (the UI, Gradio's API and ``POST /api/search``); ``block=False`` returns
    at once (tests, benchmarks: call demo.close())."""
    demo.queue(default_concurrency_limit=concurrency, max_size=None)
    launched = demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=True,  # the route goes on the running app, then we block
        share=False,
        inbrowser=False,
        show_error=False,
        quiet=not block,
        max_file_size=f"{upload_max_mb}mb",
        footer_links=["api"],
        theme=gr.themes.Soft(),
    )
    demo.mount_api()
    if block:
        demo.block_thread()
    return launched


class StartupError(click.ClickException):
    """The app cannot start for a reason the user can fix (no index yet, a bad port): exit 2."""

    exit_code = 2


@click.command()
@click.option("--host", default=None, help="Interface to listen on [search_app.host: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [search_app.port: 7860].")
@click.option("--conf-source", default="conf", show_default=True, help="Kedro conf folder.")
@click.option("--env", default=None, help="Kedro config environment [local].")
@click.option(
    "--model",
    "models",
    multiple=True,
    help="Serve only these: names under search_app.models, model folders or registry URIs "
    "(models:/fashiongan-conditional@champion); repeatable [all of search_app.models].",
)
def main(
    host: str | None, port: int | None, conf_source: str, env: str | None, models: tuple[str, ...]
) -> None:
    """Serve the FashionGAN search app (run from the project root)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if port is not None and not 1 <= port <= 65535:
        raise StartupError(f"--port must be between 1 and 65535, got {port}")
    service, settings = _startup_service(conf_source, env, list(models) or None)
    host = host or settings.host
    port = port or settings.port
    click.echo(f"FashionGAN search on http://{host}:{port} (models: {service.model_names})")
    with torch_threads(settings.threads):
        try:
            launch(build_app(service, settings), host, port, int(settings.upload_max_mb))
        except OSError as err:  # the port is taken, or the host is not an interface here
            reason = str(err).split(". ")[0]
            raise StartupError(
                f"cannot listen on {host}:{port} ({reason}): pass another --port or --host"
            ) from None


def _startup_service(conf_source: str, env: str | None, models: list[str] | None = None):
    """The service and its settings, or one line saying why not (the traceback to a file when
    the cause is not the user's)."""
    from pathlib import Path

    from fashiongan.errors import conf_problem, failure_line
    from fashiongan.search.loading import load_service

    try:
        if problem := conf_problem(Path(conf_source), env):
            raise SearchInputError(problem)
        return load_service(conf_source, env, models)
    except SearchInputError as err:
        raise StartupError(str(err)) from None
    except Exception as err:
        raise click.ClickException(failure_line(err, "search_app_error.log")) from None


if __name__ == "__main__":
    main()
