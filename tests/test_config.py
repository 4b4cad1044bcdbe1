"""The typed parameter blocks: every YAML block parses, and bad values fail with one clear line."""

from __future__ import annotations

import pytest
import yaml

from fashiongan.config import (
    BLOCKS,
    ConditionalTraining,
    ConfigError,
    load_parameters,
    overridden,
    parse_block,
    parse_parameters,
)
from tests.conftest import REPO_ROOT


def _raw() -> dict:
    params: dict = {}
    for path in sorted((REPO_ROOT / "conf/base").glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()))
    return params


def test_every_yaml_block_has_a_model_and_parses():
    raw = _raw()
    assert set(raw) == set(BLOCKS)
    typed = load_parameters(REPO_ROOT / "conf")
    assert typed["baseline"].training.iterations == raw["baseline"]["training"]["iterations"]
    assert typed["conditional"].training.g_betas == (0.0, 0.9)  # lists become tuples
    assert (
        typed["fashioniq"].training.model.stages == raw["fashioniq"]["training"]["model"]["stages"]
    )


def test_every_field_round_trips_to_the_yaml_values():
    """No silent coercion or defaults: the typed block dumps back to exactly the YAML dict."""
    raw = _raw()
    for name, values in raw.items():
        dumped = yaml.safe_load(yaml.safe_dump(parse_block(name, values).model_dump(mode="json")))
        assert dumped == values, name


def _baseline(**training) -> dict:
    raw = _raw()["baseline"]
    raw["training"].update(training)
    return raw


def test_typo_names_the_key_and_the_closest_valid_one():
    with pytest.raises(ConfigError) as err:
        parse_block("baseline", _baseline(iteratons=5))
    assert str(err.value) == (
        "baseline.training.iteratons: unknown key; did you mean `iterations`?"
    )


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        (
            {"iterations": 0},
            "baseline.training.iterations: input should be greater than or equal to 1",
        ),
        (
            {"iterations": -5},
            "baseline.training.iterations: input should be greater than or equal to 1",
        ),
        (
            {"batch_size": 0},
            "baseline.training.batch_size: input should be greater than or equal to 1",
        ),
        ({"g_lr": "fast"}, "baseline.training.g_lr: input should be a valid number"),
        ({"g_lr": 0.0}, "baseline.training.g_lr: input should be greater than 0"),
        (
            {"d_betas": [0.5, 1.5]},
            "baseline.training.d_betas.1: input should be less than or equal to 1",
        ),
        ({"device": "gpu"}, "baseline.training.device: string should match pattern"),
    ],
)
def test_bad_values_name_the_full_key(change, phrase):
    with pytest.raises(ConfigError) as err:
        parse_block("baseline", _baseline(**change))
    assert str(err.value).startswith(phrase)
    assert "\n" not in str(err.value)


def test_a_choice_outside_its_set_lists_the_choices():
    raw = _raw()["conditional"]
    raw["training"]["loss"] = "foo"
    with pytest.raises(
        ConfigError, match=r"conditional\.training\.loss: .*'bce', 'wgan-gp' or 'hinge', got 'foo'"
    ):
        parse_block("conditional", raw)


def test_a_missing_key_is_an_error_not_a_default():
    raw = _raw()["conditional"]
    del raw["training"]["text_lr"]
    with pytest.raises(ConfigError, match=r"conditional\.training\.text_lr: missing"):
        parse_block("conditional", raw)


def test_unknown_and_missing_top_level_blocks():
    raw = _raw()
    with pytest.raises(
        ConfigError, match="baselin: unknown parameter block; did you mean `baseline`"
    ):
        parse_parameters({**raw, "baselin": {}})
    del raw["evaluation"]
    with pytest.raises(ConfigError, match="evaluation: missing parameter block"):
        parse_parameters(raw, {"evaluation"})


def test_blocks_are_frozen_and_overridden_revalidates():
    training = load_parameters(REPO_ROOT / "conf")["conditional"].training
    with pytest.raises(ValueError):
        training.epochs = 3  # type: ignore[misc]
    smaller = overridden(training, epochs=1, model__g_channels=8)
    assert (smaller.epochs, smaller.model.g_channels, training.epochs) == (1, 8, 8)
    assert isinstance(smaller, ConditionalTraining)
    with pytest.raises(ValueError):
        overridden(training, epochs=0)
