"""Alert signals and rules: what a check measured, and which rules it breaks.

A check yields a few numbers worth watching (:func:`alert_signals`); ``monitoring.alerts.rules``
bound them (:class:`~shipyard.spec.AlertRuleSpec`); :func:`evaluate_rules` says which rules
fire. Opening and resolving incidents, and notifying, is the monitoring service's job: this
module only computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shipyard.monitor._drift import DriftReport
from shipyard.monitor._performance import PerformanceReport
from shipyard.spec import AlertRuleSpec

__all__ = ["RuleOutcome", "alert_signals", "evaluate_rules", "share_change"]


@dataclass(frozen=True)
class RuleOutcome:
    """One rule against one check.

    Attributes:
        rule: the rule.
        value: the signal's value (``None``: the check could not measure it, e.g. a metric's
            drop with no holdout value; the rule is then neither firing nor resolved).
        firing: whether the rule fires (``None`` when there is no value).
    """

    rule: AlertRuleSpec
    value: float | None
    firing: bool | None


def alert_signals(
    inputs: DriftReport,
    predictions: DriftReport | None = None,
    performance: PerformanceReport | None = None,
    class_shares: tuple[Mapping[str, float], Mapping[str, float]] | None = None,
) -> dict[str, float]:
    """The signals a check measured.

    Args:
        inputs: the drift report of the model's inputs.
        predictions: the drift report of its predictions.
        performance: its metrics in the window against the holdout's.
        class_shares: each class's share of the predictions, in the reference and in the
            window (classifiers).

    Returns:
        ``drift_share``, ``missing_increase`` (the largest rise of a column's missing share),
        ``prediction_drift_share``, ``prediction_share_change`` (the largest move of a class's
        share) and ``<metric>_drop`` per metric with a holdout value and a window value.
    """
    signals = {"drift_share": inputs.share_drifted}
    if inputs.columns:
        signals["missing_increase"] = max(
            c.missing_current - c.missing_reference for c in inputs.columns
        )
    if predictions is not None and predictions.tested:
        signals["prediction_drift_share"] = predictions.share_drifted
    if class_shares is not None:
        signals["prediction_share_change"] = share_change(*class_shares)
    if performance is not None:
        for comparison in performance.metrics:
            drop = comparison.drop
            if drop is not None:
                signals[f"{comparison.metric}_drop"] = drop
    return signals


def share_change(reference: Mapping[str, float], current: Mapping[str, float]) -> float:
    """The largest absolute change of any class's share between two distributions."""
    classes = set(reference) | set(current)
    if not classes:
        return 0.0
    return max(abs(current.get(c, 0.0) - reference.get(c, 0.0)) for c in classes)


def evaluate_rules(
    rules: Sequence[AlertRuleSpec], signals: Mapping[str, float]
) -> list[RuleOutcome]:
    """Each rule's verdict on a check's signals."""
    outcomes = []
    for rule in rules:
        value = signals.get(rule.signal)
        firing = None if value is None else rule.fires(value)
        outcomes.append(RuleOutcome(rule, value, firing))
    return outcomes
