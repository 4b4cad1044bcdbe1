"""The held-out shoppers' queries (benchmarks/queries: the test half, and the unseen2 set, the
unseen3 test half and the unseen4 and unseen5 sets written by someone who read none of the readers) read by the search's reader: the class read per kind
and the excluded values found must not fall below what each set gave when it was scored once
(issue #29), less a margin of about one query per kind."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from fashiongan.config import load_parameters
from fashiongan.generation import text_encoder
from fashiongan.search.query import shopper_reader

QUERIES = Path(__file__).parents[2] / "benchmarks/queries"
#: set → (file, split, kind → the share of its queries whose class must be read right with
#: conf/base's reader, the share of excluded values that must be found). Measured at ae84834
#: when the sets were scored: test half 0.96 shop words, 0.61 implied, 0.92 typos, 1.00
#: negation, 1.00 several attributes, 0.96 other languages, 0.91 no class, 1.00 grammar,
#: exclusions 0.92; unseen2 0.88, 0.71, 0.97, 0.97, 1.00, 0.97, 0.77, 1.00, exclusions 0.82;
#: unseen3's test half at 6efca8c 1.00, 0.56, 0.95, 1.00, 1.00, 0.83, 0.85, 1.00, exclusions 0.87;
#: unseen4 and unseen5, scored once at 4a5dcc5 (shop words 0.81 and 0.72, no class 0.78 and
#: 0.80), then with the shop words their misses showed: 0.97, 0.75, 0.94, 1.00, 1.00, 0.96,
#: 0.93, 1.00, exclusions 0.79 and 0.97, 0.66, 0.97, 1.00, 1.00, 0.96, 0.95, 1.00, exclusions 0.88.
FLOORS = {
    "test": ("shopper_queries.jsonl", "test", {
        "unknown_item_words": 0.92, "implied_item": 0.56, "typos": 0.87, "negation": 0.95,
        "multi_attribute": 0.95, "other_languages": 0.91, "no_class": 0.86, "grammar": 1.0,
    }, 0.88),
    "unseen2": ("shopper_queries_unseen2.jsonl", "unseen2", {
        "unknown_item_words": 0.84, "implied_item": 0.67, "typos": 0.93, "negation": 0.93,
        "multi_attribute": 0.96, "other_languages": 0.94, "no_class": 0.74, "grammar": 1.0,
    }, 0.80),
    "unseen3_test": ("shopper_queries_unseen3.jsonl", "unseen3_test", {
        "unknown_item_words": 0.95, "implied_item": 0.53, "typos": 0.9, "negation": 0.93,
        "multi_attribute": 0.95, "other_languages": 0.79, "no_class": 0.8, "grammar": 1.0,
    }, 0.80),
    "unseen4": ("shopper_queries_unseen4.jsonl", "unseen4", {
        "unknown_item_words": 0.94, "implied_item": 0.73, "typos": 0.91, "negation": 0.96,
        "multi_attribute": 0.97, "other_languages": 0.93, "no_class": 0.9, "grammar": 1.0,
    }, 0.77),
    "unseen5": ("shopper_queries_unseen5.jsonl", "unseen5", {
        "unknown_item_words": 0.94, "implied_item": 0.64, "typos": 0.94, "negation": 0.97,
        "multi_attribute": 0.97, "other_languages": 0.93, "no_class": 0.92, "grammar": 1.0,
    }, 0.85),
}  # fmt: skip


@pytest.fixture(scope="module")
def reader():
    return shopper_reader(text_encoder("bundled", "mean"), load_parameters()["search_app"].query)


def _readings(reader, name: str) -> list[tuple[dict, object]]:
    file, split, _, _ = FLOORS[name]
    rows = [json.loads(line) for line in (QUERIES / file).read_text().splitlines() if line]
    return [(row, reader.detect(row["text"])) for row in rows if row["split"] == split]


@pytest.mark.parametrize("name", FLOORS)
def test_the_class_is_read_per_kind_at_least_as_well_as_measured(reader, name):
    right = defaultdict(list)
    for row, intent in _readings(reader, name):
        if row["kind"] == "no_class":
            right["no_class"].append(intent.label is None)
        elif row["class"] is not None:
            right[row["kind"]].append(intent.label == row["class"])
    shares = {kind: sum(hits) / len(hits) for kind, hits in right.items()}
    floors = FLOORS[name][2]
    assert {k: round(shares[k], 2) for k in floors if shares[k] < floors[k]} == {}


@pytest.mark.parametrize("name", FLOORS)
def test_excluded_values_are_found(reader, name):
    found = [
        set(values) <= set(intent.excluded.get(slot, ()))
        for row, intent in _readings(reader, name)
        for slot, values in (row["exclude"] or {}).items()
    ]
    assert len(found) >= 20 and sum(found) / len(found) >= FLOORS[name][3]
