"""The model comparison: flat metrics (DVC, MLflow), full details and ``reports/model_comparison.md``."""

from __future__ import annotations

import logging
import math
from typing import Any

import mlflow
import torch

from fashiongan.pipelines.evaluation.nodes import REFERENCE_ROWS, data_checksum, git_commit
from fashiongan.training.tracking import log_metrics

log = logging.getLogger(__name__)

ROW_TITLES = {"floor": "real train vs test (floor)", "noise": "uniform noise"}
QUERY_KINDS = {"text": "text queries", "composed": "composed queries (reference + modification)"}
METHOD_TITLES = {
    "image": "image only (reference's neighbours)",
    "text": "text only (BERT vs catalog captions)",
    "synthetic": "synthetic (generated image → embedding)",
    "fused": "synthetic + text (z-scored sum)",
}


def row_summary(
    entry: dict[str, Any], fid_inception: float | None, retrieval: dict[str, Any] | None
) -> dict[str, float | None]:
    """The flat numbers of one comparison row (a model, the floor or noise)."""
    out: dict[str, float | None] = {
        "fid_evaluator": entry.get("fid"),
        "kid_evaluator": entry.get("kid"),
        "kid_std_evaluator": entry.get("kid_std"),
        "precision": entry.get("precision"),
        "recall": entry.get("recall"),
        "density": entry.get("density"),
        "coverage": entry.get("coverage"),
        "fid_inception": fid_inception,
    }
    d = entry.get("discriminator") or {}
    if "accuracy" in d:
        out.update({f"d_{k}": d[k] for k in ("accuracy", "precision", "recall", "f1")})
        out.update({"d_loss": d["d_loss"], "g_loss": d["g_loss"]})
        out["d_accuracy_vs_real_train"] = d["floor"]["accuracy"]
        out["d_accuracy_vs_noise"] = d["noise"]["accuracy"]
    for key, value in (entry.get("training") or {}).items():
        out[f"train_{key}"] = value
    cond = entry.get("conditional_accuracy")
    if cond:
        out["conditional_accuracy"] = cond["mean"]
        out["conditional_accuracy_overall"] = cond["overall"]
        for label, value in enumerate(cond["per_class"]):
            out[f"conditional_accuracy_class_{label}"] = value
    attrs = entry.get("attribute_accuracy")
    if attrs:
        for key in ("tone", "fit", "pattern", "mean"):
            out[f"attribute_accuracy_{key}"] = attrs[key]
    for kind, methods in (retrieval or {}).items():
        if kind == "verdict":
            continue
        for method, scores in methods.items():
            for key, value in scores["overall"].items():
                out[f"retrieval_{kind}_{method}_{key}"] = value
    return out


def compile_report(
    model_metrics: dict[str, Any],
    inception: dict[str, Any],
    retrieval: dict[str, Any],
    model_input: dict[str, torch.Tensor],
    class_names: list[str],
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Assemble the comparison, log it to MLflow and write it as Markdown.

    Returns:
        ``metrics`` (compact, one flat dict a row: DVC metrics), ``details`` (everything,
        per class included) and the Markdown report.
    """
    run = {"git_commit": git_commit(), "data_checksum": data_checksum(model_input)}
    fid_inc = inception.get("models", {}) if inception.get("enabled") else {}
    retrieval_models = retrieval.get("models", {})
    rows = {
        name: row_summary(entry, fid_inc.get(name), retrieval_models.get(name))
        for name, entry in model_metrics["models"].items()
    }
    for ref in REFERENCE_ROWS:
        rows[ref] = row_summary(model_metrics[ref], inception.get(ref), None)
    settings = {
        "evaluator": model_metrics["settings"],
        "inception": {k: v for k, v in inception.items() if k not in ("models", *REFERENCE_ROWS)},
        "retrieval": retrieval.get("settings", {"note": retrieval.get("note")}),
    }
    verdicts = {name: m["verdict"] for name, m in retrieval_models.items()}
    metrics = {"run": run, "settings": settings, "rows": rows, "retrieval_verdicts": verdicts}
    details = {
        "run": run,
        "evaluator_metrics": model_metrics,
        "inception": inception,
        "retrieval": retrieval,
    }
    _log_to_mlflow(rows, run, settings)
    return metrics, details, markdown(metrics, model_metrics, retrieval, class_names)


def _log_to_mlflow(rows: dict[str, Any], run: dict[str, str], settings: dict[str, Any]) -> None:
    flat = {
        f"{row}/{key}": value
        for row, values in rows.items()
        for key, value in values.items()
        if isinstance(value, int | float) and math.isfinite(value)
    }
    log_metrics(flat, step=0)
    if mlflow.active_run() is not None:
        mlflow.set_tags(
            {
                "git_commit": run["git_commit"],
                "data_checksum": run["data_checksum"],
                "evaluation.extractor": settings["evaluator"]["extractor"],
                "evaluation.n_samples": str(settings["evaluator"]["n_samples"]),
                "evaluation.inception_n_samples": str(
                    settings["inception"].get("n_samples", "off")
                ),
            }
        )


def _fmt(value: Any, digits: int = 3, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value * scale:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(
    metrics: dict[str, Any],
    model_metrics: dict[str, Any],
    retrieval: dict[str, Any],
    class_names: list[str],
) -> str:
    """``reports/model_comparison.md``: one row a model beside the floor and noise rows."""
    rows, settings = metrics["rows"], metrics["settings"]
    ev, inc = settings["evaluator"], settings["inception"]
    models = [name for name in rows if name not in REFERENCE_ROWS]
    order = models + list(REFERENCE_ROWS)
    title = {name: f"**{name}**" for name in models} | ROW_TITLES
    inc_col = f"FID Inception (N={inc['n_samples']})" if inc.get("enabled") else "FID Inception"
    lines = [
        "# Model comparison",
        "",
        "Regenerated by `kedro run --pipelines=evaluation`; every generator under `models/` is "
        "scored the same way. Run: git commit `{}`, data checksum `{}`.".format(
            metrics["run"]["git_commit"], metrics["run"]["data_checksum"][:16]
        ),
        "",
        f"- Distribution metrics: **{ev['extractor']}** features, **N = {ev['n_samples']}** "
        f"generated images against as many {ev['reference']} (KID subsets of "
        f"{ev['kid_subset_size']}, k = {ev['prdc_k']} for precision/recall/density/coverage). "
        f"The evaluator's own test accuracy on these items: {_fmt(ev['evaluator_test_accuracy'])}.",
        (
            f"- Literature-comparable FID: **{inc['extractor']}**, **N = {inc['n_samples']}** "
            "(biased upwards at small N: compare only at equal N)."
            if inc.get("enabled")
            else f"- Inception FID not computed: {inc.get('note')}"
        ),
        "- Floor: real training images scored as if generated (what a perfect generator "
        "reaches at this N); noise: uniform noise images.",
        "",
        "## Summary",
        "",
    ]
    lines += _table(
        ["model", "FID eval ↓", "KID eval ×10³ ↓", "precision", "recall", "density",
         "coverage", inc_col + " ↓", "D accuracy", "D F1", "cond. accuracy",
         "attribute accuracy", "synthetic R@10 (composed)"],
        [
            [
                title[name],
                _fmt(r["fid_evaluator"], 2),
                _fmt(r["kid_evaluator"], 2, 1e3),
                _fmt(r["precision"]),
                _fmt(r["recall"]),
                _fmt(r["density"]),
                _fmt(r["coverage"]),
                _fmt(r["fid_inception"], 1),
                _fmt(r.get("d_accuracy")),
                _fmt(r.get("d_f1")),
                _fmt(r.get("conditional_accuracy")),
                _fmt(r.get("attribute_accuracy_mean")),
                _fmt(r.get("retrieval_composed_synthetic_recall_at_10")),
            ]
            for name in order
            for r in [rows[name]]
        ],
    )  # fmt: skip
    lines += [
        "",
        "Conditional and attribute accuracy exist for conditional models only (an unconditional "
        "model is not asked for a class); their floor row scores real test items against their "
        "own captions (attribute accuracy 1 by construction), the noise row noise images against "
        "the same captions (chance: class 0.1, tone 1/3, fit 1/3, pattern 1/2).",
        "",
        "## Discriminators (held-out: test images = real, generated = fake)",
        "",
    ]
    d_rows = [
        [
            title[name],
            d["loss"],
            _fmt(d["accuracy"]), _fmt(d["precision"]), _fmt(d["recall"]), _fmt(d["f1"]),
            _fmt(d["d_loss"]), _fmt(d["g_loss"]),
            _fmt(rows[name].get("train_final_d_loss")), _fmt(rows[name].get("train_final_g_loss")),
            _fmt(d["floor"]["accuracy"]), _fmt(d["noise"]["accuracy"]),
        ]
        for name in models
        if "accuracy" in (d := model_metrics["models"][name].get("discriminator") or {})
    ]  # fmt: skip
    lines += (
        _table(
            [
                "model",
                "loss",
                "accuracy",
                "precision",
                "recall",
                "F1",
                "D loss",
                "G loss",
                "final train D loss",
                "final train G loss",
                "acc. real-train-as-fake (floor)",
                "acc. noise-as-fake",
            ],
            d_rows,
        )  # fmt: skip
        if d_rows
        else ["No model has a discriminator."]
    )
    lines += [
        "",
        "A discriminator that generalises scores 0.5 accuracy in the floor column (it cannot "
        "tell real test from real training images); far above 0.5 means it memorised the "
        "training set.",
        "",
        "## Conditional accuracy per class (evaluator's class = requested class)",
        "",
    ]
    cond_rows = [n for n in order if rows[n].get("conditional_accuracy") is not None]
    short = [c.split("/")[0] for c in class_names]
    lines += _table(
        ["model", *short, "mean"],
        [
            [title[n]]
            + [_fmt(rows[n].get(f"conditional_accuracy_class_{i}")) for i in range(len(short))]
            + [_fmt(rows[n]["conditional_accuracy"])]
            for n in cond_rows
        ],
    )
    lines += ["", "## Attribute accuracy (caption grammar's measures on generated images)", ""]
    lines += _table(
        ["model", "tone", "fit", "pattern", "mean"],
        [
            [title[n]] + [_fmt(rows[n].get(f"attribute_accuracy_{k}")) for k in ("tone", "fit", "pattern", "mean")]
            for n in cond_rows
        ]
        + [["chance", "0.333", "0.333", "0.500", "0.389"]],
    )  # fmt: skip
    lines += ["", "## Retrieval (catalog: Fashion-MNIST test set)", ""]
    lines += _retrieval_section(retrieval, short)
    return "\n".join(lines) + "\n"


def _retrieval_section(retrieval: dict[str, Any], short: list[str]) -> list[str]:
    if not retrieval.get("models"):
        return [retrieval.get("note", "No retrieval results.")]
    s = retrieval["settings"]
    map_key = f"map_at_{s['map_k']}"
    lines = [
        f"{s['n_queries']} queries with targets drawn from the catalog ({s['n_catalog']} items); "
        f"relevant = {s['relevance']} (on average {s['mean_relevant_per_query']:.1f} items a "
        f"query). Synthetic queries average the embeddings of {s['n_images_per_query']} "
        f"generated images. Recall@K = share of queries with a relevant item in the top K; "
        f"mAP@{s['map_k']}.",
        "",
    ]
    for name, model in retrieval["models"].items():
        lines += [f"### {name}", ""]
        table_rows = []
        for kind, kind_title in QUERY_KINDS.items():
            for method, scores in model[kind].items():
                o = scores["overall"]
                table_rows.append(
                    [kind_title, METHOD_TITLES[method]]
                    + [_fmt(o[f"recall_at_{k}"]) for k in s["ks"]]
                    + [_fmt(o[map_key])]
                )
        lines += _table(
            ["queries", "method", *[f"R@{k}" for k in s["ks"]], f"mAP@{s['map_k']}"], table_rows
        )
        lines += ["", verdict_sentence(name, model["verdict"]), ""]
        k_mid = sorted(s["ks"])[len(s["ks"]) // 2]
        lines += [f"Per class (target's class), R@{k_mid} of composed queries:", ""]
        per_class_rows = []
        for method, scores in model["composed"].items():
            per = scores["per_class"]
            per_class_rows.append(
                [METHOD_TITLES[method]]
                + [_fmt(per.get(str(i), {}).get(f"recall_at_{k_mid}")) for i in range(len(short))]
            )
        lines += _table(["method", *short], per_class_rows) + [""]
    return lines


def verdict_sentence(name: str, verdict: dict[str, Any]) -> str:
    """The report's plain-words answer: does the synthetic query beat both baselines?"""
    parts = []
    for kind, baselines in (("composed", "image-only and text-only"), ("text", "text-only")):
        if verdict[f"{kind}_synthetic_beats_baselines"]:
            parts.append(
                f"on {kind} queries the synthetic query **beats** the {baselines} baselines"
            )
        else:
            losers = ", ".join(verdict[f"{kind}_not_beaten_by_synthetic"])
            parts.append(
                f"on {kind} queries the synthetic query **does not beat** the {baselines} "
                f"baselines (not above: {losers})"
            )
    fused = [kind for kind in ("composed", "text") if verdict.get(f"{kind}_fused_beats_baselines")]
    parts.append(
        "the fused (synthetic + text) query beats them on "
        + (" and ".join(f"{kind} queries" for kind in fused) if fused else "neither kind")
    )
    return f"**{name}**: " + "; ".join(parts) + f" (criterion: {verdict['criterion']})."
