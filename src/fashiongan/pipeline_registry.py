"""Project pipelines, discovered from ``fashiongan.pipelines.<name>``, and the one composed here.

A pipeline package never imports another; what several pipelines share is joined here. FashionIQ
reuses the Fashion-MNIST conditional GAN's training as a namespaced template.
"""

import importlib

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: What a bare `kedro run` does: the main job, data and captions, then training.
DEFAULT_PIPELINES = ("data_processing", "captions", "train_gan")


def _create(name: str) -> Pipeline:
    return importlib.import_module(f"fashiongan.pipelines.{name}").create_pipeline()


def create_fashioniq_pipeline() -> Pipeline:
    """Ingestion, FashionIQ's items, the conditional training template and its evaluation.

    The template (``train_gan``'s :func:`create_conditional_training`) runs in the ``fashioniq``
    namespace: its datasets and parameters become ``fashioniq.*`` (``run_name`` stays the
    top-level one); the training items serve
    as both its captions and its composed queries.
    """
    train_gan = importlib.import_module("fashiongan.pipelines.train_gan.pipeline")
    training = Pipeline(
        train_gan.create_conditional_training(),
        namespace="fashioniq",
        inputs={
            "captions": "fashioniq.training_items",
            "composed_queries": "fashioniq.training_items",
        },
        parameters=train_gan.SHARED_PARAMETERS,
    )
    return _create("fashioniq_processing") + _create("fashioniq") + training


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline package; ``__default__`` runs data, captions, then GAN training.

    Kedro 1.7 imports only the pipelines a run asks for, so ``__default__`` is built from what
    was found (all of them when the default itself is requested), and ``fashioniq`` imports
    the packages it joins only when it is asked for.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    if "fashioniq" in pipelines:
        pipelines["fashioniq"] = create_fashioniq_pipeline()
    pipelines["__default__"] = sum(
        (pipelines[name] for name in DEFAULT_PIPELINES if name in pipelines), Pipeline([])
    )
    return pipelines
