"""Imbalanced classes: class weights, resampling inside the folds only, decision thresholds."""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.data import ColumnSchema, Signature
from shipyard.errors import TrainingError
from shipyard.features import build_features
from shipyard.spec import FeaturesSpec, SelectSpec
from shipyard.train import (
    THRESHOLD_METRICS,
    FoldSMOTE,
    apply_class_weight,
    cross_validate,
    default_catalogue,
    ensemble_pipeline,
    make_pipeline,
    make_sampler,
    predict_evaluate,
    refit,
    resampling_pipeline,
    strip_samplers,
    tune_threshold,
)

SIG = Signature(
    inputs=(
        ColumnSchema(name="x1", kind="number", dtype="float64", nullable=True),
        ColumnSchema(name="x2", kind="number", dtype="float64", nullable=True),
        ColumnSchema(
            name="c", kind="category", dtype="object", nullable=False, categories=("p", "q")
        ),
    ),
    classes=("no", "yes"),
)
CLASSES = ["no", "yes"]


def _skewed(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """About 10% positives, which a model finds only partly."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "c": np.asarray(rng.choice(["p", "q"], size=n), dtype=object),
        }
    )
    signal = x["x1"] + 0.5 * x["x2"] + rng.normal(0, 0.6, n)
    y = pd.Series(np.where(signal > 1.5, "yes", "no"), dtype=object)
    return x, y


# --- class weights ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "estimator",
    [LogisticRegression(), RandomForestClassifier(), HistGradientBoostingClassifier()],
    ids=lambda e: type(e).__name__,
)
def test_class_weight_sets_the_estimators_own_parameter(estimator: Any) -> None:
    done = apply_class_weight(estimator, "balanced")
    assert done.applied and done.parameter == "class_weight" and not done.reason
    assert done.estimator.get_params()["class_weight"] == "balanced"
    assert estimator.get_params()["class_weight"] is None  # the one given is left alone


def test_class_weight_for_lightgbm_catboost_and_xgboost() -> None:
    lightgbm = pytest.importorskip("lightgbm")
    assert apply_class_weight(lightgbm.LGBMClassifier(), "balanced").parameter == "class_weight"
    catboost = pytest.importorskip("catboost")
    done = apply_class_weight(catboost.CatBoostClassifier(), "balanced")
    assert done.parameter == "auto_class_weights"
    assert done.estimator.get_params()["auto_class_weights"] == "Balanced"
    xgboost = pytest.importorskip("xgboost")
    y = ["no"] * 9 + ["yes"] * 3
    done = apply_class_weight(xgboost.XGBClassifier(), "balanced", y=y)
    assert done.parameter == "scale_pos_weight"
    assert done.estimator.get_params()["scale_pos_weight"] == pytest.approx(3.0)
    flipped = apply_class_weight(xgboost.XGBClassifier(), "balanced", y=["b"] * 9 + ["a"] * 3)
    assert flipped.estimator.get_params()["scale_pos_weight"] == pytest.approx(1 / 3)
    many = apply_class_weight(xgboost.XGBClassifier(), "balanced", y=["a", "b", "c"])
    assert not many.applied and "binary" in many.reason and "3 classes" in many.reason


def test_an_estimator_without_class_weights_says_so() -> None:
    knn = KNeighborsClassifier()
    done = apply_class_weight(knn, "balanced")
    assert not done.applied and done.estimator is knn
    assert done.reason == "KNeighborsClassifier takes no class weights"
    assert apply_class_weight(knn, None).estimator is knn
    assert not apply_class_weight(LogisticRegression(), None).applied


_FEW = {"catboost": {"iterations": 20}, "lightgbm": {"n_estimators": 20}}
_FEW["xgboost"] = {"n_estimators": 20}


@pytest.mark.parametrize("key", [e.key for e in default_catalogue().entries("binary")])
def test_every_catalogue_classifier_is_weighted_or_says_why(key: str) -> None:
    x, y = _skewed(200)
    catalogue = default_catalogue()
    estimator = catalogue.create(key, "binary", seed=0, params=_FEW.get(key, {}))
    done = apply_class_weight(estimator, "balanced", y=y)
    if not done.applied:
        assert done.reason == f"{type(estimator).__name__} takes no class weights"
        return
    value = done.estimator.get_params()[done.parameter]
    assert clone(done.estimator).get_params()[done.parameter] == value  # survives CV's clones
    model = refit(make_pipeline(SIG, done.estimator), x, y)
    assert predict_evaluate(model, x, y, task="binary", classes=CLASSES).metrics["recall"] > 0


def test_balanced_weights_find_more_of_the_rare_class() -> None:
    x, y = _skewed()
    plain = refit(make_pipeline(SIG, LogisticRegression()), x, y)
    weighted = refit(
        make_pipeline(SIG, apply_class_weight(LogisticRegression(), "balanced").estimator), x, y
    )
    recall = [
        predict_evaluate(m, x, y, task="binary", classes=CLASSES).metrics["recall"]
        for m in (plain, weighted)
    ]
    assert recall[1] > recall[0]


# --- resampling inside the folds ----------------------------------------------------------


class _Recorder(ClassifierMixin, BaseEstimator):
    """A classifier that records the rows it is fitted on and asked about."""

    fitted: ClassVar[list[tuple[np.ndarray, np.ndarray]]] = []
    asked: ClassVar[list[np.ndarray]] = []

    def fit(self, x: Any, y: Any) -> _Recorder:
        self.classes_ = np.unique(y)
        type(self).fitted.append((np.asarray(x, float).copy(), np.asarray(y).copy()))
        self.prior_ = np.array([np.mean(np.asarray(y) == c) for c in self.classes_])
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        type(self).asked.append(np.asarray(x, float).copy())
        return np.tile(self.prior_, (len(x), 1))

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


@pytest.fixture
def recorder() -> _Recorder:
    _Recorder.fitted.clear()
    _Recorder.asked.clear()
    return _Recorder()


@pytest.mark.parametrize("resample", ["over", "under", "smote"])
def test_samplers_act_in_fit_only_never_on_scored_rows(resample: str, recorder: _Recorder) -> None:
    x, y = _skewed()
    folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(x, y))
    pipeline = make_pipeline(SIG, recorder, resample=resample, seed=3)  # type: ignore[arg-type]
    cross_validate(pipeline, x, y, cv=folds, task="binary", classes=CLASSES)
    assert len(_Recorder.fitted) == len(_Recorder.asked) == len(folds)
    for (train, held), (fit_x, fit_y), asked in zip(
        folds, _Recorder.fitted, _Recorder.asked, strict=True
    ):
        counts = y.iloc[train].value_counts()
        balanced = counts.max() if resample != "under" else counts.min()
        assert dict(zip(*np.unique(fit_y, return_counts=True), strict=True)) == {
            "no": balanced,
            "yes": balanced,
        }
        assert len(fit_x) == 2 * balanced != len(train)
        assert len(asked) == len(held)  # every held-out row once, none added or dropped


@pytest.mark.parametrize("resample", ["over", "under", "smote"])
def test_the_model_never_fits_on_a_held_out_row(resample: str, recorder: _Recorder) -> None:
    x, y = _skewed()
    train, held = next(iter(StratifiedKFold(4, shuffle=True, random_state=1).split(x, y)))
    model = refit(
        make_pipeline(SIG, recorder, resample=resample, seed=0),  # type: ignore[arg-type]
        x.iloc[train],
        y.iloc[train],
    )
    fit_x, _ = _Recorder.fitted[-1]
    features = model.named_steps["features"]
    train_rows = {tuple(r) for r in features.transform(x.iloc[train])}
    held_rows = features.transform(x.iloc[held])
    seen = {tuple(r) for r in fit_x}
    assert not seen & {tuple(r) for r in held_rows}
    if resample != "smote":  # SMOTE adds interpolated rows; the others only copy or drop
        assert seen <= train_rows
    model.predict_proba(x.iloc[held])
    np.testing.assert_array_equal(_Recorder.asked[-1], held_rows)  # as they are, in order


def test_smote_adapts_to_a_small_minority() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = np.array(["a"] * 37 + ["b"] * 3)
    smote = FoldSMOTE(random_state=0)
    rx, ry = smote.fit_resample(x, y)
    assert smote.strategy_ == "smote (k_neighbors=2)"
    assert (ry == "b").sum() == 37 and len(rx) == 74
    y_one = np.array(["a"] * 39 + ["b"])
    alone = FoldSMOTE(random_state=0)
    rx, ry = alone.fit_resample(x, y_one)
    assert alone.strategy_.startswith("random oversampling: class 'b' has 1 row")
    assert (ry == "b").sum() == 39
    np.testing.assert_array_equal(rx[ry == "b"], np.repeat(x[-1:], 39, axis=0))
    plenty = FoldSMOTE(random_state=0)
    plenty.fit_resample(x, np.array(["a"] * 30 + ["b"] * 10))
    assert plenty.strategy_ == "smote (k_neighbors=5)"


def test_unknown_resampling_is_refused() -> None:
    with pytest.raises(TrainingError, match="unknown resampling 'sideways'"):
        make_sampler("sideways", seed=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("resample", ["over", "under", "smote"])
def test_stripped_pipeline_predicts_identically_without_imblearn(resample: str) -> None:
    x, y = _skewed()
    pipeline = make_pipeline(SIG, LogisticRegression(), resample=resample, seed=0)  # type: ignore[arg-type]
    fitted = refit(pipeline, x, y)
    assert type(fitted).__module__.startswith("imblearn")
    stripped = strip_samplers(fitted)
    assert type(stripped) is Pipeline
    assert [name for name, _ in stripped.steps] == ["features", "model"]
    assert stripped.named_steps["model"] is fitted.named_steps["model"]  # the same fit
    np.testing.assert_array_equal(stripped.predict_proba(x), fitted.predict_proba(x))
    np.testing.assert_array_equal(stripped.predict(x), fitted.predict(x))
    assert b"imblearn" not in pickle.dumps(stripped)


def test_a_pipeline_without_samplers_comes_back_as_it_is() -> None:
    plain = make_pipeline(SIG, LogisticRegression())
    assert type(plain) is Pipeline
    assert strip_samplers(plain) is plain


def test_an_ensemble_of_resampled_members_is_stripped_whole() -> None:
    x, y = _skewed()
    members = {
        "linear": make_pipeline(SIG, LogisticRegression(), resample="under", seed=0),
        "forest": make_pipeline(
            SIG, RandomForestClassifier(n_estimators=10, random_state=0), resample="smote", seed=0
        ),
    }
    fitted = refit(ensemble_pipeline("binary", members, {"linear": 0.5, "forest": 0.5}), x, y)
    stripped = strip_samplers(fitted)
    np.testing.assert_array_equal(stripped.predict_proba(x), fitted.predict_proba(x))
    assert b"imblearn" not in pickle.dumps(stripped)
    assert b"imblearn" in pickle.dumps(fitted)


def test_a_features_pipeline_is_nested_again_after_stripping() -> None:
    x, y = _skewed()
    features = Pipeline(
        [
            ("columns", ColumnTransformer([("num", StandardScaler(), ["x1", "x2"])])),
            ("scale", StandardScaler()),
        ]
    )
    fitted = resampling_pipeline(features, make_sampler("over", seed=0), LogisticRegression()).fit(
        x, y
    )
    stripped = strip_samplers(fitted)
    assert [name for name, _ in stripped.steps] == ["features", "model"]
    assert [name for name, _ in stripped.named_steps["features"].steps] == ["columns", "scale"]
    np.testing.assert_array_equal(stripped.predict_proba(x), fitted.predict_proba(x))


def test_resampling_with_the_projects_feature_options() -> None:
    x, y = _skewed()
    options = FeaturesSpec(select=SelectSpec(method="variance", threshold=0.0))
    features = build_features(SIG, options, task="binary", seed=0)
    assert isinstance(features, Pipeline)  # selection follows the column transformer
    pipeline = make_pipeline(SIG, LogisticRegression(), features=features, resample="smote")
    fitted = refit(pipeline, x, y)
    stripped = strip_samplers(fitted)
    assert [name for name, _ in stripped.steps] == ["features", "model"]
    inner = [name for name, _ in stripped.named_steps["features"].steps]
    assert inner == [name for name, _ in features.steps]
    np.testing.assert_array_equal(stripped.predict_proba(x), fitted.predict_proba(x))


# --- decision thresholds ------------------------------------------------------------------


def _brute_force(
    y: np.ndarray, proba: np.ndarray, metric: str, positive: str = "yes"
) -> tuple[float, list[float]]:
    """The best score over every threshold that changes a label, computed by scikit-learn,
    and the thresholds tried."""
    values = np.unique(proba)
    tried = [*values.tolist(), float(values.max()) + 1.0]
    truth = y == positive
    return max(_sklearn_score(metric, truth, proba >= t) for t in tried), tried


def _sklearn_score(metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    if metric == "f1":
        return float(skm.f1_score(truth, predicted, zero_division=0))
    if metric == "f2":
        return float(skm.fbeta_score(truth, predicted, beta=2, zero_division=0))
    if metric == "mcc":
        return float(skm.matthews_corrcoef(truth, predicted))
    if metric == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(truth, predicted))
    return float(skm.accuracy_score(truth, predicted))


@pytest.mark.parametrize("metric", THRESHOLD_METRICS)
def test_threshold_beats_one_half_on_a_skewed_case(metric: str) -> None:
    # 10 positives scored 0.2-0.45 by a model that learned the rarity; 90 negatives below
    positives = np.linspace(0.2, 0.45, 10)
    negatives = np.r_[np.linspace(0.0, 0.25, 85), [0.3, 0.35, 0.4, 0.55, 0.6]]
    y = np.array(["yes"] * 10 + ["no"] * 90, dtype=object)
    proba = np.r_[positives, negatives]
    choice = tune_threshold(y, proba, positive_label="yes", metric=metric)
    best, _ = _brute_force(y, proba, metric)
    assert choice.score == pytest.approx(best)
    assert choice.score > choice.default_score
    assert _sklearn_score(metric, y == "yes", proba >= choice.threshold) == pytest.approx(
        choice.score
    )
    assert _sklearn_score(metric, y == "yes", proba >= 0.5) == pytest.approx(choice.default_score)
    assert choice.metric == metric and choice.positive == "yes"


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([i / 20 for i in range(21)])),
        min_size=2,
        max_size=60,
    ).filter(lambda rows: 0 < sum(r[0] for r in rows) < len(rows)),
    st.sampled_from(THRESHOLD_METRICS),
)
def test_threshold_is_the_brute_force_optimum(rows: list[tuple[bool, float]], metric: str) -> None:
    y = np.array(["yes" if hit else "no" for hit, _ in rows], dtype=object)
    proba = np.array([p for _, p in rows])  # coarse, so many ties
    choice = tune_threshold(y, proba, positive_label="yes", metric=metric)
    best, _ = _brute_force(y, proba, metric)
    assert choice.score == pytest.approx(best, abs=1e-12)
    at_choice = _sklearn_score(metric, y == "yes", proba >= choice.threshold)
    assert at_choice == pytest.approx(best, abs=1e-12)
    anywhere = len(set(proba.tolist())) == 1 and choice.score == choice.default_score
    if choice.threshold != 0.0 and not anywhere:  # 0: every row positive, as p >= 0 always is
        assert choice.threshold not in set(proba.tolist())  # between two rows, not on one


def test_threshold_is_the_middle_of_the_gap_not_a_rows_probability() -> None:
    choice = tune_threshold(
        ["n", "n", "y", "y"], [0.1, 0.3, 0.35, 0.8], positive_label="y", metric="f1"
    )
    assert choice.threshold == pytest.approx(0.325)
    assert choice.score == 1.0 and choice.default_score == pytest.approx(2 / 3)
    # a wide plateau: every cut between 0.2 and 0.7 is perfect; its middle is chosen
    wide = tune_threshold(
        ["n", "n", "y", "y"], [0.1, 0.2, 0.7, 0.9], positive_label="y", metric="accuracy"
    )
    assert wide.threshold == pytest.approx(0.45)


def test_threshold_skips_rows_no_fold_held_out() -> None:
    y = ["n", "y", "n", "y", "n"]
    proba = [0.1, 0.6, np.nan, 0.4, 0.45]
    with_nan = tune_threshold(y, proba, positive_label="y", metric="f1")
    without = tune_threshold(
        ["n", "y", "y", "n"], [0.1, 0.6, 0.4, 0.45], positive_label="y", metric="f1"
    )
    assert with_nan == without


def test_threshold_refuses_one_class_and_unknown_metrics() -> None:
    with pytest.raises(TrainingError, match="0 negative rows"):
        tune_threshold(["y", "y"], [0.2, 0.9], positive_label="y", metric="f1")
    with pytest.raises(TrainingError, match="cannot tune a threshold for 'roc_auc'"):
        tune_threshold(["n", "y"], [0.2, 0.9], positive_label="y", metric="roc_auc")


def test_threshold_tuned_on_out_of_fold_predictions_applies_to_the_holdout() -> None:
    x, y = _skewed(4000, seed=2)
    train, test = np.arange(1000), np.arange(1000, 4000)  # a holdout big enough to tell
    pipeline = make_pipeline(SIG, LogisticRegression())
    folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(x.iloc[train], y[train]))
    result = cross_validate(
        pipeline,
        x.iloc[train],
        y.iloc[train],
        cv=folds,
        task="binary",
        classes=CLASSES,
        keep_predictions=True,
    )
    assert result.predictions is not None
    choice = tune_threshold(
        y.iloc[train], result.predictions[:, 1], positive_label="yes", metric="f2"
    )
    assert choice.threshold < 0.5 and choice.score > choice.default_score
    model = refit(pipeline, x.iloc[train], y.iloc[train])
    tuned = predict_evaluate(
        model, x.iloc[test], y.iloc[test], task="binary", classes=CLASSES, threshold=choice
    )
    plain = predict_evaluate(model, x.iloc[test], y.iloc[test], task="binary", classes=CLASSES)
    proba = model.predict_proba(x.iloc[test])[:, 1]
    assert tuned.y_pred is not None
    assert list(tuned.y_pred) == list(np.where(proba >= choice.threshold, "yes", "no"))
    assert tuned.metrics["f2"] > plain.metrics["f2"] + 0.05
    np.testing.assert_array_equal(tuned.proba, plain.proba)
    by_value = predict_evaluate(
        model,
        x.iloc[test],
        y.iloc[test],
        task="binary",
        classes=CLASSES,
        threshold=choice.threshold,
    )
    assert by_value.metrics == tuned.metrics


def test_a_threshold_for_a_multiclass_model_is_refused() -> None:
    x, _ = _skewed(60)
    y = pd.Series(np.asarray(["a", "b", "c"] * 20, dtype=object))
    sig = Signature(inputs=SIG.inputs, classes=("a", "b", "c"))
    model = refit(make_pipeline(sig, LogisticRegression()), x, y)
    with pytest.raises(TrainingError, match="needs a binary task"):
        predict_evaluate(model, x, y, task="multiclass", classes=["a", "b", "c"], threshold=0.3)
