"""Apply the gate: find the champion, have it score the challenger's holdout, judge, move the
alias, and keep the decision and its evidence with the version."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import pandas as pd

from shipyard.errors import StoreError
from shipyard.model import Predictions
from shipyard.registry._catalog import VersionRecord
from shipyard.registry._registry import Registry
from shipyard.registry.gate._decision import (
    Champion,
    GateDecision,
    HoldoutPredictions,
    evaluate_gate,
)
from shipyard.spec import GateSpec

__all__ = ["ChampionScorer", "decide_promotion", "package_scorer"]

logger = logging.getLogger(__name__)

ChampionScorer = Callable[[VersionRecord], Predictions]
"""Scores the challenger's holdout rows with the champion (raising when it cannot)."""


def package_scorer(registry: Registry, holdout_inputs: pd.DataFrame) -> ChampionScorer:
    """A champion scorer that loads the champion's package (sha256-verified) and predicts the
    holdout's input rows with its sklearn pipeline, coerced to the champion's own signature.

    Args:
        registry: where the champion is registered.
        holdout_inputs: the holdout's input columns, in the challenger's row order.
    """

    def score(champion: VersionRecord) -> Predictions:
        return registry.load(champion.uri).predict(holdout_inputs)

    return score


def decide_promotion(
    registry: Registry,
    name: str,
    version: int,
    *,
    alias: str | None,
    metric: str,
    metrics: Mapping[str, float],
    policy: GateSpec,
    min_improvement: float = 0.0,
    holdout: HoldoutPredictions | None = None,
    score_champion: ChampionScorer | None = None,
    user: str,
    seed: int = 0,
) -> GateDecision:
    """Judge version ``version`` of ``name`` against the version holding ``alias``, promote it
    when it wins, and keep the decision and its evidence with the version.

    The champion scores the challenger's holdout only when ``policy.bootstrap`` asks for the
    paired comparison; when it cannot (its package fails to load, its signature lacks a
    column), the recorded metrics are compared instead and the evidence says why.

    Args:
        registry: the registry holding both versions.
        name: the model.
        version: the challenger (already registered).
        alias: the alias at stake (``registry.alias``); ``None`` decides and records nothing.
        metric: the primary metric.
        metrics: the challenger's holdout metrics.
        policy: ``registry.gate``.
        min_improvement: ``registry.min_improvement``.
        holdout: the challenger's holdout predictions, truth and sensitive columns.
        score_champion: predicts the same holdout rows with the champion, e.g.
            :func:`package_scorer`.
        user: who runs the gate (the alias history and the decision name them).
        seed: the bootstrap's seed.

    Returns:
        The decision (also recorded: :meth:`Registry.gate_decisions`).

    Raises:
        StoreError: the alias could not be moved, or the decision could not be recorded.
    """
    champion = registry.champion(name, alias) if alias is not None else None
    judged = None if champion is None else _champion(champion, policy, holdout, score_champion)
    decision = evaluate_gate(
        alias=alias,
        metric=metric,
        metrics=metrics,
        policy=policy,
        min_improvement=min_improvement,
        holdout=holdout,
        champion=judged,
        seed=seed,
    )
    if decision.alias is None:
        return decision
    if decision.promoted:
        registry.promote(name, version, decision.alias, moved_by=user, reason=decision.move_reason)
    try:
        registry.record_gate(
            name,
            version,
            alias=decision.alias,
            promoted=decision.promoted,
            reason=decision.reason,
            evidence=decision.evidence,
            decided_by=user,
        )
    except StoreError as exc:
        moved = f"; {name}@{decision.alias} now points at it" if decision.promoted else ""
        msg = f"the gate decision on {name} version {version} was not recorded{moved}: {exc}"
        raise type(exc)(msg) from exc
    return decision


def _champion(
    record: VersionRecord,
    policy: GateSpec,
    holdout: HoldoutPredictions | None,
    score: ChampionScorer | None,
) -> Champion:
    if not policy.bootstrap or holdout is None:
        return Champion(record.version, record.metrics)
    if score is None:
        return Champion(record.version, record.metrics, unscored="no champion scorer was given")
    try:
        predictions = score(record)
    except Exception as exc:  # any failure to load or run an old package: compare records
        logger.warning("champion %s could not score the holdout: %s", record.uri, exc)
        why = f"{type(exc).__name__}: {exc}"
        return Champion(record.version, record.metrics, unscored=why)
    if len(predictions) != len(holdout.y_true):
        why = f"it returned {len(predictions)} predictions for {len(holdout.y_true)} rows"
        return Champion(record.version, record.metrics, unscored=why)
    return Champion(record.version, record.metrics, predictions=predictions)
