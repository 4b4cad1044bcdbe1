"""benchmarks/shopper_queries.py: the hand-written query file's labels, the scoring worked out
by hand, and the three systems on a planted catalog."""

from __future__ import annotations

import collections
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports _common
    try:
        yield importlib.import_module("shopper_queries")
    finally:
        sys.path.remove(str(BENCHMARKS))


def _query(text="q", kind="typos", cls=None, tone=None, fit=None, pattern=None, exclude=None):
    return {"text": text, "kind": kind, "class": cls, "tone": tone, "fit": fit,
            "pattern": pattern, "exclude": exclude or {}, "split": "dev"}  # fmt: skip


def test_the_query_file_is_labelled_and_split_half_and_half_per_kind(bench):
    queries = bench.read_queries(split="all")
    assert len(queries) >= 320
    assert len({q["id"] for q in queries}) == len(queries)
    assert len({q["text"].lower() for q in queries}) == len(queries)
    assert {q["kind"] for q in queries} == set(bench.KINDS)
    ranges = {"class": range(10), "tone": range(3), "fit": range(3), "pattern": range(2)}
    for q in queries:
        for slot in ("class", "tone", "fit", "pattern"):
            assert q[slot] is None or q[slot] in ranges[slot], q
        for slot, values in q["exclude"].items():
            assert values and all(v in ranges[slot] for v in values), q
        if q["kind"] == "no_class":
            assert q["class"] is None, q
        if q["kind"] == "negation":
            assert any(q["exclude"].values()), q
    splits = collections.Counter((q["kind"], q["split"]) for q in queries)
    for kind in bench.KINDS:
        assert splits[kind, "dev"] >= 20
        assert abs(splits[kind, "dev"] - splits[kind, "test"]) <= 1
    dev = bench.read_queries(split="dev")
    assert 0 < len(dev) < len(queries) and all(q["split"] == "dev" for q in dev)
    with pytest.raises(ValueError, match="split"):
        bench.read_queries(split="train")


@pytest.fixture()
def facts(bench):
    # row:            0  1  2  3  4
    labels = np.array([8, 8, 2, 8, 5])
    attributes = {
        "tone": np.array([0, 1, 0, 2, 0]),
        "fit": np.array([2, 2, 1, 0, 2]),
        "pattern": np.array([1, 0, 0, 0, 1]),
    }
    return bench.CatalogFacts(labels, attributes)


def test_a_query_is_scored_on_all_k_places(bench, facts):
    query = _query(cls=8, tone=0, fit=2, exclude={"tone": [0], "class": [5]})
    score = bench.score_query(query, bench.Answer((0, 1, 2, 3), ms=3.0), facts, k=4)
    assert score["class_p"] == 3 / 4  # rows 0, 1, 3 are bags
    assert score["attribute_p"] == {"tone": 2 / 4, "fit": 2 / 4}  # dark: 0, 2; wide: 0, 1
    assert score["negation"] == 2 / 4  # rows 0 and 2 are dark
    short = bench.score_query(query, bench.Answer((3,)), facts, k=4)
    assert (short["class_p"], short["negation"]) == (1 / 4, 1 / 4)  # three places missing
    refused = bench.score_query(query, bench.Answer((), refused=True), facts, k=4)
    assert (refused["class_p"], refused["negation"], refused["refused"]) == (0.0, 0.0, True)
    unnamed = bench.score_query(_query(kind="no_class", tone=0), bench.Answer((0,)), facts, 4)
    assert (unnamed["class_p"], unnamed["attribute_p"], unnamed["negation"]) == (None, {}, None)


def test_a_kind_averages_each_figure_over_the_queries_that_ask_for_it(bench, facts):
    queries = [
        _query(cls=8, tone=0),
        _query(exclude={"class": [8]}),
        _query(kind="no_class"),
    ]
    answers = [bench.Answer((0, 1), ms=1.0), bench.Answer((2, 3), ms=3.0),
               bench.Answer((), no_item=True, ms=5.0)]  # fmt: skip
    scored = [bench.score_query(q, a, facts, k=2) for q, a in zip(queries, answers, strict=True)]
    figures = bench.summarise(scored, queries)
    assert (figures["class_p10"], figures["class_queries"]) == (1.0, 1)
    assert figures["attribute_p10"] == 0.5  # row 0 dark, row 1 medium
    assert figures["attribute_p10_by_slot"] == {"tone": 0.5, "fit": None, "pattern": None}
    assert figures["negation_respected"] == 0.5  # row 3 is a bag
    assert figures["no_item_share"] == 0.5  # of the two class-less queries
    assert (figures["p50_ms"], figures["refusals"]) == (3.0, 0)


def test_the_three_systems_on_a_planted_catalog(bench):
    from fashiongan.attributes import fit_thresholds
    from fashiongan.pixels import from_uint8
    from fashiongan.search.catalog import Catalog
    from fashiongan.search.index import build_index
    from fashiongan.search.service import SearchInputError, SearchService
    from tests.search.conftest import planted_models, query_settings, tiny_items

    table, pixels = tiny_items()  # 60 items, labels 0..9 repeated: 6 bags, "a plain bag"
    generator, embedder = planted_models()
    with torch.no_grad():
        vectors = embedder(from_uint8(pixels)).numpy()
    service = SearchService(
        {"planted": generator},
        embedder,
        build_index(vectors),
        Catalog(table, pixels),
        query_settings(n_images=2, fuse_text=False, class_boost=0.0),
    )
    labels = table["label"].to_numpy()
    facts = bench.measured_facts(labels, pixels, fit_thresholds(pixels, torch.tensor(labels)))
    titles = table["title"].tolist()
    systems = {
        "project": bench.project_system(service, SearchInputError),
        "title search": bench.title_search(service.encoder, titles),
        "BM25": bench.keyword_search(titles),
    }
    queries = [
        _query("a bag", kind="unknown_item_words", cls=8),
        _query("!!!", kind="typos", cls=8),
        _query("a swimsuit", kind="no_class"),
    ]
    figures = bench.evaluate(systems, queries, facts)
    assert list(figures) == ["unknown_item_words", "typos", "no_class", "all"]
    for name in systems:  # only 6 of the 60 items are bags
        assert figures["unknown_item_words"][name]["class_p10"] == pytest.approx(0.6)
    assert figures["typos"]["project"]["refusals"] == 1
    assert figures["typos"]["project"]["class_p10"] == 0.0
    # no keyword left: every score 0, the first ten rows (labels 0..9), one bag
    assert figures["typos"]["BM25"]["class_p10"] == pytest.approx(0.1)
    assert figures["no_class"]["BM25"]["no_item_share"] == 0.0
    assert figures["all"]["title search"]["queries"] == 3
    markdown = bench.table(figures)
    assert "| typos | 1 |" in markdown and "project / title search / BM25" in markdown


def test_a_project_without_models_is_one_line_and_exit_2(bench, tmp_path, capsys):
    assert bench.main(["--conf", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shopper_queries: ") and err.count("\n") == 1
    assert not (tmp_path / "x.json").exists()
