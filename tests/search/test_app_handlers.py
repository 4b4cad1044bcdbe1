"""The web app without a browser: its layout, each event handler, and the command that starts it."""

from __future__ import annotations

import io

import gradio as gr
from click.testing import CliRunner
from PIL import Image

from fashiongan.search import app


def test_the_app_has_three_tabs_and_four_api_endpoints(service):
    demo = app.build_app(service)
    tabs = [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert tabs == ["Chat", "Generate", "Compare"]
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"chat", "generate", "compare", "search"} <= names


def test_chat_turn_shows_the_reply_the_drawing_and_the_items(service):
    history, box, previous, generated, gallery, keywords, conversation, ids = app.answer_chat(
        service, 5, {"text": " black running trainers ", "files": []}, None
    )
    assert history[0] == {"role": "user", "content": "black running trainers"}
    assert "Read as" in history[1]["content"] and box is None
    assert isinstance(generated, Image.Image) and generated.size == (4 * 62, 4 * 32)  # 2 images
    assert previous is None  # nothing before the first turn
    assert len(gallery) == 5 and gallery[0][1].startswith("1. ") and ids[0] in gallery[0][1]
    assert "trainers → sneaker" in keywords and "Turn 1:** new" in keywords
    # the next turn modifies the drawing: the previous drawing is shown beside the new one
    history, _, previous, generated, _, keywords, again, _ = app.answer_chat(
        service, 5, {"text": "lighter"}, history, conversation
    )
    assert again == conversation and isinstance(previous, Image.Image)
    assert "**Modify:** 'lighter' changes the reference" in history[-2]["content"]
    assert "Looking for:** a medium-tone sneaker" in keywords  # dark, one step lighter


def test_a_clicked_result_becomes_the_reference(service):
    *_, conversation, ids = app.answer_chat(service, 5, {"text": "a coat"}, [])
    chosen, said = app.select_result(ids, gr.SelectData(None, {"index": 2, "value": None}))
    assert chosen == ids[2] and "Selected result 3" in said
    history, shown, panel, same = app.use_as_reference(service, conversation, chosen, [])
    assert same == conversation and isinstance(shown, Image.Image)
    assert f"catalog item {chosen}" in panel and "as the reference" in history[-1]["content"]
    history, *_ = app.answer_chat(service, 5, {"text": "as a dress"}, history, conversation)
    assert f"Starting from catalog item {chosen}" in history[-2]["content"]
    history, *_ = app.use_as_reference(service, conversation, None, [])
    assert history[-1]["content"] == "⚠️ Click a result first."


def test_chat_errors_are_one_message_and_the_app_keeps_serving(service, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    history, *rest = app.answer_chat(service, 5, {"text": "a bag", "files": [str(notes)]}, [])
    assert history[-1]["content"].startswith("⚠️ notes.txt: not a readable image")
    assert rest == [None, None, None, [], "", None, []]
    history, *_ = app.answer_chat(service, 5, {"text": "a purse"}, history)
    assert "purse → bag" in history[-2]["content"]


def test_generate_tab_grid_and_errors(service):
    grid, notes = app.generate_samples(service, "a dark coat", None, 0, 3, "conditional")
    assert grid.size == (4 * (3 * 30 + 2), 4 * 32) and notes == ""
    grid, notes = app.generate_samples(service, "", None, 0, 3, "conditional")
    assert grid is None and notes.startswith("⚠️ Type a caption")


def test_compare_tab_one_column_per_model(service):
    outputs = app.compare_models(service, 3, "a coat", None, 0)
    assert len(outputs) == 3 * len(service.model_names)
    assert all(len(gallery) == 3 for gallery in outputs[2::3])
    empty = app.compare_models(service, 3, "", None, 0)
    assert empty[0].startswith("⚠️ Type what you are looking for") and empty[2] == []


def test_search_api_returns_json_or_the_error(service):
    assert len(app.search_json(service, "a bag", k=2)["results"]) == 2
    assert "Type what you are looking for" in app.search_json(service, " ")["error"]


def test_unexpected_errors_are_not_shown_to_the_user():
    assert app._error(RuntimeError("secret path /x")) == (
        "⚠️ Something went wrong on our side (RuntimeError); please try again."
    )


def test_python_m_app_starts_with_the_project_settings(search_project, monkeypatch):
    launched = {}

    def fake_launch(demo, host, port, upload_max_mb, **kwargs):
        import torch

        launched.update(host=host, port=port, mb=upload_max_mb, threads=torch.get_num_threads())
        launched["api"] = {fn.api_name for fn in demo.fns.values()}

    monkeypatch.setattr(app, "launch", fake_launch)
    result = CliRunner().invoke(app.main, ["--port", "7999"])
    assert result.exit_code == 0, result.output
    assert "FashionGAN search on http://127.0.0.1:7999" in result.output
    assert launched["host"] == "127.0.0.1" and launched["port"] == 7999 and launched["mb"] == 20
    assert launched["threads"] == 1 and "search" in launched["api"]
    bad = search_project / "conf/local/parameters_bad_port.yml"
    bad.write_text("search_app:\n  port: 99999\n")
    try:
        refused = CliRunner().invoke(app.main, [])
    finally:
        bad.unlink()
    assert (
        refused.exit_code == 2 and "Error: search_app.port: input should be less" in refused.output
    )
    assert len(refused.output.strip().splitlines()) == 1


def test_png_of_a_picture_round_trips(service):
    buffer = io.BytesIO()
    app.picture(service.search("a bag").images).save(buffer, format="PNG")
    assert Image.open(buffer).mode == "L"


def test_served_app_answers_its_api_endpoints(service):
    """The real server on 127.0.0.1, called as a client would (no browser needed)."""
    import socket

    from gradio_client import Client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = app.build_app(service)
    app.launch(demo, port=port, block=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        found = client.predict("a purse", 3, 0, api_name="/search")
        assert found["generator_text"] == "a bag" and len(found["results"]) == 3
        chat = client.predict({"text": "black running trainers", "files": []}, [], api_name="/chat")
        assert "trainers → sneaker" in chat[-1] and len(chat[4]) == 5
        again = client.predict("darker", 3, 0, found["conversation"]["id"], "", api_name="/search")
        assert again["conversation"]["decision"] == "modify"
        assert again["conversation"]["id"] == found["conversation"]["id"]
        grid, notes = client.predict("a dark coat", None, 0, 4, "conditional", api_name="/generate")
        assert Image.open(grid).size == (4 * (4 * 30 + 2), 4 * 32) and notes == ""
        compared = client.predict("a coat", None, 0, api_name="/compare")
        assert len(compared) == 3 * len(service.model_names)
    finally:
        demo.close()
