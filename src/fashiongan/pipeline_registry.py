"""Project pipelines, discovered from ``fashiongan.pipelines.<name>``."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: What a bare `kedro run` does: the main job, data then training.
DEFAULT_PIPELINES = ("data_processing", "train_gan")


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline package; ``__default__`` runs data processing then GAN training.

    Kedro 1.7 imports only the pipelines a run asks for, so ``__default__`` is built from what
    was found (all of them when the default itself is requested).

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in DEFAULT_PIPELINES if name in pipelines), Pipeline([])
    )
    return pipelines
