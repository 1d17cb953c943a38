"""The promotion gate: does a new version take an alias from its champion, on what evidence?

A package of its own, not re-exported by :mod:`shipyard.registry`: judging needs the
evaluation stack (the paired bootstrap, fairlearn), and the model server imports the registry
to follow aliases without ever loading that stack. The recorded decisions are read through
:meth:`shipyard.registry.Registry.gate_decisions`, which needs nothing of it.

Example:
    >>> decision = decide_promotion(  # doctest: +SKIP
    ...     registry, "churn", 4, alias="production", metric="roc_auc",
    ...     metrics=holdout.metrics, policy=spec.registry.gate,
    ...     min_improvement=spec.registry.min_improvement,
    ...     holdout=HoldoutPredictions("binary", y_true, predictions, sensitive),
    ...     score_champion=package_scorer(registry, x_holdout), user="ana")
    >>> decision.promoted, decision.reason  # doctest: +SKIP
"""

from shipyard.registry.gate._decision import (
    Champion,
    GateDecision,
    HoldoutPredictions,
    evaluate_gate,
    fairness_evidence,
)
from shipyard.registry.gate._promotion import ChampionScorer, decide_promotion, package_scorer

__all__ = [
    "Champion",
    "ChampionScorer",
    "GateDecision",
    "HoldoutPredictions",
    "decide_promotion",
    "evaluate_gate",
    "fairness_evidence",
    "package_scorer",
]
