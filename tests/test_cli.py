from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fashiongan.cli import cli
from fashiongan.datasets.safetensors import save_module
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.models.mlp_gan import MLPGenerator
from tests.model_configs import (
    BLOCKS,
    TINY_CONDITIONAL,
    conditional_config,
    mlp_config,
    text_encoder_params,
)


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    baseline = tmp_path / "baseline.safetensors"
    save_module(MLPGenerator(mlp_config(generator_hidden=(8, 8, 8))), baseline)
    conditional = tmp_path / "conditional.safetensors"
    config = conditional_config(**TINY_CONDITIONAL)
    save_module(ConditionalGenerator(config), conditional)
    return {"baseline": baseline, "conditional": conditional}


def invoke(*args: str):
    return CliRunner().invoke(cli, ["generate", *args])


def test_generate_png_grid(models, tmp_path):
    out = tmp_path / "grid.png"
    result = invoke("--model", str(models["baseline"]), "--n", "6", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert Image.open(out).size[0] > 100


def test_generate_npz_uint8(models, tmp_path):
    out = tmp_path / "samples.npz"
    assert invoke("--model", str(models["baseline"]), "--n", "5", "--out", str(out)).exit_code == 0
    data = np.load(out)
    assert data["images"].shape == (5, 28, 28) and data["images"].dtype == np.uint8


def test_generate_conditional_with_text_and_image(models, tmp_path):
    reference = tmp_path / "ref.png"
    Image.new("RGBA", (40, 50), (200, 10, 10, 128)).save(reference)
    out = tmp_path / "boots.npz"
    result = invoke(
        "--model",
        str(models["conditional"]),
        "--text",
        "a dark ankle boot",
        "--image",
        str(reference),
        "--n",
        "3",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    data = np.load(out)
    assert data["images"].shape == (3, 28, 28)
    assert list(data["captions"]) == ["a dark ankle boot"] * 3


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "missing.safetensors"], "no model at missing.safetensors"),
        (["--model", "{conditional}", "--text", "  "], "non-empty --text"),
        (
            ["--model", "{conditional}", "--text", "a bag", "--image", "{not_image}"],
            "not a readable image",
        ),
        (["--model", "{baseline}", "--text", "a bag"], "unconditional"),
        (["--model", "{baseline}", "--out-ext", ".jpg"], "must end in .png or .npz"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(models, tmp_path, args, message):
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture")
    out = tmp_path / "out.png"
    if "--out-ext" in args:
        args, out = args[:2], tmp_path / "out.jpg"
    args = [a.format(not_image=not_image, **models) for a in args]
    result = invoke(*args, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_generator_uses_the_text_encoder_saved_beside_it(tmp_path):
    """Training saves its (tuned) BERT next to the generator; generate must encode with it."""
    from fashiongan.generation import generate, load_generator, text_encoder
    from fashiongan.text.encoder import TextEncoder

    folder = tmp_path / "models" / "conditional"
    torch.manual_seed(0)
    config = conditional_config(**TINY_CONDITIONAL, text_encoder="./text_encoder")
    save_module(ConditionalGenerator(config), folder / "generator.safetensors")
    out = tmp_path / "boots.npz"
    args = ("--model", str(folder / "generator.safetensors"), "--text", "a dark ankle boot")
    result = invoke(*args, "--n", "2", "--out", str(out))
    assert result.exit_code == 2 and "text_encoder" in result.output  # not saved yet
    assert len(result.output.strip().splitlines()) == 1

    encoder = TextEncoder.from_params(text_encoder_params(), device="cpu")
    with torch.no_grad():  # stands for the tuning: queries must go through this layer
        weight = encoder.model.encoder.layer[-1].output.dense.weight
        weight.add_(0.2 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    encoder.save(folder / "text_encoder")
    assert invoke(*args, "--n", "2", "--out", str(out)).exit_code == 0
    generator = load_generator(folder / "generator.safetensors")
    tuned = generate(generator, 2, 0, "a dark ankle boot")
    assert text_encoder(generator.config.text_encoder, "mean").model_name_or_path == str(
        folder / "text_encoder"
    )
    expected = ((tuned.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, 0].numpy()
    assert np.abs(np.load(out)["images"].astype(int) - expected.astype(int)).max() <= 1
    bundled = ConditionalGenerator(config.model_copy(update={"text_encoder": "bundled"}))
    bundled.load_state_dict(generator.state_dict())
    assert not torch.allclose(generate(bundled, 2, 0, "a dark ankle boot"), tuned)


def test_a_base_model_reads_text_as_conf_base_configures_it(tmp_path, monkeypatch):
    """A generator naming the bundled MiniLM rather than a folder saved beside it, and a search
    with no conditional model, read text with ``conditional.text_encoder``'s length, frozen and
    headless (conf/base's head is the trained one's); away from the project root that is one
    clear error, not a silent setting."""
    from fashiongan.generation import (
        GenerationError,
        _configured_encoder,
        configured_text_encoder,
        text_encoder,
    )

    block = BLOCKS["conditional"].text_encoder
    assert block.head == "attention"
    cls_pooled, configured = text_encoder("bundled", "cls"), configured_text_encoder()
    assert (cls_pooled.pooling, configured.pooling) == ("cls", block.pooling)
    for encoder in (cls_pooled, configured):
        assert encoder.max_length == block.max_length
        assert encoder.head is None and encoder.trainable_top_layers == 0
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GenerationError, match=r"^conditional: missing parameter block .* root$"):
        _configured_encoder()
