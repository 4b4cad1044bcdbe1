"""Hand-written shopper queries (benchmarks/queries/, issue #29): this project's search against
two peers, per kind of query, side by side in one run.

Systems:
  * ``project``: the search service (``SearchService.search``, the app's and CLI's path);
  * ``title search``: the query encoded by the service's own sentence encoder, the catalog
    titles ranked by cosine (the peer a user would pick instead);
  * ``BM25``: keyword search over the titles (bm25s, English stop words and stemming).

Per kind and system: class precision@10 (share of the top 10 in the labelled class), attribute
precision@10 (share of the top 10 whose catalog-measured tone / fit / pattern equals each stated
one), negation respected (share of the top 10 with no excluded value), "no such item" (share of
the queries where the system says the catalog lacks the item: the score of the ``no_class``
queries, whose class precision is not defined; the peers never say it), refusals
(``SearchInputError``) and p50/p95 latency. A refused query or a short list counts its missing
places as misses. Attributes are measured on the catalog's thumbnails with the
``fashion_mnist_attributes`` cut points, as the catalog's own titles were.

Run from the project root after ``make search-index`` (one torch thread; about a minute):

    python benchmarks/shopper_queries.py [--split dev|test|all|unseen|unseen2|unseen3_dev|unseen3_test|unseen4|unseen5] [--out PATH]

``dev`` may be looked at while working; ``test`` is scored once, at the end. ``unseen`` is a
second set (``shopper_queries_unseen.jsonl``), written by an annotator who saw neither the code
nor the other queries, also scored once. ``unseen2`` (``shopper_queries_unseen2.jsonl``) is a
third, written later by a helper that had read neither the grammar nor the readers; scored once.
``unseen3_dev`` / ``unseen3_test`` (``shopper_queries_unseen3.jsonl``) is a fourth, written the same
way and split: its dev half may be looked at while working, its test half is scored once.
``unseen4`` and ``unseen5`` are a fifth and a sixth, written the same way, each scored once, whole.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from _common import RESULTS, machine

QUERIES = Path(__file__).resolve().parent / "queries" / "shopper_queries.jsonl"
SPLIT_FILES = {
    split: QUERIES.with_name(f"shopper_queries_{name}.jsonl")
    for split, name in (
        ("unseen", "unseen"),
        ("unseen2", "unseen2"),
        ("unseen3_dev", "unseen3"),
        ("unseen3_test", "unseen3"),
        ("unseen4", "unseen4"),
        ("unseen5", "unseen5"),
    )
}  # the other splits live in QUERIES
KINDS = (
    "unknown_item_words",
    "implied_item",
    "typos",
    "negation",
    "multi_attribute",
    "other_languages",
    "no_class",
    "grammar",
)
ATTRIBUTE_SLOTS = ("tone", "fit", "pattern")
SLOTS = ("class", *ATTRIBUTE_SLOTS)
SPLITS = ("dev", "test", "all", *SPLIT_FILES)


@dataclass(frozen=True)
class Answer:
    """What one system returned for one query.

    Attributes:
        rows: catalog rows, best first.
        refused: the system refused the query (no rows).
        no_item: the system said the catalog carries no such item.
        ms: wall time of the call in milliseconds.
    """

    rows: tuple[int, ...]
    refused: bool = False
    no_item: bool = False
    ms: float = 0.0


@dataclass(frozen=True)
class CatalogFacts:
    """Each catalog row's class and its measured attributes: what an answer is scored against."""

    labels: np.ndarray  # (N,) int
    attributes: dict[str, np.ndarray]  # tone / fit / pattern → (N,) int

    def value(self, slot: str, rows: Sequence[int]) -> np.ndarray:
        """The rows' values of ``slot`` ("class" or an attribute)."""
        column = self.labels if slot == "class" else self.attributes[slot]
        return column[np.asarray(rows, dtype=np.int64)]


System = Callable[[str, int], Answer]


# --- the project's search service: the only code that touches its API -----------------------
def load_project(conf: str = "conf"):
    """The search service as the app builds it, and the SearchInputError it raises."""
    try:
        from fashiongan.search.loading import load_service
    except ImportError:  # the search package's older layout
        from fashiongan.search.service import load_service
    from fashiongan.search.service import SearchInputError

    service, _ = load_service(conf)
    return service, SearchInputError


def project_system(service, refusal: type[Exception]) -> System:
    """The service's ``search(text, k)`` as a :data:`System`: refusals are answers too, and an
    intent naming items the catalog lacks (``outside``) or no hits means "no such item"."""

    def answer(text: str, k: int) -> Answer:
        started = time.perf_counter()
        try:
            result = service.search(text, k=k)
        except refusal:
            return Answer((), refused=True, ms=_ms_since(started))
        ms = _ms_since(started)
        outside = getattr(result.intent, "outside", ())
        rows = tuple(int(hit["row"]) for hit in result.hits)
        return Answer(rows, no_item=not rows or bool(outside), ms=ms)

    return answer


# --- the peers --------------------------------------------------------------------------------
def title_search(encoder, titles: Sequence[str]) -> System:
    """Peer (a): titles ranked by cosine to the query, both encoded by ``encoder`` (each distinct
    title once)."""
    unique, index = np.unique(np.asarray(titles, dtype=object).astype(str), return_inverse=True)
    vectors = F.normalize(encoder.encode(list(unique)).float(), dim=1)[torch.from_numpy(index)]

    def answer(text: str, k: int) -> Answer:
        started = time.perf_counter()
        query = F.normalize(encoder.encode([text]).float(), dim=1)[0]
        scores = (vectors @ query).numpy()
        return Answer(top_rows(scores, k), ms=_ms_since(started))

    return answer


def keyword_search(titles: Sequence[str]) -> System:
    """Peer (b): BM25 over the titles (English stop words, Snowball stemming)."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    corpus = bm25s.tokenize(list(titles), stopwords="en", stemmer=stemmer, show_progress=False)
    retriever.index(corpus, show_progress=False)

    def answer(text: str, k: int) -> Answer:
        started = time.perf_counter()
        tokens = bm25s.tokenize(
            [text], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
        )[0]
        scores = retriever.get_scores(tokens) if tokens else np.zeros(len(titles))
        return Answer(top_rows(scores, k), ms=_ms_since(started))

    return answer


def top_rows(scores: np.ndarray, k: int) -> tuple[int, ...]:
    """The k best rows, ties in catalog order."""
    return tuple(int(r) for r in np.argsort(-np.asarray(scores), kind="stable")[:k])


# --- scoring ----------------------------------------------------------------------------------
def read_queries(path: Path = QUERIES, split: str = "dev") -> list[dict]:
    """The labelled queries of ``split`` ("all": both halves), in file order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    queries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [q for q in queries if split == "all" or q["split"] == split]


def score_query(query: dict, answer: Answer, facts: CatalogFacts, k: int) -> dict:
    """One query's figures; None where the query does not ask for that figure.

    Returns:
        ``class_p`` (share of k in the labelled class), ``attribute_p`` (slot → share of k with
        the stated value), ``negation`` (share of k with no excluded value), ``no_item``,
        ``refused``, ``ms``.
    """
    rows = answer.rows[:k]
    class_p = None
    if query["class"] is not None:
        class_p = _share(facts.value("class", rows) == query["class"], k)
    attribute_p = {}
    if query["kind"] != "no_class":  # nothing should come back: nothing to grade
        attribute_p = {
            slot: _share(facts.value(slot, rows) == query[slot], k)
            for slot in ATTRIBUTE_SLOTS
            if query[slot] is not None
        }
    negation = None
    if any(query["exclude"].values()):
        hit = np.zeros(len(rows), dtype=bool)
        for slot, values in query["exclude"].items():
            hit |= np.isin(facts.value(slot, rows), values)
        negation = _share(~hit, k)
    return {
        "class_p": class_p,
        "attribute_p": attribute_p,
        "negation": negation,
        "no_item": answer.no_item,
        "refused": answer.refused,
        "ms": answer.ms,
    }


def summarise(scored: Sequence[dict], queries: Sequence[dict]) -> dict:
    """A group of queries' figures: means over the queries that ask for each (None if none)."""
    class_ps = [s["class_p"] for s in scored if s["class_p"] is not None]
    attribute_ps = [v for s in scored for v in s["attribute_p"].values()]
    negations = [s["negation"] for s in scored if s["negation"] is not None]
    no_class = [s["no_item"] for s, q in zip(scored, queries, strict=True) if q["class"] is None]
    ms = np.asarray([s["ms"] for s in scored])
    return {
        "queries": len(scored),
        "class_p10": _mean(class_ps),
        "class_queries": len(class_ps),
        "attribute_p10": _mean(attribute_ps),
        "attribute_pairs": len(attribute_ps),
        "attribute_p10_by_slot": {
            slot: _mean([s["attribute_p"][slot] for s in scored if slot in s["attribute_p"]])
            for slot in ATTRIBUTE_SLOTS
        },
        "negation_respected": _mean(negations),
        "negation_queries": len(negations),
        "no_item_share": _mean([float(v) for v in no_class]) if no_class else None,
        "no_item_any_share": _mean([float(s["no_item"]) for s in scored]),
        "refusals": sum(s["refused"] for s in scored),
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p95_ms": float(np.percentile(ms, 95)) if len(ms) else None,
    }


def evaluate(
    systems: dict[str, System], queries: Sequence[dict], facts: CatalogFacts, k: int = 10
) -> dict[str, dict[str, dict]]:
    """kind (and "all") → system → :func:`summarise` figures; each system warmed up once."""
    scored: dict[str, list[dict]] = {}
    for name, system in systems.items():
        system("a coat", k)  # first-call costs (caches, lazy loads) stay out of the timings
        scored[name] = [score_query(q, system(q["text"], k), facts, k) for q in queries]
    kinds = [kind for kind in KINDS if any(q["kind"] == kind for q in queries)]
    figures = {}
    for kind in [*kinds, "all"]:
        keep = [i for i, q in enumerate(queries) if kind in ("all", q["kind"])]
        group = [queries[i] for i in keep]
        figures[kind] = {
            name: summarise([rows[i] for i in keep], group) for name, rows in scored.items()
        }
    return figures


def measured_facts(labels: np.ndarray, thumbnails: torch.Tensor, thresholds: dict) -> CatalogFacts:
    """Class and tone / fit / pattern of each catalog item, measured on its uint8 thumbnail."""
    from fashiongan.attributes import assign
    from fashiongan.pixels import from_uint8

    gray = from_uint8(thumbnails).float().mean(1, keepdim=True)
    values = assign(gray, torch.tensor(np.asarray(labels, dtype=np.int64)), thresholds)
    return CatalogFacts(
        np.asarray(labels), {slot: values[slot].numpy() for slot in ATTRIBUTE_SLOTS}
    )


def table(figures: dict[str, dict[str, dict]]) -> str:
    """Markdown: one row a kind, each cell the systems' figures joined by " / "."""
    columns = (
        ("class P@10", "class_p10", "{:.2f}"),
        ("attribute P@10", "attribute_p10", "{:.2f}"),
        ("negation respected", "negation_respected", "{:.2f}"),
        ("says no such item", "no_item_share", "{:.2f}"),
        ("refusals", "refusals", "{:d}"),
        ("p50 ms", "p50_ms", "{:.1f}"),
        ("p95 ms", "p95_ms", "{:.1f}"),
    )
    systems = list(next(iter(figures.values())))
    lines = [
        "Cells: " + " / ".join(systems) + ".",
        "",
        "| kind | n | " + " | ".join(title for title, _, _ in columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for kind, by_system in figures.items():
        n = next(iter(by_system.values()))["queries"]
        cells = [
            " / ".join(_cell(by_system[s][key], fmt) for s in systems) for _, key, fmt in columns
        ]
        lines.append(f"| {kind} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _share(flags: np.ndarray, k: int) -> float:
    return float(np.count_nonzero(flags)) / k


def _mean(values: Sequence[float]) -> float | None:
    return float(statistics.fmean(values)) if values else None


def _ms_since(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000.0


def load_thresholds(conf: str = "conf") -> dict[str, torch.Tensor]:
    """The attribute cut points of the Kedro catalog entry ``fashion_mnist_attributes``."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    from fashiongan.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=conf, **CONFIG_LOADER_ARGS)
    return DataCatalog.from_config(loader["catalog"]).load("fashion_mnist_attributes")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=SPLITS, default="dev")
    parser.add_argument("--out", type=Path, help="default: results/shopper_queries_<split>.json")
    parser.add_argument("--conf", default="conf")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    started = time.perf_counter()
    try:
        service, refusal = load_project(args.conf)
        thresholds = load_thresholds(args.conf)
    except Exception as err:  # a missing model, index or cut points: say what, no traceback
        print(f"shopper_queries: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
        return 2
    titles = service.catalog.table["title"].astype(str).tolist()
    labels = service.catalog.table["label"].to_numpy(dtype=np.int64)
    facts = measured_facts(labels, service.catalog.thumbnails, thresholds)
    systems = {
        "project": project_system(service, refusal),
        "title search": title_search(service.encoder, titles),
        "BM25": keyword_search(titles),
    }
    queries = read_queries(SPLIT_FILES.get(args.split, QUERIES), args.split)
    figures = evaluate(systems, queries, facts)
    print(table(figures))
    out = args.out or RESULTS / f"shopper_queries_{args.split}.json"
    payload = {
        "benchmark": "shopper_queries",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": args.split,
        "catalog_items": len(titles),
        "machine": machine(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "wall_s": round(time.perf_counter() - started, 1),
        "figures": figures,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {out} ({payload['wall_s']} s, load {load_before[0]:.2f} → "
          f"{payload['load_after'][0]:.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
