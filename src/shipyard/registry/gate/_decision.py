"""The gate's rule, without a store: does a challenger take the alias, and on what evidence?

A challenger over a fairness bound stays out, champion or not. Otherwise the first version
takes the alias. Against a champion, with ``gate.bootstrap`` resamples and the champion's
predictions on the same holdout rows, the challenger must be better by ``min_improvement`` in
at least ``gate.confidence`` of the paired resamples; without them (``bootstrap: 0``, or the
champion could not score the holdout) the holdout metric is compared with the champion's
recorded one, a tie keeping the champion.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.evaluate import PROBA_METRICS, greater_is_better, paired_bootstrap
from shipyard.model import Predictions
from shipyard.spec import FairnessMeasure, GateSpec

__all__ = ["Champion", "GateDecision", "HoldoutPredictions", "evaluate_gate", "fairness_evidence"]

_MISSING = "(missing)"


@dataclass(frozen=True)
class HoldoutPredictions:
    """The challenger's predictions on the holdout, with the truth and the sensitive columns.

    Attributes:
        task: ``binary``, ``multiclass`` or ``regression``.
        y_true: the holdout's true labels or values.
        predictions: the challenger's predictions on those rows (labels after any tuned
            threshold; probabilities for classifiers).
        sensitive: the holdout's sensitive columns (``evaluation.sensitive``), row-aligned.
    """

    task: str
    y_true: np.ndarray
    predictions: Predictions
    sensitive: pd.DataFrame | None = None


@dataclass(frozen=True)
class Champion:
    """The version holding the alias, and what it can show.

    Attributes:
        version: its version number.
        metrics: its holdout metrics as recorded at its registration.
        predictions: its predictions on the challenger's holdout rows, when it could score them.
        unscored: why it could not (its package failed to load, its signature lacks a column).
    """

    version: int
    metrics: Mapping[str, float]
    predictions: Predictions | None = None
    unscored: str | None = None


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict.

    Attributes:
        promoted: whether the challenger takes the alias.
        alias: the alias at stake (``None``: no alias configured, nothing decided).
        reason: the verdict in one sentence, e.g. ``"kept version 2 as production: ..."``.
        evidence: what it rests on (JSON-ready): ``method`` (``first version``, ``point``,
            ``paired bootstrap``), ``metric``, ``challenger`` (its holdout score),
            ``champion`` (version, score, how it was scored), ``bootstrap``, ``fairness``.
        champion_version: the version that held the alias, if any.
    """

    promoted: bool
    alias: str | None
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    champion_version: int | None = None

    @property
    def move_reason(self) -> str:
        """The reason kept in the alias history (the verdict without ``promoted to ALIAS: ``)."""
        return self.reason.removeprefix(f"promoted to {self.alias}: ")


def evaluate_gate(
    *,
    alias: str | None,
    metric: str,
    metrics: Mapping[str, float],
    policy: GateSpec,
    min_improvement: float = 0.0,
    holdout: HoldoutPredictions | None = None,
    champion: Champion | None = None,
    seed: int = 0,
) -> GateDecision:
    """Judge a challenger (pure: no store; :func:`decide_promotion` applies the verdict).

    Args:
        alias: the alias at stake; ``None`` decides nothing.
        metric: the primary metric.
        metrics: the challenger's holdout metrics.
        policy: ``registry.gate``: bootstrap resamples, confidence, fairness bounds.
        min_improvement: ``registry.min_improvement``, in the metric's units.
        holdout: the challenger's holdout predictions (needed for the bootstrap and fairness).
        champion: the version holding the alias, ``None`` when there is none.
        seed: the resampling seed.

    Returns:
        The verdict and its evidence.
    """
    if alias is None:
        return GateDecision(False, None, "no alias configured", {"method": "none"})
    new = float(metrics[metric])
    evidence: dict[str, Any] = {
        "metric": metric,
        "greater_is_better": greater_is_better(metric),
        "challenger": new,
        "min_improvement": min_improvement,
        "required_confidence": policy.confidence if policy.bootstrap else None,
    }
    if policy.fairness:
        evidence["fairness"] = fairness_evidence(holdout, policy.fairness)
        breaches = [f"{k} {_breach(v)}" for k, v in evidence["fairness"].items() if _over(v)]
        if breaches:
            held = f" (kept version {champion.version})" if champion else ""
            reason = f"not promoted to {alias}: {'; '.join(breaches)}{held}"
            evidence["method"] = "fairness bound"
            evidence["champion"] = (
                {"version": champion.version, "recorded": champion.metrics.get(metric)}
                if champion
                else None
            )
            return GateDecision(False, alias, reason, evidence, _version(champion))
    if champion is None:
        evidence.update(method="first version", champion=None)
        reason = f"promoted to {alias}: first version for {alias} ({metric} {new:.4f})"
        return GateDecision(True, alias, reason, evidence)
    if policy.bootstrap and holdout is not None and champion.predictions is not None:
        return _paired(
            alias, metric, new, policy, min_improvement, holdout, champion, seed, evidence
        )
    note = _why_not_paired(policy, holdout, champion)
    return _point(alias, metric, new, min_improvement, champion, evidence, note)


def _version(champion: Champion | None) -> int | None:
    return champion.version if champion is not None else None


def _why_not_paired(
    policy: GateSpec, holdout: HoldoutPredictions | None, champion: Champion
) -> str | None:
    if not policy.bootstrap:
        return None
    if holdout is None:
        return "no holdout predictions were given"
    return champion.unscored or "the champion's predictions on this holdout were not given"


def _point(
    alias: str,
    metric: str,
    new: float,
    needed: float,
    champion: Champion,
    evidence: dict[str, Any],
    note: str | None,
) -> GateDecision:
    """Today's rule: the holdout metric against the champion's recorded one."""
    old = champion.metrics.get(metric)
    evidence["method"] = "point"
    evidence["champion"] = {
        "version": champion.version,
        "score": old,
        "scored_on": "its own holdout (recorded metrics)",
        **({"unscored": note} if note else {}),
    }
    tail = (
        f" (no paired bootstrap: the champion could not score this holdout: {note}; "
        "compared the recorded metrics)"
        if note
        else ""
    )
    if old is not None and math.isfinite(old):
        gain = (new - old) if greater_is_better(metric) else (old - new)
        evidence["difference"] = gain
        if gain <= 0 or gain < needed:
            why = "a tie keeps the champion" if gain == 0 else "the challenger must beat it"
            if needed > 0:
                why = f"needs an improvement of at least {needed}"
            reason = (
                f"kept version {champion.version} as {alias}: {metric} {new:.4f} vs "
                f"{old:.4f} ({why}){tail}"
            )
            return GateDecision(False, alias, reason, evidence, champion.version)
    was = f"{old:.4f}" if old is not None else "no value"
    reason = (
        f"promoted to {alias}: {metric} {new:.4f} vs {was} of champion version "
        f"{champion.version}{tail}"
    )
    return GateDecision(True, alias, reason, evidence, champion.version)


def _paired(
    alias: str,
    metric: str,
    new: float,
    policy: GateSpec,
    needed: float,
    holdout: HoldoutPredictions,
    champion: Champion,
    seed: int,
    evidence: dict[str, Any],
) -> GateDecision:
    """The challenger must be better by ``needed`` in ``confidence`` of the paired resamples."""
    assert champion.predictions is not None  # the caller checked
    mine, theirs, classes = _outputs(metric, holdout.predictions, champion.predictions)
    result = paired_bootstrap(
        holdout.y_true,
        mine,
        theirs,
        task=holdout.task,
        metric=metric,
        classes=classes,
        samples=policy.bootstrap,
        seed=seed,
        margin=needed,
        confidence=policy.confidence,
    )
    evidence["method"] = "paired bootstrap"
    evidence["bootstrap"] = result.to_dict()
    evidence["champion"] = {
        "version": champion.version,
        "score": result.champion,
        "recorded": champion.metrics.get(metric),
        "scored_on": f"the same {result.n_rows} holdout rows",
    }
    evidence["difference"] = result.difference
    promoted = result.n_valid > 0 and result.p_better >= policy.confidence
    by = f" by at least {needed}" if needed > 0 else ""
    level = f"{policy.confidence:.0%}"
    scores = f"{metric} {result.challenger:.4f} vs {result.champion:.4f}"
    rows = f"on the same {result.n_rows} holdout rows"
    spread = (
        f"improvement {result.difference:+.4f}, {level} CI "
        f"[{result.ci_low:+.4f}, {result.ci_high:+.4f}]"
    )
    odds = f"better{by} in {result.p_better:.1%} of {result.n_valid} paired resamples"
    if promoted:
        reason = (
            f"promoted to {alias}: {scores} of champion version {champion.version} {rows}; {odds} "
            f"(needs {level}); {spread}"
        )
    else:
        reason = (
            f"kept version {champion.version} as {alias}: {scores} {rows}; the challenger is only "
            f"{odds} (needs {level}); {spread}"
        )
    return GateDecision(promoted, alias, reason, evidence, champion.version)


def _outputs(
    metric: str, challenger: Predictions, champion: Predictions
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """What the bootstrap scores: probabilities (in the challenger's class order) for the
    probability metrics, else the labels the models predict (a tuned threshold counts)."""
    classes = list(challenger.classes) if challenger.classes is not None else None
    if metric not in PROBA_METRICS or classes is None:
        return np.asarray(challenger.labels), np.asarray(champion.labels), classes
    assert challenger.probabilities is not None  # classifiers have them
    return challenger.probabilities, _aligned(champion, classes), classes


def _aligned(predictions: Predictions, classes: list[str]) -> np.ndarray:
    """The champion's probabilities in the challenger's class order (0 for a class it lacks)."""
    proba = predictions.probabilities
    theirs = list(predictions.classes or ())
    if proba is None:
        msg = "the champion gave no class probabilities"
        raise ValueError(msg)
    if theirs == classes:
        return proba
    out = np.zeros((len(proba), len(classes)))
    for j, cls in enumerate(classes):
        if cls in theirs:
            out[:, j] = proba[:, theirs.index(cls)]
    return out


# --- fairness ------------------------------------------------------------------------------


def fairness_evidence(
    holdout: HoldoutPredictions | None, bounds: Mapping[FairnessMeasure, float]
) -> dict[str, dict[str, Any]]:
    """Each bounded fairness measure over each sensitive column of the holdout.

    fairlearn's ``demographic_parity_difference`` and ``equalized_odds_difference`` of the
    challenger's predicted labels, for binary classifiers (the last class is the positive one);
    a missing value is a group of its own. For other tasks, or without sensitive columns, the
    measure is reported as not applying and does not block.

    Returns:
        measure -> ``{"bound", "applies", "by_column", "worst", "column", "over", "note"}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for measure, bound in bounds.items():
        note = _not_applicable(holdout)
        entry: dict[str, Any] = {"bound": bound, "applies": note is None, "over": False}
        if note is not None:
            out[measure] = {**entry, "note": note}
            continue
        assert holdout is not None and holdout.sensitive is not None  # checked above
        by_column = {
            str(col): _measure(measure, holdout, holdout.sensitive[col])
            for col in holdout.sensitive.columns
        }
        column = max(by_column, key=lambda c: by_column[c])
        worst = by_column[column]
        out[measure] = {
            **entry,
            "by_column": by_column,
            "column": column,
            "worst": worst,
            "over": worst > bound,
        }
    return out


def _not_applicable(holdout: HoldoutPredictions | None) -> str | None:
    if holdout is None:
        return "not measured: no holdout predictions were given"
    if holdout.task != "binary":
        return f"does not apply to a {holdout.task} task (binary classification only)"
    if holdout.sensitive is None or holdout.sensitive.shape[1] == 0:
        return "not measured: no sensitive columns (set evaluation.sensitive)"
    return None


def _measure(measure: str, holdout: HoldoutPredictions, column: pd.Series) -> float:
    from fairlearn import metrics as fm  # the fairness stack loads only when bounds are set

    classes = holdout.predictions.classes or ()
    positive = classes[-1] if classes else "1"
    y = np.asarray([str(v) == positive for v in holdout.y_true], dtype=int)
    p = np.asarray([str(v) == positive for v in holdout.predictions.labels], dtype=int)
    groups = column.astype(object).where(column.notna(), _MISSING).astype(str).to_numpy()
    fn = getattr(fm, measure)
    with warnings.catch_warnings():  # an empty group's rate is 0/0: fairlearn warns, we note
        warnings.simplefilter("ignore")
        value = float(fn(y, p, sensitive_features=groups))
    return value if math.isfinite(value) else 0.0


def _over(entry: Mapping[str, Any]) -> bool:
    return bool(entry.get("over"))


def _breach(entry: Mapping[str, Any]) -> str:
    return f"{entry['worst']:.3f} across {entry['column']!r} is above the bound {entry['bound']}"
