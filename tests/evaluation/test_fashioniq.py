import pytest
import torch

from fashiongan.evaluation.fashioniq import fashioniq_recall, rank_gallery


def scores_placing(ranks: list[int], gallery: int) -> tuple[torch.Tensor, list[str], list[str]]:
    """A score matrix whose query q puts gallery item ``q`` (its target) at rank ``ranks[q]``."""
    ids = [f"G{i:03d}" for i in range(gallery)]
    scores = torch.zeros(len(ranks), gallery)
    for q, rank in enumerate(ranks):
        others = [i for i in range(gallery) if i != q]
        order = others[:rank] + [q] + others[rank:]  # best first
        scores[q, torch.tensor(order)] = torch.arange(gallery, 0, -1, dtype=torch.float32)
    return scores, ids, [ids[q] for q in range(len(ranks))]


def test_rank_gallery_finds_the_target_rank():
    scores, ids, targets = scores_placing([0, 9, 10, 55], gallery=60)
    top, ranks = rank_gallery(scores, ids, targets, k=50)
    assert ranks == [0, 9, 10, 55]
    assert [len(t) for t in top] == [50] * 4 and top[1][9] == targets[1]
    _, outside = rank_gallery(torch.zeros(1, 3), ["a", "b", "c"], ["z"], k=2)
    assert outside == [3]  # not in the gallery: never found
    tied, _ = rank_gallery(torch.zeros(1, 3), ["a", "b", "c"], ["c"], k=3)
    assert tied == [["a", "b", "c"]]  # ties keep gallery order
    with pytest.raises(ValueError, match="scores must be"):
        rank_gallery(torch.zeros(2, 3), ["a", "b", "c"], ["a"], k=1)


def test_official_recall_on_a_known_ranking():
    ranked, targets = {}, {}
    for category, ranks in {"dress": [0, 9, 10, 55], "shirt": [49, 50]}.items():
        scores, ids, wanted = scores_placing(ranks, gallery=60)
        ranked[category], _ = rank_gallery(scores, ids, wanted, k=50)
        targets[category] = wanted
    result = fashioniq_recall(ranked, targets, ks=(10, 50))
    assert result["dress"] == {"recall_at_10": 0.5, "recall_at_50": 0.75, "queries": 4}
    assert result["shirt"] == {"recall_at_10": 0.0, "recall_at_50": 0.5, "queries": 2}
    # the average is over categories (0.25), not over the six queries (2 / 6)
    assert result["average"] == {"recall_at_10": 0.25, "recall_at_50": 0.625, "mean": 0.4375}


def test_official_recall_checks_its_input():
    with pytest.raises(ValueError, match="different categories"):
        fashioniq_recall({"dress": [["a"]]}, {"shirt": ["a"]})
    with pytest.raises(ValueError, match="no category has evaluation queries"):
        fashioniq_recall({"dress": []}, {"dress": []})
