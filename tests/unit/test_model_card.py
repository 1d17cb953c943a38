"""The model card: intervals, fairness, association tests, explanations, and the deadline."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fm
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from shipyard.data import ColumnSchema, Signature
from shipyard.evaluate import (
    FAIRNESS_MEASURES,
    KEY_METRICS,
    ModelCard,
    bootstrap_intervals,
    build_model_card,
    evaluate_predictions,
    fold_intervals,
    slice_metrics,
)
from shipyard.evaluate import _card as card_module
from shipyard.evaluate._association import profile_features
from shipyard.spec import EvaluationSpec
from shipyard.train import make_pipeline

FAST = EvaluationSpec(bootstrap=200)


def _binary_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(["no", "yes"], n)
    p = np.clip((y == "yes") * 0.35 + rng.random(n) * 0.65, 0, 1)
    return y, np.where(p > 0.5, "yes", "no"), np.column_stack([1 - p, p])


# --- bootstrap and fold intervals ---------------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_intervals_contain_the_estimate_and_narrow_with_more_rows(task: str) -> None:
    widths = []
    for n in (200, 5000):
        if task == "binary":
            y, pred, proba = _binary_rows(n)
            classes: list[str] | None = ["no", "yes"]
        else:
            rng = np.random.default_rng(1)
            y = rng.normal(size=n)
            pred, proba, classes = y + rng.normal(scale=0.5, size=n), None, None
        metrics = KEY_METRICS[task]
        ci = bootstrap_intervals(
            task, y, pred, proba, classes, metrics=metrics, n_resamples=500, confidence=0.95, seed=0
        )
        exact = evaluate_predictions(task, y, pred, proba, classes).metrics
        assert set(ci) == set(metrics)
        for name, interval in ci.items():
            assert interval.estimate == pytest.approx(exact[name], abs=1e-9), name
            assert interval.low <= interval.estimate <= interval.high, name
            assert interval.low < interval.high, name
        main = "roc_auc" if task == "binary" else "rmse"
        widths.append(ci[main].high - ci[main].low)
    assert widths[1] < widths[0] / 3  # sqrt(25) = 5 times narrower, give or take


def test_a_past_deadline_stops_the_bootstrap_after_its_minimum() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=20_000)  # 100 resamples per block of indices
    kwargs: dict[str, Any] = {"metrics": ["mae"], "n_resamples": 2_000, "confidence": 0.9}
    full = bootstrap_intervals("regression", y, y + 0.1, None, None, seed=1, **kwargs)
    cut = bootstrap_intervals(
        "regression", y, y + 0.1, None, None, seed=1, deadline=0.0, min_resamples=300, **kwargs
    )
    assert full["mae"].n == 2_000
    assert cut["mae"].n == 300  # three blocks, then the deadline (long past) stops it
    assert cut["mae"].estimate == full["mae"].estimate
    assert cut["mae"].low <= cut["mae"].estimate <= cut["mae"].high


def test_intervals_leave_out_what_they_cannot_score() -> None:
    y, pred, _ = _binary_rows(100)
    ci = bootstrap_intervals(
        "binary",
        y,
        pred,
        None,
        ["no", "yes"],
        metrics=["accuracy", "roc_auc", "no_such_metric"],
        n_resamples=50,
        confidence=0.9,
        seed=0,
    )
    assert list(ci) == ["accuracy"]


def test_fold_intervals_are_student_t_over_folds() -> None:
    folds = [{"f1": 0.8, "same": 1.0}, {"f1": 0.9, "same": 1.0}, {"f1": 0.85, "same": 1.0}]
    ci = fold_intervals(folds, 0.95)
    values = np.array([0.8, 0.9, 0.85])
    half = stats.t.ppf(0.975, 2) * stats.sem(values)
    assert ci["f1"].estimate == pytest.approx(0.85)
    assert (ci["f1"].low, ci["f1"].high) == pytest.approx((0.85 - half, 0.85 + half))
    assert (ci["same"].low, ci["same"].high, ci["same"].n) == (1.0, 1.0, 3)
    assert fold_intervals([{"x": float("nan")}], 0.95) == {}


# --- fairness -------------------------------------------------------------------------------


def test_fairness_measures_match_fairlearn_and_a_hand_count() -> None:
    # group a: 4 rows, selection 3/4, TPR 2/2, FPR 1/2; group b: 4 rows, selection 1/4,
    # TPR 1/2, FPR 0/2 -> DP 0.5, EO max(0.5, 0.5) = 0.5
    y = ["y", "y", "n", "n", "y", "y", "n", "n"]
    p = ["y", "y", "y", "n", "y", "n", "n", "n"]
    groups = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 4}, index=range(10, 18))
    [report] = slice_metrics("binary", y, p, groups, ["n", "y"])
    assert report.measures["demographic_parity_difference"] == pytest.approx(0.5)
    assert report.measures["equalized_odds_difference"] == pytest.approx(0.5)
    yt = (np.array(y) == "y").astype(int)
    yp = (np.array(p) == "y").astype(int)
    g = groups["g"].to_numpy()
    assert report.measures["equalized_odds_difference"] == pytest.approx(
        fm.equalized_odds_difference(yt, yp, sensitive_features=g)
    )
    by_group = {row["group"]: row for row in report.groups}
    assert by_group["a"]["selection_rate"] == pytest.approx(0.75)
    assert by_group["b"]["true_positive_rate"] == pytest.approx(0.5)
    assert by_group["a"]["count"] == 4
    assert report.overall["accuracy"] == pytest.approx(6 / 8)
    assert set(FAIRNESS_MEASURES) == set(report.measures)
    assert json.dumps(report.to_dict())


def test_fairness_says_when_a_slice_has_one_class_or_few_rows() -> None:
    y = ["y", "n", "y", "n", "n", "n"]
    p = ["y", "n", "n", "n", "y", "n"]
    sensitive = pd.DataFrame({"g": ["a", "a", "a", "a", None, None]})
    [report] = slice_metrics("binary", y, p, sensitive, ["n", "y"])
    assert [row["group"] for row in report.groups] == ["(missing)", "a"]
    assert any("(missing) has no positive rows" in n for n in report.notes)
    assert any("fewer than 30 rows" in n for n in report.notes)


def test_fairness_of_multiclass_and_regression_names_what_does_not_apply() -> None:
    sensitive = pd.DataFrame({"age": np.arange(40)})
    y = np.array(["a", "b", "c", "a"] * 10)
    [multi] = slice_metrics("multiclass", y, np.roll(y, 1), sensitive, ["a", "b", "c"])
    assert set(multi.not_applicable) == set(FAIRNESS_MEASURES)
    assert "binary" in multi.not_applicable["demographic_parity_difference"]
    assert {"accuracy_difference", "f1_macro_difference"} == set(multi.measures)
    assert any("quartiles" in n for n in multi.notes)
    assert len(multi.groups) == 4
    values = np.r_[np.zeros(20), np.ones(20)]
    sens = pd.DataFrame({"g": ["a"] * 20 + ["b"] * 20})
    [reg] = slice_metrics(
        "regression", values, values + np.r_[np.ones(20), np.zeros(20)], sens, None
    )
    assert reg.measures["mae_difference"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="align"):
        slice_metrics("regression", values, values, sens.iloc[:5], None)


# --- data profile and association -----------------------------------------------------------


def _planted(n: int = 600, seed: int = 3) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    strong = rng.normal(size=n)
    y = pd.Series(np.where(strong + rng.normal(scale=0.5, size=n) > 0, "yes", "no"))
    x = pd.DataFrame(
        {
            "strong": strong,
            "noise": rng.normal(size=n),
            "colour": rng.choice(["red", "blue", None], n),
            "leaky": np.where(y == "yes", "p", "q").astype(object),
            "constant": np.ones(n),
            "empty": np.full(n, np.nan),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 99, n), "D"),
            "flag": rng.random(n) > 0.5,
        }
    )
    return x, y


def test_a_planted_feature_is_associated_and_noise_is_not() -> None:
    x, y = _planted()
    profile = {p.name: p for p in profile_features(x, y, task="binary", seed=0)}
    strong, noise = profile["strong"].association, profile["noise"].association
    assert strong is not None and noise is not None
    assert strong.test == "kruskal" and strong.p_value < 1e-20 and strong.effect > 0.2
    assert noise.p_value > 0.01
    leaky = profile["leaky"].association
    assert leaky is not None and leaky.test == "chi2" and leaky.effect == pytest.approx(1.0, 0.01)
    assert profile["colour"].association is not None  # missing is a category of its own
    assert profile["colour"].missing == pytest.approx((x["colour"].isna()).mean())
    assert profile["constant"].association is None and "constant" in profile["constant"].note
    assert profile["empty"].missing == 1.0 and profile["empty"].bins == ()
    assert profile["when"].kind == "datetime" and profile["when"].association is not None
    assert profile["flag"].kind == "boolean"
    assert sum(c for _, c in profile["strong"].bins) == len(x)
    assert json.dumps([p.to_dict() for p in profile.values()])


def test_association_with_a_numeric_target_and_a_sample_of_large_tables() -> None:
    rng = np.random.default_rng(0)
    n = 25_000
    driver = rng.normal(size=n)
    x = pd.DataFrame({"driver": driver, "group": rng.choice(["a", "b", "c", "d", "e"] * 2, n)})
    x.loc[:20, "group"] = [f"rare{i}" for i in range(21)]  # more than 8 categories
    y = pd.Series(2 * driver + rng.normal(size=n))
    profile = {p.name: p for p in profile_features(x, y, task="regression", seed=0)}
    driver_test = profile["driver"].association
    assert driver_test is not None and driver_test.test == "spearman"
    assert driver_test.n == 20_000 and driver_test.effect > 0.8
    group = profile["group"]
    assert group.association is not None and group.association.test == "kruskal"
    assert group.bins[-1][0].endswith("others")
    flat = profile_features(x.iloc[:50], pd.Series(np.ones(50)), task="regression", seed=0)
    assert "target is constant" in flat[0].note


# --- the card -------------------------------------------------------------------------------


def _signature(x: pd.DataFrame, classes: tuple[str, ...] | None) -> Signature:
    cols = []
    for name in x.columns:
        if not pd.api.types.is_numeric_dtype(x[name]):
            cats = tuple(sorted(str(v) for v in x[name].dropna().unique()))
            cols.append(
                ColumnSchema(
                    name=name, kind="category", dtype="str", nullable=True, categories=cats
                )
            )
        else:
            cols.append(ColumnSchema(name=name, kind="number", dtype="float64", nullable=True))
    return Signature(inputs=tuple(cols), classes=classes)


def _table(task: str, n: int = 500) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    x = pd.DataFrame(
        {
            "strong": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "colour": rng.choice(["red", "blue", "green"], n).astype(object),
        }
    )
    signal = 2 * x["strong"] + (x["colour"] == "red")
    if task == "regression":
        y, classes = pd.Series(signal + rng.normal(size=n)), None
    elif task == "binary":
        y = pd.Series(np.where(signal + rng.logistic(size=n) > 0, "yes", "no"))
        classes = ("no", "yes")
    else:
        codes = np.digitize(signal + rng.logistic(size=n), [-1.5, 1.5])
        y, classes = pd.Series(np.array(["hi", "lo", "mid"])[codes]), ("hi", "lo", "mid")
    cut = int(n * 0.7)
    return {
        "x_train": x.iloc[:cut],
        "y_train": y.iloc[:cut],
        "x_test": x.iloc[cut:],
        "y_test": y.iloc[cut:],
        "task": task,
        "classes": classes,
        "signature": _signature(x, classes),
        "sensitive": pd.DataFrame({"colour": x["colour"].iloc[cut:].to_numpy()}),
    }


def _card(table: dict[str, Any], estimator: Any, **kwargs: Any) -> tuple[ModelCard, Any]:
    model = make_pipeline(table["signature"], estimator).fit(table["x_train"], table["y_train"])
    args: dict[str, Any] = {
        "model": model,
        "x_train": table["x_train"],
        "y_train": table["y_train"],
        "x_test": table["x_test"],
        "y_test": table["y_test"],
        "task": table["task"],
        "metric": "rmse" if table["task"] == "regression" else "f1_macro",
        "classes": table["classes"],
        "options": FAST,
        "seed": 0,
        "sensitive": table["sensitive"],
        "cv_folds": [{"f1_macro": 0.8, "rmse": 1.0}, {"f1_macro": 0.85, "rmse": 1.2}],
        **kwargs,
    }
    return build_model_card(**args), model


@pytest.fixture(scope="module")
def binary_card() -> ModelCard:
    card, _ = _card(_table("binary"), HistGradientBoostingClassifier(max_iter=30))
    return card


def test_a_binary_card_has_every_section(binary_card: ModelCard) -> None:
    card = binary_card
    assert [s.reason for s in card.sections.values()] == [""] * 8
    assert all(s.value is not None for s in card.sections.values())
    assert card.holdout.value is not None and "f1_macro" in card.holdout.value
    assert card.holdout.value["f1_macro"].n == 200
    assert card.fairness.value is not None
    assert set(card.fairness.value[0].measures) == set(FAIRNESS_MEASURES)
    assert card.importance.value is not None and card.importance.value.features[0] == "strong"
    assert card.shap.value is not None and card.shap.value.explainer == "tree"
    assert card.shap.value.features[0] == "numeric__strong"
    assert card.learning_curve.value is not None and len(card.learning_curve.value.sizes) == 3
    for name in ("calibration", "importance", "shap", "learning_curve"):
        png = card.sections[name].png
        assert png is not None and png.startswith(b"\x89PNG"), name
    assert set(card.timings) == set(card.sections)
    assert card.seconds == pytest.approx(sum(card.timings.values()))
    assert json.loads(json.dumps(card.to_dict()))["sections"]["shap"]["value"]["n_rows"] > 0


@pytest.mark.parametrize(
    ("task", "estimator"),
    [
        ("multiclass", LogisticRegression(max_iter=300)),
        ("regression", HistGradientBoostingRegressor(max_iter=30)),
    ],
)
def test_multiclass_and_regression_cards(task: str, estimator: Any) -> None:
    card, _ = _card(
        _table(task), estimator, options=EvaluationSpec(bootstrap=100, learning_curve=False)
    )
    assert card.shap.value is not None
    assert card.importance.value is not None and card.importance.value.features[0] == "strong"
    assert card.fairness.value is not None and card.fairness.value[0].not_applicable
    assert card.learning_curve.value is None and "off" in card.learning_curve.reason
    if task == "regression":
        assert card.calibration.value is None and "regression" in card.calibration.reason
        assert card.shap.value.values is not None  # a beeswarm
    else:
        assert card.calibration.value is not None
        assert "predicted class" in card.calibration.value.target
        assert card.shap.value.by_class is not None and card.shap.value.values is None
    assert card.shap.png is not None


def test_sections_are_skipped_with_a_reason_when_the_deadline_is_near() -> None:
    table = _table("binary")
    card, _ = _card(
        table,
        LogisticRegression(),
        deadline=time.monotonic() + 30,
        fit_seconds=1e4,  # a learning curve would take hours
    )
    assert card.holdout.value is not None and card.importance.value is not None
    assert card.learning_curve.value is None
    assert card.learning_curve.reason.startswith("skipped: needs about")
    late, _ = _card(table, LogisticRegression(), deadline=time.monotonic() - 1)
    assert all(s.value is None for s in late.sections.values())
    assert {s.reason for s in late.sections.values()} == {"skipped: the deadline has passed"}


def test_the_learning_curve_is_priced_by_a_pilot_fit_without_fit_seconds() -> None:
    card, _ = _card(_table("binary"), LogisticRegression(), deadline=time.monotonic() + 60)
    assert card.learning_curve.value is not None


def test_bootstrap_resamples_shrink_to_fit_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(card_module, "_RESAMPLE_CELL_SECONDS", 1e-3)  # 0.15 s a resample
    card, _ = _card(
        _table("binary"),
        LogisticRegression(),
        options=EvaluationSpec(bootstrap=1000, explain=False, learning_curve=False),
        deadline=time.monotonic() + 60,
    )
    assert card.holdout.value is not None
    assert 200 <= card.holdout.value["accuracy"].n < 1000
    assert "resamples of the 1000 asked" in card.holdout.reason


def test_switched_off_sections_say_so() -> None:
    options = EvaluationSpec(bootstrap=0, explain=False, learning_curve=False)
    card, _ = _card(
        _table("binary"), LogisticRegression(), options=options, sensitive=None, cv_folds=None
    )
    reasons = {name: s.reason for name, s in card.sections.items() if s.value is None}
    assert set(reasons) == {"holdout", "cv", "fairness", "importance", "shap", "learning_curve"}
    assert "evaluation.bootstrap: 0" in reasons["holdout"]
    assert "evaluation.sensitive" in reasons["fairness"]
    assert "evaluation.explain: false" in reasons["shap"]


def test_failures_degrade_to_a_stated_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table("binary")
    single = {**table, "y_test": pd.Series(["yes"] * len(table["y_test"]))}
    card, _ = _card(single, KNeighborsClassifier(), options=EvaluationSpec(bootstrap=50))
    assert card.calibration.value is None
    assert card.calibration.reason.startswith("failed: ValueError: every holdout row")
    assert card.shap.value is None
    assert card.shap.reason.startswith("not computed: SHAP has no fast explainer")
    assert card.holdout.value is not None  # roc_auc is nan, the rest stands

    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(card_module, "importance_png", broken)
    card, _ = _card(table, LogisticRegression(), options=EvaluationSpec(bootstrap=50))
    assert card.importance.value is not None and card.importance.png is None
    assert card.importance.reason == "the plot could not be drawn"


def test_an_ensemble_of_pipelines_is_explained_by_permutation_only() -> None:
    table = _table("binary")
    members = [
        ("a", make_pipeline(table["signature"], LogisticRegression())),
        ("b", make_pipeline(table["signature"], HistGradientBoostingClassifier(max_iter=10))),
    ]
    from sklearn.ensemble import VotingClassifier

    ensemble = Pipeline([("model", VotingClassifier(members, voting="soft"))])
    ensemble.fit(table["x_train"], table["y_train"])
    card = build_model_card(
        model=ensemble,
        x_train=table["x_train"],
        y_train=table["y_train"],
        x_test=table["x_test"],
        y_test=table["y_test"],
        task="binary",
        metric="roc_auc",
        classes=table["classes"],
        options=EvaluationSpec(bootstrap=50, learning_curve=False),
        seed=0,
    )
    assert card.importance.value is not None
    assert card.shap.value is None and "ensemble" in card.shap.reason


def test_the_learning_curve_stops_where_the_next_size_would_pass_the_deadline() -> None:
    from shipyard.evaluate._curves import learning_curve

    table = _table("binary")
    model = make_pipeline(table["signature"], LogisticRegression())
    args: dict[str, Any] = {
        "task": "binary",
        "metric": "log_loss",
        "classes": table["classes"],
        "seed": 0,
    }
    stopped = learning_curve(
        model,
        table["x_train"],
        table["y_train"],
        fit_seconds=10.0,
        deadline=time.monotonic() + 1,
        **args,
    )
    assert stopped.sizes == () and stopped.note.startswith(
        "stopped before 20% of the rows: it needs about"
    )
    full = learning_curve(model, table["x_train"], table["y_train"], **args)
    assert full.sizes[-1] == round(len(table["x_train"]) * 2 / 3) and full.note == ""
    assert all(v > 0 for v in full.validation)  # log loss turned back from sklearn's sign


def test_a_deep_forest_gets_approximate_shap_when_exact_would_not_fit() -> None:
    from sklearn.ensemble import RandomForestClassifier

    from shipyard.evaluate._explain import shap_summary

    table = _table("binary")
    model = make_pipeline(table["signature"], RandomForestClassifier(n_estimators=20))
    model.fit(table["x_train"], table["y_train"])
    args: dict[str, Any] = {"task": "binary", "classes": table["classes"], "seed": 0}
    quick = shap_summary(model, table["x_test"], budget=1e-4, **args)
    assert quick.explainer.startswith("tree (approximate") and quick.n_rows >= 10
    exact = shap_summary(model, table["x_test"], max_rows=30, **args)
    assert exact.explainer == "tree" and exact.n_rows == 30
    assert exact.features[0] == "numeric__strong"
