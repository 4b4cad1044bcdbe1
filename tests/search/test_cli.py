import json

import pytest
from click.testing import CliRunner
from PIL import Image

from fashiongan.search.cli import search


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
        (["--text", "   "], "give --text"),
        (["--image", "missing.png"], "missing.png: no such file"),
        (["--text", "a bag", "--model", "gpt"], "unknown model 'gpt'"),
        (["--text", "a bag", "--k", "0"], "k must be between 1 and 100"),
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
    (search_project / "data/07_model_output/search/index.faiss").rename(
        search_project / "index.bak"
    )
    try:
        result = _run("--text", "a bag")
    finally:
        (search_project / "index.bak").rename(
            search_project / "data/07_model_output/search/index.faiss"
        )
    assert result.exit_code == 2 and "kedro run --pipelines=search_index" in result.stderr
