"""Simulated shoppers: does a conversation with the GAN find the wanted item in a few turns?

After the dialog-based interactive retrieval protocol of Guo et al. (NeurIPS 2018): each shopper
wants one target item of the test catalog (the search index built by ``kedro run
--pipelines=search_index``). Turn 1 is a partial caption of the target (its class and at most one
attribute, in the caption grammar's wording). On each later turn the shopper compares the top
result shown with the target (class, tone, fit, pattern, as ``fashiongan.attributes`` measures
them on the pictures) and states ONE difference in the modification grammar ("darker", "as a
dress"; the class first when it is wrong, else a random differing attribute); when the top result
matches on all four the dialog has succeeded and stops.

Methods, same shoppers:
  gan_pick   (a) the service's conversation: the shopper picks the top result ("use this as
             reference") and says the difference; the service draws the changed caption and
             ranks by generated image + text (fused) with the class boost.
  gan_last   (a') the same without picking: the reference is the last generated image.
  gan_pick_composed  (a) with ``modify_generates: composed``: the picked item's picture and the
             typed modification go to the generator together.
  text_only  (b) no generation: all the turns' texts joined, text embedding vs the titles.
  full_caption (c) one query with the target's full caption (a reference line, same each turn).

Per turn 1-5: success@10 (a top-10 item with the target's class, tone, fit and pattern),
the mean rank percentile of the target item itself (100 = ranked first, 0 = last; a finished
dialog keeps its last value), the share of dialogs finished (top-1 matches all four), and the
service's per-turn latency (p50/p90, wall clock around the service call: pick, generation and
search). Run from the project root:

    python benchmarks/dialog_search.py [--shoppers 1000] [--turns 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np
import torch

from _common import save
from fashiongan.attributes import assign
from fashiongan.pixels import from_uint8
from fashiongan.search.loading import load_service
from fashiongan.search.service import SearchService
from fashiongan.text.captions import ATTRIBUTES, caption, modification_text

KEYS = ("label", *ATTRIBUTES)
METHODS = ("gan_pick", "gan_last", "gan_pick_composed", "text_only", "full_caption")


def all_scores(service: SearchService, result) -> torch.Tensor:
    """(N,) every item's score for the turn: the service's own when it scored every item (the
    fused ranking), else the drawing's plain cosine, which the index ranked by."""
    if result.scores is not None:
        return result.scores
    query = torch.from_numpy(service.path.embed(result.images))
    return (query @ service.ranker.catalog_vectors.T)[0]


def catalog_keys(service: SearchService) -> np.ndarray:
    """(N, 4) class, tone, fit, pattern of every catalog item, measured on its picture."""
    labels = torch.tensor(service.catalog.table["label"].to_numpy(dtype=np.int64))
    values = assign(from_uint8(service.catalog.thumbnails), labels, service.attribute_thresholds)
    return np.stack([labels.numpy(), *(values[a].numpy() for a in ATTRIBUTES)], axis=1)


class Judge:
    """Success, rank percentile and the shopper's next statement, from the measured keys."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        self.n = len(keys)

    def matches(self, row: int, target: int) -> bool:
        return bool((self.keys[row] == self.keys[target]).all())

    def success_at(self, rows: list[int], target: int, k: int = 10) -> bool:
        return any(self.matches(row, target) for row in rows[:k])

    def percentile(self, scores: torch.Tensor, target: int) -> float:
        rank = int((scores > scores[target]).sum())  # items ranked above the target
        return 100.0 * (1.0 - rank / (self.n - 1))

    def difference(self, top: int, target: int, rng: random.Random) -> str:
        """One stated difference: the class first when it differs, else a random attribute."""
        differs = [key for i, key in enumerate(KEYS) if self.keys[top, i] != self.keys[target, i]]
        key = "label" if "label" in differs else rng.choice(differs)
        i = KEYS.index(key)
        return modification_text(
            {key: int(self.keys[top, i])}, {key: int(self.keys[target, i])}, rng
        )


def first_turn(keys: np.ndarray, target: int, rng: random.Random) -> str:
    """The target's class and at most one attribute, in the caption grammar."""
    include = rng.choice(((), ("tone",), ("fit",), ("pattern",)))
    label, tone, fit, pattern = map(int, keys[target])
    return caption(label, tone, fit, pattern, rng, include=include)


def run_dialog(service, judge, method, target, opening, turns, rng) -> dict[str, list]:
    """One shopper's dialog with one method: per turn success@10, percentile, done, latency."""
    out: dict[str, list] = {"success": [], "percentile": [], "done": [], "latency_ms": []}
    texts, conversation, top = [opening], None, None
    for turn in range(turns):
        if turn and out["done"][-1]:  # finished: the last values carry forward
            for key in ("success", "percentile", "done"):
                out[key].append(out[key][-1])
            continue
        if turn:
            texts.append(judge.difference(top, target, rng))
        rows, scores, conversation, latency = ask(service, method, texts, conversation, top)
        top = rows[0]
        out["success"].append(judge.success_at(rows, target))
        out["percentile"].append(judge.percentile(scores, target))
        out["done"].append(judge.matches(top, target))
        if latency is not None:
            out["latency_ms"].append(latency)
    return out


def ask(service, method, texts, conversation, top):
    """The method's top-10 rows for the dialog so far, every item's score, the conversation id
    and the service's wall-clock latency in ms (None for (b), which has no service turn).

    The system sees only the shopper's texts and, for ``gan_pick``, the id of the item it
    showed on top itself ("use this as reference"); never the target.
    """
    if method == "text_only":
        joined = ", ".join(texts)
        sims = service.encoder.encode([joined]) @ service.ranker.title_vectors.T
        return sims[0].topk(10).indices.tolist(), sims[0], None, None
    pick = None
    if method.startswith("gan_pick") and len(texts) > 1:
        pick = str(service.catalog.table.at[top, "id"])
    started = time.perf_counter()  # the whole call: the pick's measuring and the lock included
    result = service.converse(conversation, texts[-1], pick=pick)
    latency = (time.perf_counter() - started) * 1000.0
    rows = [hit["row"] for hit in result.hits]
    return rows, all_scores(service, result), result.conversation["id"], latency


def one_shot(service, judge, keys, target, rng, turns) -> dict[str, list]:
    """(c): the target's full caption, once; the same values at every turn."""
    label, tone, fit, pattern = map(int, keys[target])
    started = time.perf_counter()
    result = service.search(caption(label, tone, fit, pattern, rng))
    latency = (time.perf_counter() - started) * 1000.0
    rows = [hit["row"] for hit in result.hits]
    values = {
        "success": judge.success_at(rows, target),
        "percentile": judge.percentile(all_scores(service, result), target),
        "done": judge.matches(rows[0], target),
    }
    return {key: [value] * turns for key, value in values.items()} | {"latency_ms": [latency]}


def cold_latency(service, keys, targets, seed: int, n: int = 200) -> dict[str, object]:
    """Per-turn service latency with the text-vector cache emptied before every turn (each
    caption encoded afresh): the opening, then "darker" on the picked top result."""
    service = service.with_query(text_cache_size=1)  # a turn's caption: drawn, then ranked
    totals, stages = [], {}
    for shopper, target in enumerate(targets[:n]):
        opening = first_turn(keys, target, random.Random(f"{seed}-{shopper}-opening"))
        conversation, top = None, None
        for text in (opening, "darker"):
            started = time.perf_counter()
            result = service.converse(conversation, text, pick=top)
            totals.append((time.perf_counter() - started) * 1000.0)
            conversation, top = result.conversation["id"], result.hits[0]["id"]
            for stage, ms in result.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
    return {
        "turns": len(totals),
        "latency_ms_p50": _quantile(totals, 0.5),
        "latency_ms_p90": _quantile(totals, 0.9),
        "stage_ms_p50": {stage: _quantile(ms, 0.5) for stage, ms in stages.items()},
    }


def summarise(dialogs: list[dict[str, list]], turns: int) -> dict[str, object]:
    """Per turn: success@10, mean rank percentile, share finished, latency p50/p90."""
    per_turn = []
    for t in range(turns):
        latencies = [d["latency_ms"][t] for d in dialogs if len(d["latency_ms"]) > t]
        per_turn.append(
            {
                "turn": t + 1,
                "success_at_10": float(np.mean([d["success"][t] for d in dialogs])),
                "mean_rank_percentile": float(np.mean([d["percentile"][t] for d in dialogs])),
                "finished": float(np.mean([d["done"][t] for d in dialogs])),
                "latency_ms_p50": _quantile(latencies, 0.5),
                "latency_ms_p90": _quantile(latencies, 0.9),
                "turns_taken": len(latencies),
            }
        )
    every = [ms for d in dialogs for ms in d["latency_ms"]]
    return {"per_turn": per_turn, "latency_ms_p50": _quantile(every, 0.5), "n_turns": len(every)}


def _quantile(values: list[float], q: float) -> float | None:
    return round(float(np.quantile(values, q)), 2) if values else None


def verdict(results: dict[str, dict], turns: int) -> dict[str, object]:
    """The issue's goal: (a) beats (b) from turn 2, success@10 >= 0.90 by turn 5, p50 <= 100 ms."""
    a, b = results["gan_pick"]["per_turn"], results["text_only"]["per_turn"]
    beats = [a[t]["success_at_10"] > b[t]["success_at_10"] for t in range(1, turns)]
    return {
        "a_beats_b_every_turn_from_2": all(beats),
        "a_success_at_10_by_last_turn": a[-1]["success_at_10"],
        "a_reaches_0_90": a[-1]["success_at_10"] >= 0.90,
        "latency_p50_ms": results["gan_pick"]["latency_ms_p50"],
        "latency_p50_within_100_ms": (results["gan_pick"]["latency_ms_p50"] or 1e9) <= 100.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="dialog_search", help="results/<name>.json")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--modify-generates", choices=("caption", "composed"), default=None,
        help="override search_app.query.modify_generates (compare the two)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    service, _ = load_service("conf")
    if args.modify_generates:
        service = service.with_query(modify_generates=args.modify_generates)
    if service.attribute_thresholds is None:
        raise SystemExit("no attribute thresholds (fashion_mnist_attributes): run data_processing")
    keys = catalog_keys(service)
    judge = Judge(keys)
    targets = random.Random(f"{args.seed}-targets").sample(range(len(keys)), args.shoppers)
    service.converse(None, "a coat")  # warm-up (encoder, title vectors)
    results, started, settings = {}, time.perf_counter(), service.query
    composed_service = service.with_query(modify_generates="composed")
    for method in args.methods.split(","):
        runner = composed_service if method.endswith("_composed") else service
        dialogs = []
        for shopper, target in enumerate(targets):
            # the shopper's choices come from one stream per shopper, whatever the method
            rng = random.Random(f"{args.seed}-{shopper}-statements")
            if method == "full_caption":
                dialogs.append(one_shot(runner, judge, keys, target, rng, args.turns))
                continue
            opening = first_turn(keys, target, random.Random(f"{args.seed}-{shopper}-opening"))
            dialogs.append(run_dialog(runner, judge, method, target, opening, args.turns, rng))
        results[method] = summarise(dialogs, args.turns)
        print(method, results[method]["per_turn"][-1], flush=True)
    uncached = cold_latency(service, keys, targets, args.seed)
    print("latency without the text cache", uncached, flush=True)
    payload = {
        "settings": {
            "shoppers": args.shoppers,
            "turns": args.turns,
            "seed": args.seed,
            "catalog_items": len(keys),
            "k": 10,
            "query": settings.model_dump(),
            "models": service.model_names,
        },
        "results": results,
        "latency_without_text_cache": uncached,
        "goal": verdict(results, args.turns) if {"gan_pick", "text_only"} <= set(results) else None,
        "wall_s": round(time.perf_counter() - started, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    save(args.name, payload)
    print(_table(results, args.turns))


def _table(results: dict[str, dict], turns: int) -> str:
    """The README table: success@10 / mean rank percentile / finished per turn and method."""
    lines = ["| method | " + " | ".join(f"turn {t + 1}" for t in range(turns)) + " |"]
    lines.append("|---" * (turns + 1) + "|")
    for method, result in results.items():
        cells = [
            f"{row['success_at_10']:.3f} / {row['mean_rank_percentile']:.1f} / {row['finished']:.2f}"
            for row in result["per_turn"]
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n(success@10 / mean rank percentile / share finished)"


if __name__ == "__main__":
    main()
