"""Model folders checked whole before use, and an encoder whose device follows its weights."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from fashiongan.cli import cli
from fashiongan.datasets.safetensors import save_module
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.text.encoder import TextEncoder
from fashiongan.text.loading import (
    HEAD_FILE,
    SAVED_FILES,
    SETTINGS_FILE,
    TextModelNotFoundError,
    bundled_model_path,
)
from tests.model_configs import TINY_CONDITIONAL, conditional_config, text_encoder_params


def base_model(folder: Path) -> TextEncoder:
    """The BERT in ``folder`` read as a base model (conf/base's settings, nothing trained)."""
    return TextEncoder.from_params(text_encoder_params(model_name_or_path=str(folder)), "cpu")


def linked_copy(source: Path, target: Path) -> Path:
    """A copy made of hard links (the 87 MiB weights are not rewritten); deleting a file in it
    leaves ``source`` whole."""
    return Path(shutil.copytree(source, target, copy_function=os.link))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A folder written by TextEncoder.save, with a trained-looking head."""
    encoder = TextEncoder.from_params(text_encoder_params(head="attention", head_pools=2), "cpu")
    with torch.no_grad():
        encoder.head.out.weight.normal_(std=0.05, generator=torch.Generator().manual_seed(0))
    folder = tmp_path_factory.mktemp("saved") / "text_encoder"
    encoder.save(folder)
    return folder


def test_save_writes_the_files_the_check_asks_for(saved):
    assert sorted(p.name for p in saved.iterdir()) == sorted(
        [*SAVED_FILES, SETTINGS_FILE, HEAD_FILE]
    )


@pytest.mark.parametrize("name", [*SAVED_FILES, HEAD_FILE])
def test_a_saved_folder_missing_a_file_is_refused_naming_it(saved, tmp_path, name):
    folder = linked_copy(saved, tmp_path / "text_encoder")
    (folder / name).unlink()
    with pytest.raises(TextModelNotFoundError) as err:
        TextEncoder.from_saved(folder)
    message = str(err.value)
    assert f"{folder} is incomplete, it has no {name}:" in message and "\n" not in message
    assert (saved / name).is_file()  # the original is untouched


def test_a_saved_folder_loads_with_its_own_settings_and_unnormalised_is_refused(saved, tmp_path):
    """The settings come from the folder's file, not from the code or conf/base: a length and
    head that conf/base does not have load as saved; ``normalize`` left the options (always on),
    so a folder that says false is refused rather than read otherwise than it was trained."""
    folder = linked_copy(saved, tmp_path / "text_encoder")
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    (folder / SETTINGS_FILE).unlink()  # a linked copy: write a new file, not the original's
    (folder / SETTINGS_FILE).write_text(json.dumps(settings | {"max_length": 9}))
    loaded = TextEncoder.from_saved(folder)
    assert (loaded.max_length, loaded.head.pools, loaded.pooling) == (9, 2, "mean")
    assert loaded.tokenize(["a " * 20]).input_ids.shape[1] == 9
    (folder / SETTINGS_FILE).unlink()
    (folder / SETTINGS_FILE).write_text(json.dumps(settings | {"normalize": False}))
    with pytest.raises(TextModelNotFoundError, match="normalize is False; the encoder always"):
        TextEncoder.from_saved(folder)


def test_a_missing_tokenizer_never_falls_back_to_an_empty_vocabulary(saved, tmp_path):
    """transformers 5 loads a folder without tokenizer.json with an empty vocabulary, silently:
    every word became [UNK] and the features changed (0.20 max abs on four captions)."""
    folder = linked_copy(saved, tmp_path / "text_encoder")
    (folder / "tokenizer.json").unlink()
    (folder / SETTINGS_FILE).unlink()  # even loaded as a plain BERT folder
    (folder / HEAD_FILE).unlink()
    with pytest.raises(TextModelNotFoundError, match=r"no tokenizer\.json or vocab\.txt"):
        base_model(folder)


def test_a_plain_bert_folder_needs_config_weights_and_a_vocabulary(tmp_path):
    bundled = bundled_model_path()
    folder = linked_copy(bundled, tmp_path / "bert")
    (folder / "tokenizer.json").unlink()  # vocab.txt is enough for a BERT tokenizer
    slow = base_model(folder).tokenize(["a dark coat"]).input_ids
    fast = base_model(bundled).tokenize(["a dark coat"]).input_ids
    assert torch.equal(slow, fast)
    for name in ("vocab.txt", "config.json"):
        (folder / name).unlink()
    with pytest.raises(TextModelNotFoundError) as err:
        base_model(folder)
    assert "no config.json; no tokenizer.json or vocab.txt:" in str(err.value)


def test_a_trained_head_is_never_dropped_for_want_of_its_settings(saved, tmp_path):
    folder = linked_copy(saved, tmp_path / "text_encoder")
    (folder / SETTINGS_FILE).unlink()
    with pytest.raises(TextModelNotFoundError, match=f"no {SETTINGS_FILE} .it holds a trained"):
        base_model(folder)


def test_generate_names_the_missing_tokenizer_in_one_line(saved, tmp_path, monkeypatch):
    """The case of issue #32: a trained model folder without its tokenizer.json."""
    config = conditional_config(**TINY_CONDITIONAL, text_encoder="./text_encoder")
    generator = tmp_path / "models" / "conditional" / "generator.safetensors"
    save_module(ConditionalGenerator(config), generator)
    folder = linked_copy(saved, generator.parent / "text_encoder")
    (folder / "tokenizer.json").unlink()
    monkeypatch.chdir(tmp_path)
    args = ["generate", "--model", str(generator), "--text", "a coat", "--out", "coat.png"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Error: text encoder folder {folder} is incomplete, it has no tokenizer.json: copy the "
        "whole folder again or retrain (make train)"
    ]
    assert not (tmp_path / "coat.png").exists()


def test_the_device_follows_the_weights():
    """No stored device to go stale: ``.to()`` moves the weights and the device with them."""
    encoder = TextEncoder.from_params(text_encoder_params(head="attention", head_pools=2), "cpu")
    assert encoder.device == torch.device("cpu")
    moved = encoder.to("meta")  # a device with no memory: nothing to allocate on this machine
    assert moved is encoder and encoder.device.type == "meta"
    assert {p.device.type for p in encoder.parameters()} == {"meta"}
    assert encoder.head.out.weight.device.type == "meta"
