import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from fashiongan.search.cli import search
from tests.model_configs import text_encoder_params


def _run(*args):
    return CliRunner().invoke(search, list(args))


def test_text_query_prints_json_results(search_project, tmp_path):
    out = tmp_path / "generated.png"
    result = _run("--text", "black running trainers", "--k", "3", "--save-images", str(out))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] == "conditional" and payload["generator_text"] == "a dark sneaker"
    assert len(payload["results"]) == 3 and payload["results"][0]["rank"] == 1
    assert "trainers → sneaker (1.00)" in payload["keywords"]
    assert out.stat().st_size > 1000


def test_image_query_and_unconditional_model(search_project, tmp_path):
    picture = tmp_path / "shoe.png"
    Image.new("RGBA", (40, 40), (200, 200, 200, 255)).save(picture)
    result = _run("--image", str(picture), "--k", "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["notices"] == ["Your RGBA image was converted to L."]
    result = _run("--text", "a coat", "--model", "baseline", "--k", "2")
    assert result.exit_code == 0 and json.loads(result.stdout)["model"] == "baseline"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "   "], "--text: Type what you are looking for"),
        (["--text", "x" * 100_000], "--text: the text is 100,000 characters long; at most 2,000"),
        (["--text", "\x01\x02\x1b"], "--text: Type what you are looking for"),
        (["--text", "👗🔥🔥"], "--text: no words I can read in '👗🔥🔥'"),
        (["--text", "a bag", "--seed", str(2**70)], "--seed: seed must be a whole number"),
        (["--image", "missing.png"], "missing.png: no such file"),
        (["--text", "a bag", "--model", "gpt"], "unknown model 'gpt'"),
        (["--text", "a bag", "--k", "0"], "--k: k must be a whole number between 1 and 100"),
        (["--text", "a bag", "--save-images", "x.jpg"], "must end in .png"),
    ],
)
def test_bad_input_exits_2_with_one_line(search_project, args, message):
    result = _run(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_non_image_upload_exits_2(search_project, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("not really a png")
    result = _run("--text", "a bag", "--image", str(notes))
    assert result.exit_code == 2 and "notes.png: not a readable image" in result.stderr


def test_missing_index_says_what_to_run(search_project):
    (search_project / "data/07_model_output/search/default/index.faiss").rename(
        search_project / "index.bak"
    )
    try:
        result = _run("--text", "a bag")
    finally:
        (search_project / "index.bak").rename(
            search_project / "data/07_model_output/search/default/index.faiss"
        )
    assert result.exit_code == 2 and "kedro run --pipelines=search_index" in result.stderr


def test_a_session_file_carries_the_conversation(search_project, tmp_path):
    session = tmp_path / "chat" / "session.json"
    first = _run("--session", str(session), "--text", "a coat", "--k", "3")
    assert first.exit_code == 0, first.output
    conversation = json.loads(first.stdout)["conversation"]
    assert conversation["decision"] == "new" and session.is_file()
    darker = json.loads(_run("--session", str(session), "--text", "darker").stdout)
    assert darker["conversation"]["id"] == conversation["id"]
    assert darker["conversation"]["decision"] == "modify"
    assert darker["conversation"]["reference"]["kind"] == "generated"
    picked = _run("--session", str(session), "--reference-id", "item-007", "--text", "as a dress")
    payload = json.loads(picked.stdout)
    assert payload["conversation"]["reference"]["item_id"] == "item-007"
    assert payload["generator_text"].endswith("dress")
    saved = json.loads(session.read_text())
    assert [turn.get("decision") for turn in saved["turns"]] == ["new", "modify", "modify"]
    assert saved["reference"]["kind"] == "generated" and saved["reference"]["image_png"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not a search session file"), ('{"turns": []}', "not a search session")],
)
def test_a_bad_session_file_exits_2_with_one_line(search_project, tmp_path, content, message):
    session = tmp_path / "session.json"
    session.write_text(content)
    result = _run("--session", str(session), "--text", "darker")
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_first_modification_is_a_new_search_and_an_unknown_item_exits_2(search_project):
    result = _run("--text", "the same but lighter")
    assert result.exit_code == 0, result.output
    turn = json.loads(result.stdout)["conversation"]
    assert turn["decision"] == "new" and "nothing to change yet, so a new search" in turn["reason"]
    unknown = _run("--reference-id", "item-999", "--text", "darker")
    assert unknown.exit_code == 2 and "no catalog item 'item-999'" in unknown.stderr


def test_model_from_a_folder_or_a_registry_uri(search_project):
    folder = search_project / "models" / "conditional" / "default"
    assert (folder / "generator.safetensors").is_file()
    result = _run("--text", "a coat", "--k", "2", "--model", str(folder))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == str(folder)
    missing = _run("--text", "a coat", "--model", "models:/fashiongan-nothing@champion")
    assert missing.exit_code == 2 and "Traceback" not in missing.stderr
    # the last line (MLflow logs its own lines when it creates a fresh store)
    last = missing.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: no registered model 'fashiongan-nothing' (have: ")


@pytest.fixture(scope="module")
def saved_encoder(tmp_path_factory) -> Path:
    """A text encoder folder as training saves it beside the generator."""
    from fashiongan.text.encoder import TextEncoder

    folder = tmp_path_factory.mktemp("encoder") / "text_encoder"
    TextEncoder.from_params(text_encoder_params(), device="cpu").save(folder)
    return folder


@pytest.mark.parametrize("name", ["tokenizer.json", "config.json", "model.safetensors"])
def test_a_text_encoder_file_missing_exits_2_naming_it(search_project, saved_encoder, name):
    """Issue #32: the default model's text_encoder/ without a file (without tokenizer.json,
    transformers builds an empty vocabulary): ``fashiongan search`` and the app's loader exit 2
    with one line naming it, before any query."""
    from fashiongan.datasets.safetensors import save_module
    from fashiongan.models.conditional_gan import ConditionalGenerator
    from fashiongan.search.app import main as serve
    from tests.search.conftest import TINY_GENERATOR

    folder = search_project / "models" / "conditional" / "default"
    generator = folder / "generator.safetensors"
    kept = generator.read_bytes()
    # the config's own class, so the test holds whichever way the config is typed
    beside = type(TINY_GENERATOR)(**vars(TINY_GENERATOR) | {"text_encoder": "./text_encoder"})
    save_module(ConditionalGenerator(beside).eval(), generator)
    encoder = Path(shutil.copytree(saved_encoder, folder / "text_encoder", copy_function=os.link))
    (encoder / name).unlink()
    try:
        results = [_run("--text", "a coat"), CliRunner().invoke(serve, ["--port", "7999"])]
    finally:
        generator.write_bytes(kept)
        shutil.rmtree(encoder)
    line = (
        f"Error: text encoder folder {encoder.resolve()} is incomplete, it has no {name}: copy "
        "the whole folder again or retrain (make train)"
    )
    for result in results:
        assert result.exit_code == 2, result.output
        assert result.stdout == "" and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] == line
    assert (saved_encoder / name).is_file()  # the linked original is whole
