"""The FashionIQ retrieval protocol: rank the category's gallery, Recall@10/50, category mean.

As the dataset's evaluation (the challenge's ``eval.py`` ranks ``image_splits/split.{category}
.{split}.json`` per category) and the common validation protocol of the literature: each query
of a category ranks every picture of that category's gallery (the candidate stays in it);
Recall@K is the share of queries whose target is among the first K; the reported "average" is
the mean of the three categories' recalls (macro, every category weighs the same), and
``mean`` is (R@10 + R@50) / 2 of those averages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from fashiongan.evaluation.metrics import recall_at_k


def rank_gallery(
    scores: torch.Tensor, gallery_ids: Sequence[str], targets: Sequence[str], k: int
) -> tuple[list[list[str]], list[int]]:
    """Best-first gallery ids per query and the target's 0-based rank.

    Args:
        scores: (Q, G) higher = more similar; ties keep gallery order (stable).
        gallery_ids: the G gallery ASINs.
        targets: per query the target ASIN; one outside the gallery gets rank G (a miss).
        k: how many ids to keep per query.

    Returns:
        ``top`` (Q lists of ≤ k ids) and ``target_rank`` (Q ints).
    """
    if scores.shape != (len(targets), len(gallery_ids)):
        raise ValueError(
            f"scores must be (queries, gallery) = ({len(targets)}, {len(gallery_ids)}), "
            f"got {tuple(scores.shape)}"
        )
    order = torch.argsort(scores, dim=1, descending=True, stable=True)  # (Q, G)
    position = {asin: i for i, asin in enumerate(gallery_ids)}
    top, ranks = [], []
    for row, target in zip(order.tolist(), targets, strict=True):
        top.append([gallery_ids[i] for i in row[:k]])
        column = position.get(target)
        ranks.append(row.index(column) if column is not None else len(gallery_ids))
    return top, ranks


def fashioniq_recall(
    ranked: Mapping[str, Sequence[Sequence[str]]],
    targets: Mapping[str, Sequence[str]],
    ks: Sequence[int] = (10, 50),
) -> dict[str, dict[str, float]]:
    """Recall@K per category and their average, the FashionIQ way.

    Args:
        ranked: per category, per query the gallery ASINs best first (at least max(ks) long
            unless the gallery is smaller).
        targets: per category, per query the target ASIN.
        ks: cut-offs (10 and 50 in the protocol).

    Returns:
        ``{category: {"recall_at_K": …, "queries": n}, "average": {"recall_at_K": …,
        "mean": …}}`` with recalls in [0, 1]; categories without queries are left out.
    """
    if set(ranked) != set(targets):
        raise ValueError(
            f"ranked and targets name different categories: {set(ranked) ^ set(targets)}"
        )
    out: dict[str, dict[str, float]] = {}
    for category, rows in ranked.items():
        if not len(rows):
            continue
        recalls = recall_at_k(rows, [{t} for t in targets[category]], ks=ks, kind="hit")
        out[category] = {f"recall_at_{k}": recalls[k] for k in ks} | {"queries": len(rows)}
    if not out:
        raise ValueError("no category has evaluation queries")
    average = {
        f"recall_at_{k}": sum(v[f"recall_at_{k}"] for v in out.values()) / len(out) for k in ks
    }
    average["mean"] = sum(average.values()) / len(ks)
    return out | {"average": average}
