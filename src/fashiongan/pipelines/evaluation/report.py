"""The model comparison: flat metrics (DVC, MLflow), full details and ``reports/model_comparison.md``.

The numbers come from the evaluation library; this module flattens them into one row a model,
records which data produced them (the code's commit is the MLflow run's tag), and lays them out
with ``evaluation.md.j2``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from fashiongan.evaluation.scoring import REFERENCE_ROWS
from fashiongan.reporting import render
from fashiongan.training.tracking import metric_records

ROW_TITLES = {"floor": "real train vs test (floor)", "noise": "uniform noise"}
QUERY_TITLES = {"text": "text queries", "composed": "composed queries (reference + modification)"}
METHOD_TITLES = {
    "image": "image only (reference's neighbours)",
    "text": "text only (BERT vs catalog captions)",
    "synthetic": "synthetic (generated image → embedding)",
    "fused": "synthetic + text (z-scored sum)",
}


def data_checksum(model_input: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the model-input tensors (names, shapes, dtypes, bytes), keys sorted."""
    digest = hashlib.sha256()
    for key in sorted(model_input):
        tensor = model_input[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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


def comparison(
    model_metrics: dict[str, Any],
    inception: dict[str, Any],
    retrieval: dict[str, Any],
    run: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``metrics`` (compact, one flat dict a row: DVC metrics; the same rows as a ``table``
    list: DVC plots) and ``details`` (everything, per class included) of one evaluation run."""
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
    metrics = {
        "run": run,
        "settings": settings,
        "rows": rows,
        "table": plot_table(rows),
        "retrieval_verdicts": verdicts,
    }
    details = {
        "run": run,
        "evaluator_metrics": model_metrics,
        "inception": inception,
        "retrieval": retrieval,
    }
    return metrics, details


def plot_table(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as a list, ``model`` first, for ``dvc plots`` (which reads lists of records, not
    dicts of rows). Every record has every key (None where a row lacks one): DVC skips a list
    whose records differ in keys."""
    keys = list(dict.fromkeys(key for row in rows.values() for key in row))
    return [{"model": name, **{key: row.get(key) for key in keys}} for name, row in rows.items()]


def mlflow_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Every finite row value as ``<row>/<metric>`` at step 0, in the form kedro-mlflow's
    ``MlflowMetricsHistoryDataset`` saves."""
    rows = metrics["rows"]
    return metric_records(
        {f"{row}/{k}": v for row, values in rows.items() for k, v in values.items()}
    )


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


def markdown(
    metrics: dict[str, Any],
    model_metrics: dict[str, Any],
    retrieval: dict[str, Any],
    champions: dict[str, Any],
    class_names: list[str],
) -> str:
    """``reports/model_comparison.md``: one row a model beside the floor and noise rows."""
    rows = metrics["rows"]
    models = [name for name in rows if name not in REFERENCE_ROWS]
    order = models + list(REFERENCE_ROWS)
    discriminators = [
        (name, d)
        for name in models
        if "accuracy" in (d := model_metrics["models"][name].get("discriminator") or {})
    ]
    retrieval_settings = retrieval.get("settings", {})
    ks = retrieval_settings.get("ks", [])
    return render(
        "evaluation.md.j2",
        run=metrics["run"],
        evaluator=metrics["settings"]["evaluator"],
        inception=metrics["settings"]["inception"],
        rows=rows,
        models=models,
        order=order,
        titles={name: f"**{name}**" for name in models} | ROW_TITLES,
        discriminators=discriminators,
        conditional_rows=[n for n in order if rows[n].get("conditional_accuracy") is not None],
        short_names=[c.split("/")[0] for c in class_names],
        retrieval=retrieval,
        k_middle=sorted(ks)[len(ks) // 2] if ks else None,
        recall_headers=[f"R@{k}" for k in ks],
        verdicts={
            name: verdict_sentence(name, model["verdict"])
            for name, model in retrieval.get("models", {}).items()
        },
        query_titles=QUERY_TITLES,
        method_titles=METHOD_TITLES,
        champions=champions,
    )
