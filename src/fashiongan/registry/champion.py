"""The ``champion`` alias: the best registered version of each generator family.

The rule, as the evaluation report states it: the lowest evaluator FID wins; equal FIDs are
split by the higher conditional accuracy. A version trained in the ``smoke`` Kedro environment
(a few hundred iterations, to check the wiring) never takes ``champion`` from a full one: while
any full version is scored, or the current champion is a full one, smoke versions are not
candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ALIAS = "champion"
#: The Kedro environment whose runs are quick checks, never champions over full runs.
SMOKE_ENV = "smoke"
#: The model-version tag holding the generator's tensors' SHA-256 (safetensors metadata).
WEIGHTS_TAG = "fashiongan.tensors_sha256"
RULE = "lowest evaluator FID, then highest conditional accuracy; smoke runs never beat full ones"


@dataclass(frozen=True)
class Candidate:
    """A registered version with this evaluation's scores."""

    version: str
    model: str  # the evaluated row: conditional/tuned, or a models:/ URI
    fid_evaluator: float | None
    conditional_accuracy: float | None
    smoke: bool

    def rank(self) -> tuple[float, float]:
        """Smaller is better: FID (missing or NaN last), then minus conditional accuracy."""
        fid = self.fid_evaluator
        accuracy = self.conditional_accuracy
        return (
            fid if fid is not None and math.isfinite(fid) else math.inf,
            -accuracy if accuracy is not None and math.isfinite(accuracy) else 0.0,
        )


def pick(candidates: list[Candidate], current_is_full: bool) -> Candidate | None:
    """The version to alias ``champion`` (None: keep the current one, or there is none).

    Args:
        candidates: the family's scored versions.
        current_is_full: whether the family's current champion was trained outside smoke.
    """
    full = [c for c in candidates if not c.smoke]
    if full:
        return min(full, key=Candidate.rank)
    if current_is_full or not candidates:
        return None  # smoke versions only: a full champion stays
    return min(candidates, key=Candidate.rank)


def is_smoke(tags: dict[str, str]) -> bool:
    return tags.get("fashiongan.kedro_env") == SMOKE_ENV


def promote(client: Any, name: str, candidates: list[Candidate]) -> dict[str, Any]:
    """Set ``champion`` on ``name``'s best candidate; say what was decided and why."""
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(name, ALIAS)
    except MlflowException:
        current = None
    chosen = pick(candidates, current is not None and not is_smoke(current.tags))
    before = None if current is None else str(current.version)
    if chosen is None:
        reason = "only smoke versions scored: the full champion stays" if candidates else None
        return {"champion": before, "previous": before, "model": None, "reason": reason}
    client.set_registered_model_alias(name, ALIAS, chosen.version)
    for key in ("fid_evaluator", "conditional_accuracy"):
        value = getattr(chosen, key)
        if value is not None:
            client.set_model_version_tag(name, chosen.version, f"fashiongan.{key}", str(value))
    return {
        "champion": chosen.version,
        "previous": before,
        "model": chosen.model,
        "fid_evaluator": chosen.fid_evaluator,
        "conditional_accuracy": chosen.conditional_accuracy,
        "smoke": chosen.smoke,
        "reason": RULE,
    }


def promote_evaluated(
    client: Any, digests: dict[str, str], rows: dict[str, dict[str, Any]], families: tuple[str, ...]
) -> dict[str, Any]:
    """Alias ``champion`` in each family from this evaluation's rows.

    A row is a registered version when its generator's tensors have that version's SHA-256
    (:data:`WEIGHTS_TAG`, written at registration): a local ``models/<family>/<variant>/``
    folder or a ``models:/`` URI alike. Rows that match no version (never registered, or
    retrained since) are left out.

    Args:
        client: an ``MlflowClient`` on the project's store.
        digests: evaluated row → its generator's tensors' SHA-256.
        rows: evaluated row → its flat metrics (``fid_evaluator``, ``conditional_accuracy``).
        families: the families to decide (``baseline``, ``conditional``, ``vae``).

    Returns:
        family → the decision (version, previous version, the row, its scores, the rule).
    """
    from fashiongan.registry import registered_name

    decisions: dict[str, Any] = {}
    registered = {m.name for m in client.search_registered_models()}
    for family in families:
        name = registered_name(family)
        if name not in registered:
            continue
        by_digest: dict[str, Any] = {}  # the latest version of each set of weights
        versions = client.search_model_versions(f"name='{name}'")
        for version in sorted(versions, key=lambda v: int(v.version)):
            if digest := version.tags.get(WEIGHTS_TAG):
                by_digest[digest] = version
        candidates = [
            Candidate(
                version=str(by_digest[digest].version),
                model=row,
                fid_evaluator=rows[row].get("fid_evaluator"),
                conditional_accuracy=rows[row].get("conditional_accuracy"),
                smoke=is_smoke(by_digest[digest].tags),
            )
            for row, digest in sorted(digests.items())
            if digest in by_digest and row in rows
        ]
        decisions[family] = promote(client, name, candidates)
    return decisions
