"""The held-out shoppers' queries (benchmarks/queries, test half) read by the search's reader:
the class read per kind and the excluded values found must not fall below the figures the test
half gave when it was scored once (issue #29), less a margin of about one query per kind."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from fashiongan.config import load_parameters
from fashiongan.generation import text_encoder
from fashiongan.search.query import shopper_reader

QUERIES = Path(__file__).parents[2] / "benchmarks/queries/shopper_queries.jsonl"
#: kind → the share of its test queries whose class must be read right, with conf/base's reader
#: (multilingual on). Measured when the test half was scored at the end: 0.92 shop words, 0.92
#: typos, 1.00 negation, 1.00 several attributes, 0.96 other languages, 0.96 no-class read as
#: no class without the multilingual reader (0.74 with it, before English messages were kept
#: from it), 1.00 grammar, 0.39 implied.
CLASS_FLOORS = {"unknown_item_words": 0.88, "typos": 0.88, "negation": 0.95,
                "multi_attribute": 0.95, "other_languages": 0.9, "no_class": 0.7, "grammar": 1.0,
                "implied_item": 0.35}  # fmt: skip
EXCLUSION_FLOOR = 0.88  # measured 0.92


@pytest.fixture(scope="module")
def readings() -> list[tuple[dict, object]]:
    reader = shopper_reader(text_encoder("bundled", "mean"), load_parameters()["search_app"].query)
    rows = [json.loads(line) for line in QUERIES.read_text().splitlines() if line.strip()]
    return [(row, reader.detect(row["text"])) for row in rows if row["split"] == "test"]


def test_the_class_is_read_per_kind_at_least_as_well_as_measured(readings):
    right = defaultdict(list)
    for row, intent in readings:
        if row["kind"] == "no_class":
            right["no_class"].append(intent.label is None)
        elif row["class"] is not None:
            right[row["kind"]].append(intent.label == row["class"])
    shares = {kind: sum(hits) / len(hits) for kind, hits in right.items()}
    assert {k: round(shares[k], 2) for k in CLASS_FLOORS if shares[k] < CLASS_FLOORS[k]} == {}


def test_excluded_values_are_found(readings):
    found = [
        set(values) <= set(intent.excluded.get(slot, ()))
        for row, intent in readings
        for slot, values in (row["exclude"] or {}).items()
    ]
    assert len(found) >= 20 and sum(found) / len(found) >= EXCLUSION_FLOOR
