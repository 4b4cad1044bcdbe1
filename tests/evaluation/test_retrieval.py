"""The retrieval protocol's building blocks and one model's run, with known answers."""

import numpy as np
import pytest
import torch

from fashiongan.evaluation.retrieval import (
    METHODS,
    draw_queries,
    rank,
    relevant_sets,
    retrieval_protocol,
    retrieval_scores,
    retrieve_with_model,
    verdict,
    zscore,
)
from fashiongan.evaluation.sampling import catalog_captions
from fashiongan.text.captions import parse_caption
from tests.evaluation.tiny import evaluation_params, tiny_captions, tiny_model_input
from tests.retrieval_chance import random_ranking_hit_rate


def test_retrieval_with_the_targets_own_embedding_is_perfect():
    keys = np.array([[i % 3, 0, i % 2, 0] for i in range(12)])
    catalog = torch.nn.functional.normalize(
        torch.randn(12, 5, generator=torch.Generator().manual_seed(0)), dim=1
    )
    targets = [0, 4, 7]
    relevant = relevant_sets(keys, targets)
    assert relevant[0] == {0, 6} and all(t in r for t, r in zip(targets, relevant, strict=True))
    assert relevant_sets(keys, targets, exclude=[6, 4, 0])[0] == {0}
    ranked = rank(catalog[targets] @ catalog.T, depth=5)
    scores = retrieval_scores(ranked, relevant, [1, 10], map_k=5)
    assert scores["recall_at_1"] == 1.0 and scores["recall_at_10"] == 1.0
    excluded = rank(catalog[targets] @ catalog.T, depth=12, exclude=torch.tensor(targets))
    assert excluded.shape == (3, 11)
    assert not any(t in row for t, row in zip(targets, excluded.tolist(), strict=True))


def test_zscore_standardises_each_row():
    sims = torch.tensor([[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]])
    z = zscore(sims)
    assert torch.allclose(z.mean(1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(z.std(1), torch.ones(2))
    assert torch.equal(zscore(torch.ones(1, 4)), torch.zeros(1, 4))  # flat row: no division by 0


def test_draw_queries_texts_describe_the_target(tiny):
    items = catalog_captions(tiny["captions"])
    queries = draw_queries(items, n_queries=20, seed=1, same_class_prob=0.5)
    assert len(queries) == 20 and (queries["target"] != queries["reference"]).all()
    assert queries["target"].is_unique
    for row in queries.itertuples():
        target = items.loc[row.target]
        parsed = parse_caption(row.text)
        assert (parsed["label"], parsed["tone"], parsed["fit"], parsed["pattern"]) == (
            target["label"], target["tone"], target["fit"], target["pattern"],
        )  # fmt: skip
        if items.loc[row.reference, "label"] != target["label"]:
            assert parse_caption(row.modification)["label"] == target["label"]

    def same_class_share(prob: float) -> float:
        drawn = draw_queries(items, n_queries=40, seed=1, same_class_prob=prob)
        labels = items["label"].to_numpy()
        return float((labels[drawn["reference"]] == labels[drawn["target"]]).mean())

    # (a reference drawn equal to its target moves to the next item, which may be of another class)
    assert same_class_share(1.0) >= 0.75 > 0.25 >= same_class_share(0.0)
    with pytest.raises(ValueError, match="at least 2 items"):
        draw_queries(items.iloc[:1], n_queries=1, seed=0, same_class_prob=0.5)


def test_verdict_says_when_synthetic_does_not_win():
    def scores(r10, m):
        return {"overall": {"recall_at_1": 0.0, "recall_at_10": r10, "map_at_100": m}}

    model = {
        "text": {
            "text": scores(0.5, 0.2),
            "synthetic": scores(0.6, 0.3),
            "fused": scores(0.7, 0.3),
        },
        "composed": {
            "image": scores(0.5, 0.4),
            "text": scores(0.1, 0.1),
            "synthetic": scores(0.6, 0.3),
            "fused": scores(0.6, 0.3),
        },
    }
    out = verdict(model, [1, 10, 50], 100)
    assert out["criterion"] == "recall_at_10 and map_at_100 above every baseline"
    assert out["text_synthetic_beats_baselines"] is True
    assert out["composed_synthetic_beats_baselines"] is False
    assert out["composed_not_beaten_by_synthetic"] == ["image"]
    assert out["text_fused_beats_baselines"] is True


def test_protocol_and_one_model_run(tiny):
    params = evaluation_params()
    items = catalog_captions(tiny["captions"])
    images = tiny["model_input"]["test_images"]
    with pytest.raises(ValueError, match="49 test captions for 50 test images"):
        retrieval_protocol(items.iloc[:49], len(images), params.retrieval)
    protocol = retrieval_protocol(items, len(images), params.retrieval)
    assert len(protocol.queries) == 12 and protocol.depth == 100
    assert all(
        r not in rel
        for r, rel in zip(protocol.references, protocol.relevant["composed"], strict=True)
    )
    settings = protocol.settings(n_images=2)
    assert settings["n_catalog"] == 50 and settings["ks"] == [1, 10, 50]


#: Catalog items: every cut-off (up to 50) ranks a quarter of them at most.
CATALOG = 200


@pytest.fixture(scope="module")
def large_catalog():
    """200 captioned test items: a random ranking's Recall@10 is far below 1 there."""
    model_input = tiny_model_input(n_test=CATALOG)
    _, captions = tiny_captions(model_input)
    return catalog_captions(captions), model_input["test_images"]


def test_one_model_run_against_chance(tiny, large_catalog):
    """Every method ranks the catalog; BERT on the captions finds the target's kind far above
    a random ranking, the untrained generator's synthetic query does not."""
    params = evaluation_params()
    items, images = large_catalog
    protocol = retrieval_protocol(items, len(images), params.retrieval)
    modules = tiny["modules"]["conditional"]
    result = retrieve_with_model(
        modules["generator"], modules["embedder"], images, protocol, params.retrieval, 8, "cpu"
    )
    for kind, methods in METHODS.items():
        assert tuple(result.scores[kind]) == methods
        for scores in result.scores[kind].values():
            overall = scores["overall"]
            assert set(overall) == {"recall_at_1", "recall_at_10", "recall_at_50", "map_at_100"}
            assert overall["recall_at_1"] <= overall["recall_at_10"] <= overall["recall_at_50"]
        assert result.ranked_synthetic[kind].shape == (12, 100)
        assert result.synthetic[kind][1].shape == (12, 1, 28, 28)
    chance = random_ranking_hit_rate(protocol.relevant["text"], CATALOG, 10)
    text = result.scores["text"]["text"]["overall"]["recall_at_10"]
    synthetic = result.scores["text"]["synthetic"]["overall"]["recall_at_10"]
    # measured: text 0.83, untrained synthetic 0.0, a random ranking 0.22 (about 2.5% of the
    # catalog shares a target's class, tone, fit and pattern)
    assert chance < 0.4, f"R@10 of a random ranking {chance:.3f}: the test says nothing"
    assert text >= chance + 0.4, f"text R@10 {text:.3f} (chance {chance:.3f})"
    assert synthetic < text, f"untrained synthetic R@10 {synthetic:.3f} vs text {text:.3f}"
    assert result.scores["verdict"]["text_synthetic_beats_baselines"] is False
    again = retrieve_with_model(
        modules["generator"], modules["embedder"], images, protocol, params.retrieval, 8, "cpu"
    )
    assert again.scores == result.scores  # seeded
