"""Typed parameter blocks: every block of ``conf/base/parameters_*.yml`` as a frozen model.

Defaults live only in the YAML files, so every field here is required: a key missing from the
configuration is an error, not a silent fallback. The networks read their ``model`` block as is:
each config in ``fashiongan.models`` subclasses it, adding only what the data fixes (image size,
text size), so a model key has this one home. Unknown keys are refused with the closest valid
name, wrong types and out-of-range values with the full dotted key. ``ConfigHook`` checks every
block before any work starts; Kedro then hands each node its blocks, built from its type hints.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

Count = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(gt=0)]
Weight = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Betas = tuple[Probability, Probability]
#: A non-empty list of sizes (layer widths, K values) and of texts (captions, names).
Sizes = Annotated[tuple[Count, ...], Field(min_length=1)]
Texts = Annotated[tuple[str, ...], Field(min_length=1)]
Device = Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")]
Threads = Count | None
Seed = NonNegative
#: Marks a field that says how long, how often or where a run goes, not what it trains:
#: checkpoint fingerprints (:func:`fingerprinted`) leave it out, so more epochs continue a run.
RUN_CONTROL = Field(json_schema_extra={"fingerprint": False})
#: A variant's name: a folder name under models/<family>/, so a lower-case slug.
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


class Block(BaseModel):
    """A parameter block: frozen, no unknown keys, no defaults (they live in YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RunName(RootModel[Slug]):
    """The top-level ``run_name``: the variant a run trains or evaluates (``default`` unless
    ``--params run_name=…``); its models go to ``models/<family>/<run_name>/``, so that a
    variant never overwrites another. A scalar, not a block."""

    model_config = ConfigDict(frozen=True)


class ConfigError(ValueError):
    """A parameter is missing, unknown, of the wrong type or out of range; the message is one line."""


# --- data_processing ------------------------------------------------------------------------


class FashionMNISTParams(Block):
    seed: Seed
    validation_fraction: Annotated[float, Field(gt=0, lt=1)]
    class_names: Annotated[tuple[str, ...], Field(min_length=2)]


# --- train_gan: baseline ----------------------------------------------------------------------


class MLPModel(Block):
    noise_dim: Count
    generator_hidden: Sizes
    discriminator_hidden: Sizes
    dropout: Probability
    leaky_slope: Weight
    image_size: Count
    channels: Count


#: A trainer's torch CPU threads: a count, or "auto": the cores free, rechecked while training.
TrainerThreads = Count | Literal["auto"]
#: The generator's weight average for sampling and saving: null or 0 = off.
EMADecay = Annotated[float, Field(ge=0, lt=1)] | None


class BaselineTraining(Block):
    seed: Seed
    device: Annotated[Device, RUN_CONTROL]
    num_threads: Annotated[TrainerThreads, RUN_CONTROL]
    iterations: Annotated[Count, RUN_CONTROL]
    batch_size: Count
    d_lr: Rate
    g_lr: Rate
    d_betas: Betas
    g_betas: Betas
    log_every: Annotated[Count, RUN_CONTROL]
    sample_every: Annotated[NonNegative, RUN_CONTROL]
    checkpoint_every: Annotated[Count, RUN_CONTROL]
    checkpoint_dir: Annotated[str | None, RUN_CONTROL]
    mlflow_prefix: Annotated[str, RUN_CONTROL]
    resume: Annotated[bool, RUN_CONTROL]
    model: MLPModel


class Figures(Block):
    seed: Seed
    n_samples: Count
    ncols: Count
    prefix: str
    title: str


class BaselineParams(Block):
    training: BaselineTraining
    figures: Figures


# --- train_gan: conditional (also FashionIQ's training) ----------------------------------------


class CaptionAttributes(Block):
    per_item: Count
    drop_prob: Probability
    phrasings_per_key: Count


class Captions(Block):
    seed: Seed
    attributes: CaptionAttributes


class Composed(Block):
    seed: Seed
    same_class_prob: Probability
    variants: Count


class TextEncoderParams(Block):
    model_name_or_path: str | None
    pooling: Literal["mean", "cls"]
    max_length: Count
    device: Device
    batch_size: Count
    trainable_top_layers: NonNegative
    head: Literal["none", "attention"]
    head_pools: Count


class FrozenTextEncoderParams(TextEncoderParams):
    """FashionIQ's encoder stays frozen: its evaluation encodes queries with the frozen BERT."""

    trainable_top_layers: Literal[0]
    head: Literal["none"]


class ConditionalModel(Block):
    stages: Count
    noise_dim: Count
    text_channels: Count
    noise_channels: Count
    text_code_dim: NonNegative
    g_channels: Count
    d_channels: Count
    embed_dim: Count
    minibatch_std: bool

    @model_validator(mode="after")
    def _code_within_noise(self) -> ConditionalModel:
        if self.text_code_dim > self.noise_dim:
            raise ValueError("text_code_dim is drawn from the noise: it must be at most noise_dim")
        return self


class EmbeddingParams(Block):
    width: Count
    dim: Count


class ConditionalTraining(Block):
    seed: Seed
    device: Annotated[Device, RUN_CONTROL]
    num_threads: Annotated[TrainerThreads, RUN_CONTROL]
    epochs: Annotated[Count, RUN_CONTROL]
    batch_size: Count
    loss: Literal["bce", "wgan-gp", "hinge"]
    real_label: Probability
    gp_lambda: Weight
    n_critic: Count
    g_lr: Rate
    d_lr: Rate
    g_betas: Betas
    d_betas: Betas
    e_lr: Rate
    text_lr: Rate
    text_head_lr: Rate
    triplet_margin: Weight
    triplet_weight: Weight
    diversity_weight: Weight
    aux_weight: Weight
    text_kl_weight: Weight
    image_drop: Probability
    ema_decay: EMADecay
    log_every: Annotated[Count, RUN_CONTROL]
    sample_columns: Annotated[Count, RUN_CONTROL]
    checkpoint_dir: Annotated[str | None, RUN_CONTROL]
    mlflow_prefix: Annotated[str, RUN_CONTROL]
    resume: Annotated[bool, RUN_CONTROL]
    model: ConditionalModel
    embedding: EmbeddingParams


class GridFigures(Block):
    seed: Seed
    ncols: Count
    prefix: str
    title: str


class ConditionalParams(Block):
    captions: Captions
    composed: Composed
    text_encoder: TextEncoderParams
    sample_captions: Texts
    training: ConditionalTraining
    figures: GridFigures


# --- train_evaluator --------------------------------------------------------------------------


class EvaluatorModel(Block):
    in_channels: Count
    image_size: Count
    n_classes: Count
    channels: Sizes
    convs_per_block: Sizes
    feature_dim: Count
    dropout: Probability


class EpochTraining(Block):
    """What every supervised model trained by ``training.epochs.fit_epochs`` is given."""

    seed: Seed
    device: Annotated[Device, RUN_CONTROL]
    epochs: Annotated[Count, RUN_CONTROL]
    batch_size: Count
    lr: Rate
    checkpoint_every_epochs: Annotated[Count, RUN_CONTROL]
    checkpoint_dir: Annotated[str | None, RUN_CONTROL]
    resume: Annotated[bool, RUN_CONTROL]


class EvaluatorTraining(EpochTraining):
    num_threads: Threads
    warmup_fraction: Probability
    weight_decay: Weight
    eval_batch_size: Count
    model: EvaluatorModel


class EvaluatorParams(Block):
    training: EvaluatorTraining


# --- evaluation -------------------------------------------------------------------------------


class InceptionParams(Block):
    enabled: bool
    path: str | None
    verify: bool
    n_samples: Count
    batch_size: Count


class RetrievalParams(Block):
    seed: Seed
    n_queries: Count
    n_images: Count
    same_class_prob: Probability
    ks: Sizes
    map_k: Count
    n_examples: NonNegative


class EvaluationFigures(Block):
    seed: Seed
    per_class: Count
    n_noise: Count
    interpolation_steps: Annotated[int, Field(ge=2)]
    interpolation_rows: Count
    noise_captions: Texts


class EvaluationParams(Block):
    seed: Seed
    device: Device
    num_threads: Threads
    batch_size: Count
    models: tuple[str, ...] | None
    n_samples: Count | None
    kid_subset_size: Count
    kid_subsets: Count
    prdc_k: Count
    discriminator_loss: dict[str, Literal["bce", "wgan-gp", "hinge"]]
    registered_models: tuple[Annotated[str, Field(pattern=r"^models:/[^/@]+(@[^/@]+|/\d+)$")], ...]
    promote_champion: bool
    inception: InceptionParams
    retrieval: RetrievalParams
    figures: EvaluationFigures


# --- autoencoders -----------------------------------------------------------------------------


class AutoencoderModel(Block):
    latent_dim: Count
    channels_hidden: Sizes
    image_size: Count
    channels: Count


class AutoencoderTraining(EpochTraining):
    model: AutoencoderModel


class Corruption(Block):
    gaussian: Weight
    masking: Probability


class DenoisingTraining(AutoencoderTraining):
    noise: Corruption


class VAETraining(AutoencoderTraining):
    beta: Weight


class AutoencoderEvaluation(Block):
    seed: Seed
    batch_size: Count
    psnr_cap_db: Rate


class AutoencoderFigures(Block):
    seed: Seed
    n_samples: Count
    ncols: Count
    projection_points: Count


class AutoencodersParams(Block):
    vanilla: AutoencoderTraining
    denoising: DenoisingTraining
    vae: VAETraining
    evaluation: AutoencoderEvaluation
    figures: AutoencoderFigures
    report_figures_dir: str


# --- classifier -------------------------------------------------------------------------------


class TitleNoise(Block):
    misleading: Probability
    drop_class_word: Probability
    shared_word: Probability
    attribute_drop: Probability
    brand: Probability
    filler: Probability


class Titles(Block):
    seed: Seed
    noise: TitleNoise


class TitleText(Block):
    min_count: Count
    max_len: Count


class ClassifierModel(Block):
    image_branch: Literal["small_cnn"]
    channels: Count
    cnn_channels: Sizes
    embedding_dim: Count
    lstm_hidden: Count
    fusion_hidden: Count
    dropout: Probability
    n_classes: Count


class ClassifierTraining(EpochTraining):
    model: ClassifierModel


class ClassifierReport(Block):
    examples_per_kind: NonNegative
    figures_dir: str


class ClassifierParams(Block):
    titles: Titles
    text: TitleText
    training: ClassifierTraining
    report: ClassifierReport


# --- FashionIQ --------------------------------------------------------------------------------


class FashionIQData(Block):
    root: str
    images_dir: str
    categories: Texts
    splits: Texts
    gallery_splits: Texts
    caption_joiner: str
    image_size: Count
    channels: Literal[1, 3]
    dtype: Literal["float16", "float32"]
    workers: Count


class TrainingItems(Block):
    identity_caption: str


class FashionIQEvaluation(Block):
    split: str
    ks: Sizes
    n_samples: Count
    fusion_weight: Probability
    text_ridge: Weight
    seed: Seed
    batch_size: Count
    device: Device
    mlflow_prefix: str
    n_examples: NonNegative
    example_columns: Count


class FashionIQParams(Block):
    data: FashionIQData
    training_items: TrainingItems
    text_encoder: FrozenTextEncoderParams
    sample_captions: Texts
    training: ConditionalTraining
    evaluation: FashionIQEvaluation


# --- search -----------------------------------------------------------------------------------


class SearchSource(Block):
    kind: Literal["fashion_mnist", "folder"]
    limit: Count | None
    images_dir: str
    csv: str


class IndexParams(Block):
    kind: Literal["auto", "flat", "ivf", "hnsw"]
    exact_max: Count
    large_kind: Literal["ivf", "hnsw"]
    nlist: Count | None
    nprobe: Count
    hnsw_m: Count
    ef_search: Count


class SearchEvaluation(Block):
    seed: Seed
    k: Count
    n_queries: Count
    n_images: Count
    threads: Threads
    examples: tuple[str, ...]


class SearchIndexParams(Block):
    source: SearchSource
    embed_batch_size: Count
    index: IndexParams
    evaluation: SearchEvaluation


class SearchDatasets(Block):
    embedder: str
    index: str
    catalog: str
    thumbnails: str
    attributes: str  # tone/fit/pattern cut points: what a picked or drawn reference measures
    title_vectors: str  # the catalog titles' text vectors (the fused ranking's text side)


class SearchQuery(Block):
    k: Count
    n_images: Count
    seed: Seed
    max_k: Count
    max_images: Count
    max_text_chars: Count
    max_words: Count
    text_cache_size: Count
    use_intent_caption: bool
    class_threshold: Probability
    attribute_threshold: Probability
    fuzzy_cutoff: Annotated[float, Field(ge=50, le=100)]
    reading_encoder: Literal["minilm", "multilingual"]  # multilingual: foreign words read too
    multilingual_cutoff: Probability
    implied_encoder: str  # a BERT name or folder ("bundled": all-MiniLM-L6-v2)
    fuse_text: bool
    class_boost: Weight
    attribute_boost: Weight
    exclude_penalty: Weight
    modify_generates: Literal["caption", "composed"]

    @model_validator(mode="after")
    def _defaults_within_limits(self) -> SearchQuery:
        if self.k > self.max_k or self.n_images > self.max_images:
            raise ValueError("k and n_images must not exceed max_k and max_images")
        return self


class SearchAppParams(Block):
    host: str
    port: Annotated[int, Field(ge=0, le=65535)]
    models: dict[str, str]
    datasets: SearchDatasets
    query: SearchQuery
    threads: Threads
    upload_max_mb: Rate
    max_conversations: Count
    api_max_batch: Count
    api_max_wait_ms: Annotated[float, Field(ge=0, le=1000)]


#: Every top-level block of the parameter files and its model.
BLOCKS: dict[str, type[Block] | type[RunName]] = {
    "run_name": RunName,
    "fashion_mnist": FashionMNISTParams,
    "baseline": BaselineParams,
    "conditional": ConditionalParams,
    "evaluator": EvaluatorParams,
    "evaluation": EvaluationParams,
    "autoencoders": AutoencodersParams,
    "classifier": ClassifierParams,
    "fashioniq": FashionIQParams,
    "search_index": SearchIndexParams,
    "search_app": SearchAppParams,
}


def _closest(name: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean `{match[0]}`?" if match else f"; valid keys: {', '.join(choices)}"


def _fields_at(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The valid keys of the block that ``path`` (below ``model``) points into."""
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _describe(block: str, model: type[Block], error: dict[str, Any]) -> str:
    """One phrase for one pydantic error, naming the full dotted key."""
    loc = tuple(part for part in error["loc"] if not str(part).startswith(("function-", "tuple[")))
    key = ".".join([block, *map(str, loc)])
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key" + _closest(str(loc[-1]), _fields_at(model, loc[:-1]))
    if error["type"] == "missing":
        return f"{key}: missing (every key is set in conf/base/parameters_*.yml)"
    return f"{key}: {error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"


def parse_block(name: str, values: Any) -> Block | RunName:
    """Build the typed block ``name`` from its YAML values.

    Raises:
        ConfigError: one line naming every bad key (unknown, missing, wrong type, out of range).
    """
    if name not in BLOCKS:
        raise ConfigError(f"{name}: unknown parameter block" + _closest(name, list(BLOCKS)))
    model = BLOCKS[name]
    try:
        return model.model_validate(values)
    except ValidationError as err:
        problems = [_describe(name, model, e) for e in err.errors()]
        raise ConfigError("; ".join(problems)) from None


def parse_parameters(
    params: dict[str, Any], blocks: set[str] | None = None
) -> dict[str, Block | RunName]:
    """Check the top-level keys, then build the ``blocks`` asked for (default: all present)."""
    for name in params:
        if name not in BLOCKS:
            raise ConfigError(f"{name}: unknown parameter block" + _closest(name, list(BLOCKS)))
    wanted = set(params) if blocks is None else blocks
    missing = sorted(wanted - set(params))
    if missing:
        raise ConfigError(f"{missing[0]}: missing parameter block (conf/base/parameters_*.yml)")
    return {name: parse_block(name, params[name]) for name in sorted(wanted)}


def _read_parameters(conf_source: str | Path, env: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for path in sorted(Path(conf_source, env).glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    return params


def load_parameters(
    conf_source: str | Path = "conf", env: str = "base"
) -> dict[str, Block | RunName]:
    """Every block of ``<conf_source>/<env>/parameters_*.yml``, typed (for scripts and tests)."""
    return parse_parameters(_read_parameters(conf_source, env))


def load_block(name: str, conf_source: str | Path = "conf", env: str = "base") -> Block:
    """The one typed block ``name`` of ``<conf_source>/<env>/parameters_*.yml``.

    Raises:
        ConfigError: the block is missing (no such files under ``conf_source``: not run from
            the project root) or one of its keys is bad.
    """
    return parse_parameters(_read_parameters(conf_source, env), {name})[name]


def _is_block(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _run_control(model: type[BaseModel]) -> dict[str, Any]:
    """``model_dump``'s ``exclude`` for the fields marked :data:`RUN_CONTROL`, at any depth."""
    excluded: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("fingerprint") is False:
            excluded[name] = True
        elif _is_block(field.annotation) and (inner := _run_control(field.annotation)):
            excluded[name] = inner
    return excluded


def fingerprinted(block: BaseModel) -> dict[str, Any]:
    """The block's JSON values less its :data:`RUN_CONTROL` fields: what shapes the trained
    weights, the part of a checkpoint's fingerprint the block gives."""
    return block.model_dump(mode="json", exclude=_run_control(type(block)))


def overridden(block: Block, **changes: Any) -> Block:
    """A copy of ``block`` with ``changes`` (dotted keys as ``a__b``), validated again."""
    values = block.model_dump()
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        target = values
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return type(block).model_validate(values)
