"""The promotion gate: the pure rule (point, paired bootstrap, fairness bounds) and its
application to a registry (alias moves, recorded decisions, the champion that cannot score)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import shipyard.registry
import shipyard.registry.gate
from shipyard.data import ColumnSchema, Signature
from shipyard.model import Predictions
from shipyard.registry import ModelPackage, Registry, VersionRecord
from shipyard.registry.gate import (
    Champion,
    GateDecision,
    HoldoutPredictions,
    decide_promotion,
    evaluate_gate,
    package_scorer,
)
from shipyard.spec import GateSpec
from shipyard.store import Store

CLASSES = ("no", "yes")


def _holdout(n: int = 400, *, accuracy: float = 0.9, seed: int = 0) -> HoldoutPredictions:
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES, size=n).astype(object)
    right = rng.uniform(size=n) < accuracy
    labels = np.where(right, y, np.where(y == "yes", "no", "yes")).astype(object)
    p_yes = np.where(labels == "yes", 0.8, 0.2)
    return HoldoutPredictions("binary", y, _predictions(p_yes), None)


def _predictions(p_yes: np.ndarray) -> Predictions:
    return Predictions.from_probabilities(np.column_stack([1 - p_yes, p_yes]), CLASSES)


def _worse(holdout: HoldoutPredictions, share: float, seed: int = 1) -> Predictions:
    """The challenger's predictions with ``share`` of the rows flipped."""
    p = holdout.predictions.probabilities
    assert p is not None
    flip = np.random.default_rng(seed).uniform(size=len(p)) < share
    return _predictions(np.where(flip, 1 - p[:, 1], p[:, 1]))


def test_first_version_takes_the_alias() -> None:
    decision = evaluate_gate(
        alias="production", metric="f1", metrics={"f1": 0.8}, policy=GateSpec()
    )
    assert decision.promoted
    assert decision.reason == "promoted to production: first version for production (f1 0.8000)"
    assert decision.move_reason == "first version for production (f1 0.8000)"
    assert decision.evidence["method"] == "first version"


def test_no_alias_decides_nothing() -> None:
    decision = evaluate_gate(alias=None, metric="f1", metrics={"f1": 0.8}, policy=GateSpec())
    assert not decision.promoted and decision.reason == "no alias configured"


@pytest.mark.parametrize(
    ("new", "needed", "promoted", "words"),
    [
        (0.80, 0.0, False, "a tie keeps the champion"),
        (0.79, 0.0, False, "the challenger must beat it"),
        (0.81, 0.05, False, "needs an improvement of at least 0.05"),
        (0.81, 0.0, True, "f1 0.8100 vs 0.8000 of champion version 3"),
    ],
)
def test_point_rule_is_todays(new: float, needed: float, promoted: bool, words: str) -> None:
    decision = evaluate_gate(
        alias="production",
        metric="f1",
        metrics={"f1": new},
        policy=GateSpec(),
        min_improvement=needed,
        champion=Champion(3, {"f1": 0.80}),
    )
    assert decision.promoted is promoted and words in decision.reason
    assert decision.evidence["method"] == "point" and decision.champion_version == 3
    if not promoted:
        assert decision.reason.startswith("kept version 3 as production: f1")


def test_lower_is_better_metrics_point_the_right_way() -> None:
    decision = evaluate_gate(
        alias="production",
        metric="rmse",
        metrics={"rmse": 1.0},
        policy=GateSpec(),
        champion=Champion(1, {"rmse": 1.5}),
    )
    assert decision.promoted and decision.evidence["difference"] == 0.5


def test_paired_bootstrap_promotes_a_clearly_better_challenger() -> None:
    holdout = _holdout()
    champion = Champion(2, {"accuracy": 0.99}, predictions=_worse(holdout, 0.25))
    decision = evaluate_gate(
        alias="production",
        metric="accuracy",
        metrics={"accuracy": 0.9},
        policy=GateSpec(bootstrap=300, confidence=0.95),
        holdout=holdout,
        champion=champion,
    )
    # The champion's recorded 0.99 (another holdout) does not count: the same rows do.
    assert decision.promoted, decision.reason
    assert "on the same 400 holdout rows" in decision.reason
    assert "in 100.0% of 300 paired resamples (needs 95%)" in decision.reason
    ev = decision.evidence
    assert ev["method"] == "paired bootstrap" and ev["bootstrap"]["p_better"] == 1.0
    assert ev["champion"]["recorded"] == 0.99 and ev["champion"]["score"] < 0.9
    json.dumps(ev)


def test_paired_bootstrap_keeps_the_champion_when_the_gain_is_noise() -> None:
    holdout = _holdout(200)
    champion = Champion(2, {"roc_auc": 0.5}, predictions=_worse(holdout, 0.01))
    decision = evaluate_gate(
        alias="production",
        metric="roc_auc",
        metrics={"roc_auc": 0.9},
        policy=GateSpec(bootstrap=300, confidence=0.95),
        min_improvement=0.02,
        holdout=holdout,
        champion=champion,
    )
    assert not decision.promoted
    assert decision.reason.startswith("kept version 2 as production: roc_auc")
    assert "better by at least 0.02 in" in decision.reason
    assert decision.evidence["bootstrap"]["p_better"] < 0.95


def test_a_champion_that_could_not_score_falls_back_to_recorded_metrics() -> None:
    decision = evaluate_gate(
        alias="production",
        metric="f1",
        metrics={"f1": 0.85},
        policy=GateSpec(bootstrap=200),
        holdout=_holdout(),
        champion=Champion(4, {"f1": 0.8}, unscored="PredictionError: no column 'age'"),
    )
    assert decision.promoted
    assert "could not score this holdout: PredictionError: no column 'age'" in decision.reason
    assert decision.evidence["method"] == "point"
    assert decision.evidence["champion"]["unscored"] == "PredictionError: no column 'age'"


def _sensitive_holdout(bias: float, n: int = 600) -> HoldoutPredictions:
    rng = np.random.default_rng(5)
    group = rng.choice(["f", "m"], size=n)
    y = rng.choice(CLASSES, size=n).astype(object)
    # the model says "yes" much more often to one group
    p_yes = np.where(group == "m", 0.5 + bias, 0.5 - bias) + rng.uniform(-0.3, 0.3, size=n)
    p_yes = np.clip(p_yes, 0.01, 0.99)
    sensitive = pd.DataFrame(
        {"sex": group, "region": rng.choice(np.array(["n", "s", None], dtype=object), size=n)}
    )
    return HoldoutPredictions("binary", y, _predictions(p_yes), sensitive)


def test_a_challenger_over_a_fairness_bound_is_kept_out_even_as_first_version() -> None:
    decision = evaluate_gate(
        alias="production",
        metric="f1",
        metrics={"f1": 0.9},
        policy=GateSpec(fairness={"demographic_parity_difference": 0.1}),
        holdout=_sensitive_holdout(bias=0.2),
    )
    assert not decision.promoted
    assert decision.reason.startswith("not promoted to production: demographic_parity_difference")
    assert "across 'sex' is above the bound 0.1" in decision.reason
    fair = decision.evidence["fairness"]["demographic_parity_difference"]
    assert fair["column"] == "sex" and fair["over"] and set(fair["by_column"]) == {"sex", "region"}


def test_a_fair_challenger_passes_the_bound() -> None:
    decision = evaluate_gate(
        alias="production",
        metric="f1",
        metrics={"f1": 0.9},
        policy=GateSpec(
            fairness={"demographic_parity_difference": 0.3, "equalized_odds_difference": 0.3}
        ),
        holdout=_sensitive_holdout(bias=0.0),
    )
    assert decision.promoted
    fair = decision.evidence["fairness"]
    assert {k: v["over"] for k, v in fair.items()} == {
        "demographic_parity_difference": False,
        "equalized_odds_difference": False,
    }


def test_fairness_does_not_apply_beyond_binary_classification() -> None:
    holdout = HoldoutPredictions(
        "regression", np.zeros(3), Predictions(labels=np.zeros(3)), pd.DataFrame({"s": [1, 2, 3]})
    )
    decision = evaluate_gate(
        alias="production",
        metric="rmse",
        metrics={"rmse": 1.0},
        policy=GateSpec(fairness={"equalized_odds_difference": 0.1}),
        holdout=holdout,
    )
    assert decision.promoted
    fair = decision.evidence["fairness"]["equalized_odds_difference"]
    assert not fair["applies"] and "regression task" in fair["note"]


# --- applied to a registry ---------------------------------------------------------------

SIG = Signature(
    inputs=(ColumnSchema(name="x", kind="number", dtype="float64", nullable=False),),
    classes=CLASSES,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(root=tmp_path / "sy") as opened:
        yield opened


def _package(flip: bool = False) -> ModelPackage:
    x = pd.DataFrame({"x": np.linspace(-3, 3, 60)})
    y = np.where((x["x"] > 0) != flip, "yes", "no")
    model = make_pipeline(LogisticRegression()).fit(x, y)
    return ModelPackage(model, SIG, "binary", {"metrics": {"accuracy": 1.0 if not flip else 0.0}})


def _decide(
    registry: Registry, version: int, holdout: HoldoutPredictions, **kw: Any
) -> GateDecision:
    args: dict[str, Any] = {
        "alias": "production",
        "metric": "accuracy",
        "metrics": {"accuracy": 1.0},
        "policy": GateSpec(bootstrap=200),
        "holdout": holdout,
        "user": "ana",
        **kw,
    }
    return decide_promotion(registry, "m", version, **args)


def _model_holdout(registry: Registry, version: int) -> tuple[pd.DataFrame, HoldoutPredictions]:
    x = pd.DataFrame({"x": np.linspace(-2.95, 2.95, 100)})
    y = np.where(x["x"] > 0, "yes", "no").astype(object)
    predictions = registry.load(f"models:/m/{version}").predict(x)
    return x, HoldoutPredictions("binary", y, predictions)


def test_decide_promotion_moves_the_alias_and_records_the_evidence(store: Store) -> None:
    registry = Registry(store)
    registry.register("m", _package(flip=True))
    registry.promote("m", 1, moved_by="ann")
    registry.register("m", _package())
    x, holdout = _model_holdout(registry, 2)
    decision = _decide(registry, 2, holdout, score_champion=package_scorer(registry, x))
    assert decision.promoted and decision.evidence["method"] == "paired bootstrap"
    champion = registry.champion("m", "production")
    assert champion is not None and champion.version == 2
    assert registry.alias_history("m", "production")[-1].reason == decision.move_reason
    (record,) = registry.gate_decisions("m", 2)
    assert (record.alias, record.promoted, record.decided_by) == ("production", True, "ana")
    assert record.reason == decision.reason
    assert record.evidence["bootstrap"]["p_better"] == 1.0
    assert registry.gate_decisions("m", 1) == []


def test_a_champion_that_fails_to_load_is_compared_by_its_record(store: Store) -> None:
    registry = Registry(store)
    registry.register("m", _package(flip=True))
    registry.promote("m", 1, moved_by="ann")
    registry.register("m", _package())
    _, holdout = _model_holdout(registry, 2)

    def broken(champion: VersionRecord) -> Predictions:
        raise ModuleNotFoundError("No module named 'oldsklearn'")

    decision = _decide(registry, 2, holdout, score_champion=broken)
    assert decision.promoted and decision.evidence["method"] == "point"
    assert "ModuleNotFoundError: No module named 'oldsklearn'" in decision.reason
    (record,) = registry.gate_decisions("m")
    assert "compared the recorded metrics" in record.reason


def test_a_kept_out_challenger_is_recorded_without_moving_the_alias(store: Store) -> None:
    registry = Registry(store)
    registry.register("m", _package())
    registry.promote("m", 1, moved_by="ann")
    registry.register("m", _package())
    x, holdout = _model_holdout(registry, 2)
    decision = _decide(registry, 2, holdout, score_champion=package_scorer(registry, x))
    assert not decision.promoted  # the same model: never better
    champion = registry.champion("m", "production")
    assert champion is not None and champion.version == 1
    (record,) = registry.gate_decisions("m", 2)
    assert not record.promoted and record.reason.startswith("kept version 1 as production")


def test_the_gate_is_its_own_package_so_the_server_stays_light() -> None:
    assert "GateRecord" in shipyard.registry.__all__
    assert "decide_promotion" not in shipyard.registry.__all__
    for name in shipyard.registry.gate.__all__:
        assert (
            getattr(shipyard.registry.gate, name).__module__.startswith("shipyard.registry.gate._")
            or name == "ChampionScorer"
        )
