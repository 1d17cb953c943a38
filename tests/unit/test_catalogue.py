"""The model catalogue's families, import-path models, and early stopping for boosting."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.model_selection import cross_validate as sk_cross_validate
from sklearn.pipeline import Pipeline

from shipyard.data import ColumnSchema, Signature
from shipyard.errors import TrainingError
from shipyard.features import build_features
from shipyard.train import default_catalogue, make_pipeline, predict_evaluate, refit
from shipyard.train._boosting import DEFAULT_FRACTION, full_fit_rounds, validation_split

SIG = Signature(
    inputs=(
        ColumnSchema(name="x1", kind="number", dtype="float64", nullable=True),
        ColumnSchema(name="x2", kind="number", dtype="float64", nullable=False),
        ColumnSchema(
            name="c", kind="category", dtype="object", nullable=False, categories=("p", "q")
        ),
    ),
)
NEW = ["lasso", "elastic_net", "xgboost", "catboost", "svm", "knn", "naive_bayes", "mlp"]
BOOSTING = ["lightgbm", "xgboost", "catboost"]
CAP = {"lightgbm": "n_estimators", "xgboost": "n_estimators", "catboost": "iterations"}


def _data(task: str, n: int = 300, *, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    c = rng.choice(["p", "q"], size=n)
    x = pd.DataFrame({"x1": x1, "x2": x2, "c": np.asarray(c, dtype=object)})
    x.loc[::17, "x1"] = np.nan
    signal = np.nan_to_num(x1) + 0.5 * x2 + (c == "p")
    if task == "regression":  # in large units: families must not assume a unit-scale target
        return x, pd.Series(5000 + 1000 * (signal + rng.normal(0, 0.1, n)))
    if task == "binary":
        return x, pd.Series(np.where(signal > 0.5, "yes", "no"), dtype=object)
    labels = np.asarray(["a", "b", "c"], dtype=object)
    return x, pd.Series(labels[np.digitize(signal, [0.0, 1.0])])


def _fit(
    key: str, task: str, params: dict | None = None, n: int = 300, *, full: bool = True
) -> tuple:
    """The family's pipeline as the run registers it (``refit``), or as a CV fold or a trial
    fits it (``full=False``)."""
    estimator = default_catalogue().create(key, task, seed=0, params=params or {})
    x, y = _data(task, n)
    pipeline = make_pipeline(SIG, estimator)
    return (refit(pipeline, x, y) if full else pipeline.fit(x, y)), x, y


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("key", NEW)
def test_every_new_family_fits_and_predicts_for_the_tasks_it_claims(key: str, task: str) -> None:
    catalogue = default_catalogue()
    entry = catalogue.get(key)
    if task not in entry.tasks:
        with pytest.raises(TrainingError, match="does not support task"):
            catalogue.create(key, task, seed=0, params={})
        return
    model, x, y = _fit(key, task)
    classes = None if task == "regression" else sorted(set(y))
    metrics = predict_evaluate(model, x, y, task=task, classes=classes).metrics
    assert metrics["r2" if task == "regression" else "accuracy"] > 0.6, metrics
    assert set(entry.space) <= set(model[-1].get_params())  # the space names real parameters


def test_every_family_declares_a_space_a_cost_and_a_library() -> None:
    catalogue = default_catalogue()
    assert set(NEW) <= set(catalogue.keys())
    assert catalogue.get("naive_bayes").tasks == {"binary", "multiclass"}
    assert catalogue.get("lasso").tasks == catalogue.get("elastic_net").tasks == {"regression"}
    assert catalogue.get("xgboost").library == "xgboost"
    assert catalogue.get("svm").cost_rank > catalogue.get("random_forest").cost_rank
    for key in BOOSTING:  # early stopping sizes the ensemble: the cap is not searched
        assert CAP[key] not in catalogue.get(key).space
    for entry in catalogue.entries():
        for name, r in entry.space.items():
            assert r.choices is not None or (r.low is not None and r.high is not None), name


def test_the_default_search_takes_quadratic_families_on_small_tables_only() -> None:
    catalogue = default_catalogue()
    small = {e.key for e in catalogue.searched("binary", n_rows=1_000)}
    large = {e.key for e in catalogue.searched("binary", n_rows=200_000)}
    assert {"svm", "knn", "xgboost", "catboost", "lightgbm"} <= small
    assert "svm" not in large and "knn" not in large and "lightgbm" in large
    assert "naive_bayes" not in small and "mlp" not in small  # there, but not by default
    assert {e.key for e in catalogue.searched("binary")} == small  # no size: no limit


def test_a_missing_optional_library_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for package in ("xgboost", "catboost"):
        monkeypatch.setitem(sys.modules, package, None)  # as if not installed
        catalogue = default_catalogue()
        assert not catalogue.get(package).searched  # not searched when not installed
        with pytest.raises(TrainingError) as caught:
            catalogue.create(package, "binary", seed=0, params={}, where="shipyard.yaml:7")
        assert str(caught.value) == (
            f"shipyard.yaml:7: model {package!r} needs the {package} package: "
            f"pip install 'shipyard[{package}]'"
        )


@pytest.mark.parametrize(
    ("path", "task", "params"),
    [
        ("sklearn.tree.DecisionTreeClassifier", "multiclass", {"max_depth": 4}),
        ("sklearn.linear_model:HuberRegressor", "regression", {"epsilon": 1.5}),
    ],
)
def test_an_estimator_by_import_path(path: str, task: str, params: dict) -> None:
    catalogue = default_catalogue()
    entry = catalogue.get(path)
    assert not entry.searched and not entry.space and entry.library == "sklearn"
    estimator = catalogue.create(path, task, seed=3, params=params)
    assert estimator.get_params()[next(iter(params))] == next(iter(params.values()))
    if "random_state" in estimator.get_params():
        assert estimator.random_state == 3
    x, y = _data(task)
    model = refit(make_pipeline(SIG, estimator), x, y)
    assert len(model.predict(x)) == len(x)
    other = "regression" if task != "regression" else "binary"
    with pytest.raises(TrainingError, match="does not support task"):
        catalogue.create(path, other, seed=0, params={})
    with pytest.raises(TrainingError, match="has no parameter 'nope'"):
        catalogue.create(path, task, seed=0, params={"nope": 1})


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("no_such_package_xyz.Model", r"cannot import 'no_such_package_xyz'.*install"),
        (
            "sklearn.tree.DecisionTreeClassifer",
            r"'sklearn.tree' has no 'DecisionTreeClassifer'.*did you mean "
            r"'DecisionTreeClassifier'",
        ),
        ("sklearn.tree:export_text", r"is a function, not an estimator class"),
        ("json:JSONDecoder", r"not a scikit-learn compatible estimator: it has no fit, predict"),
        ("sklearn.pipeline.Pipeline", r"cannot be built without arguments"),
        ("sklearn.svm.LinearSVC", r"no predict_proba.*a classifier needs class probabilities"),
        ("sklearn.:", r"not an import path"),
    ],
)
def test_bad_import_paths_say_what_is_wrong_and_where(path: str, says: str) -> None:
    with pytest.raises(TrainingError, match=r"^shipyard.yaml:4: .*" + says):
        default_catalogue().create(path, "binary", seed=0, params={}, where="shipyard.yaml:4")


def test_a_classifier_without_probabilities_is_refused_before_any_fit() -> None:
    with pytest.raises(TrainingError, match="svm has no predict_proba"):
        default_catalogue().create("svm", "binary", seed=0, params={"probability": False})


def _best(model: object) -> int:
    """Boosting rounds kept (the best iteration, counted from 1)."""
    if hasattr(model, "get_best_iteration"):  # CatBoost (its best_iteration_ counts from 0)
        return int(model.tree_count_)
    if hasattr(model, "best_iteration_"):  # LightGBM
        return int(model.best_iteration_)
    return int(model.best_iteration) + 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("task", ["binary", "regression"])
@pytest.mark.parametrize("key", BOOSTING)
def test_boosting_stops_early_before_the_cap_and_is_reproducible(key: str, task: str) -> None:
    params = {"learning_rate": 0.3}
    first, x, _ = _fit(key, task, params, n=400, full=False)  # a CV fold's or a trial's fit
    again, _, _ = _fit(key, task, params, n=400, full=False)
    assert _best(first[-1]) < 1000  # the catalogue's cap
    assert _best(first[-1]) == _best(again[-1])
    predict = "predict" if task == "regression" else "predict_proba"
    np.testing.assert_array_equal(getattr(first, predict)(x), getattr(again, predict)(x))
    off, _, _ = _fit(key, task, {"early_stopping_rounds": None, CAP[key]: 7}, n=400)
    assert _best_or_all(off[-1]) == 7  # off: every row, every round


@pytest.mark.parametrize("task", ["binary", "regression"])
@pytest.mark.parametrize("key", BOOSTING)
def test_a_refit_fits_every_row_for_the_rounds_early_stopping_found(key: str, task: str) -> None:
    params = {"learning_rate": 0.3}
    stopped, x, y = _fit(key, task, params, n=400, full=False)
    full, _, _ = _fit(key, task, params, n=400)  # refit sets full_fit
    rounds = _best(stopped[-1])
    assert rounds < 1000
    assert _best_or_all(full[-1]) == full_fit_rounds(rounds, DEFAULT_FRACTION, 1000)
    assert full[-1].get_params()["early_stopping_rounds"] == 50  # the parameters are kept
    assert full[-1].get_params()[CAP[key]] == 1000
    # the rows held out to stop early are fitted: the model differs from the stopped one
    predict = "predict" if task == "regression" else "predict_proba"
    assert not np.allclose(getattr(full, predict)(x), getattr(stopped, predict)(x))
    again = refit(full, x, y)  # and a refit of a refit is the same again
    np.testing.assert_allclose(getattr(again, predict)(x), getattr(full, predict)(x))


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("key", BOOSTING)
def test_a_refit_on_more_rows_fits_the_rounds_the_scored_model_has_once(
    key: str, task: str
) -> None:
    params = {"learning_rate": 0.3}
    scored, x, y = _fit(key, task, params, n=300)  # the holdout's model (its refit found them)
    estimator = default_catalogue().create(key, task, seed=0, params=params)
    more_x, more_y = _data(task, 450)
    on_all = refit(make_pipeline(SIG, estimator), more_x, more_y, rounds_of=scored)
    assert _rounds(on_all[-1]) == _rounds(scored[-1]) < 1000
    assert on_all[-1].get_params()["early_stopping_rounds"] is None  # no early stop: once
    # without the scored model it finds its own rounds on the new rows
    own = refit(make_pipeline(SIG, estimator), more_x, more_y)
    assert own[-1].get_params()["early_stopping_rounds"] == 50
    # a family without rounds refits as before
    forest = make_pipeline(
        SIG, default_catalogue().create("random_forest", task, seed=0, params={})
    )
    fitted_forest = refit(forest, x, y)
    again = refit(forest, x, y, rounds_of=fitted_forest)
    assert again[-1].get_params() == fitted_forest[-1].get_params()


def test_an_ensembles_members_refit_for_the_rounds_their_scored_models_have() -> None:
    """The voting estimator fits clones of its members: the rounds are read from those (its
    ``get_params`` lists the unfitted templates), so each member of the registered ensemble
    is the model that was scored."""
    catalogue = default_catalogue()
    members = [
        (
            k,
            make_pipeline(
                SIG, catalogue.create(k, "binary", seed=0, params={"learning_rate": 0.3})
            ),
        )
        for k in BOOSTING
    ]
    ensemble = Pipeline([("model", VotingClassifier(members, voting="soft"))])
    x, y = _data("binary", 300)
    scored = refit(ensemble, x, y)  # the holdout's model: each member found its rounds
    more_x, more_y = _data("binary", 450)
    on_all = refit(ensemble, more_x, more_y, rounds_of=scored)
    for key in BOOSTING:
        found = scored[-1].named_estimators_[key][-1]
        again = on_all[-1].named_estimators_[key][-1]
        assert _rounds(again) == _rounds(found) < 1000
        assert again.get_params()["early_stopping_rounds"] is None  # no early stop: once


def _rounds(model: object) -> int:
    """Boosting rounds a fitted model has (a multiclass LightGBM has a tree per class each)."""
    if hasattr(model, "booster_"):
        return int(model.booster_.current_iteration())
    if hasattr(model, "tree_count_"):
        return int(model.tree_count_)
    return int(model.get_booster().num_boosted_rounds())  # type: ignore[attr-defined]


def _best_or_all(model: object) -> int:
    if hasattr(model, "booster_"):
        return int(model.booster_.num_trees())  # binary/regression: one tree a round
    if hasattr(model, "tree_count_"):
        return int(model.tree_count_)
    return int(model.get_booster().num_boosted_rounds())  # type: ignore[attr-defined]


@pytest.mark.parametrize("key", BOOSTING)
def test_bad_early_stopping_values_fail_as_training_errors(key: str) -> None:
    estimator = default_catalogue().create(key, "binary", seed=0, params={})
    estimator.set_params(validation_fraction=1.5)
    x, y = _data("binary")
    with pytest.raises(TrainingError, match="validation_fraction must be between 0 and 1"):
        refit(make_pipeline(SIG, estimator), x, y)


def test_the_validation_split_is_seeded_stratified_and_keeps_every_class() -> None:
    y = np.array(["a"] * 90 + ["b"] * 9 + ["c"])
    split = validation_split(y, 0.1, 0, stratify=True)
    assert split is not None
    assert sorted(set(y[split.fit])) == ["a", "b", "c"]  # the lone "c" stays in the fit part
    assert (y[split.valid] == "a").sum() == 9 and (y[split.valid] == "b").sum() == 1
    again = validation_split(y, 0.1, 0, stratify=True)
    assert again is not None and np.array_equal(split.valid, again.valid)
    other = validation_split(y, 0.1, 1, stratify=True)
    assert other is not None and not np.array_equal(split.valid, other.valid)
    assert validation_split(np.array(["a", "b"]), 0.1, 0, stratify=True) is None
    plain = validation_split(np.arange(50.0), 0.2, 0, stratify=False)
    assert plain is not None and len(plain.valid) == 10 and len(plain.fit) == 40


@pytest.mark.parametrize("key", BOOSTING)
def test_boosting_estimators_clone_pickle_and_cross_validate(key: str) -> None:
    model, x, y = _fit(key, "multiclass", {"learning_rate": 0.3})
    estimator = model[-1]
    copy = clone(estimator)
    assert type(copy) is type(estimator)
    assert copy.get_params() == estimator.get_params()
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict_proba(x), model.predict_proba(x))
    # a loaded model keeps every parameter (CatBoost pickles only its own): it can be listed,
    # cloned and refitted
    params = estimator.get_params()
    for loaded in (restored[-1], clone(restored[-1])):
        again = loaded.get_params()
        assert set(again) == set(params)
        assert all(again[k] == v or (v != v and again[k] != again[k]) for k, v in params.items())
    assert list(restored.predict(x[:5])) == list(model.predict(x[:5]))
    assert list(model[-1].classes_) == ["a", "b", "c"]
    features = model[:-1].transform(x)
    scores = sk_cross_validate(clone(estimator), features, y, cv=3)["test_score"]
    assert scores.mean() > 0.6


def _boosters_voting() -> tuple:
    """A soft vote of the three boosting families, refit on the binary data."""
    catalogue = default_catalogue()
    members = [
        (k, catalogue.create(k, "binary", seed=0, params={"learning_rate": 0.3})) for k in BOOSTING
    ]
    x, y = _data("binary")
    return refit(make_pipeline(SIG, VotingClassifier(members, voting="soft")), x, y), x, y


def test_boosting_estimators_vote_together() -> None:
    model, x, y = _boosters_voting()
    assert (model.predict(x) == y).mean() > 0.8


def _assert_onnx_predicts_as(model: Any, x: pd.DataFrame, task: str) -> None:
    outputs = _onnx_predictions(model, x)
    if task == "regression":
        np.testing.assert_allclose(outputs[0].ravel(), model.predict(x), rtol=1e-4)
    else:
        assert list(outputs[0]) == list(model.predict(x))
        np.testing.assert_allclose(outputs[1], model.predict_proba(x), atol=1e-5)


def _onnx_predictions(model: object, x: pd.DataFrame) -> list[np.ndarray]:
    import onnxruntime as ort

    from shipyard.train._onnx import convert_to_onnx
    from shipyard.train._onnx_boosters import register_booster_converters

    register_booster_converters()
    graph = convert_to_onnx(model, SIG)
    feed = {
        "x1": x[["x1"]].to_numpy(np.float32),
        "x2": x[["x2"]].to_numpy(np.float32),
        "c": x[["c"]].to_numpy().astype(str),
    }
    return list(ort.InferenceSession(graph).run(None, feed))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_lightgbm_estimator_converts_to_onnx_at_its_best_iteration(task: str) -> None:
    model, x, _ = _fit("lightgbm", task, n=400)
    assert model[-1].best_iteration_ < 1000
    _assert_onnx_predicts_as(model, x, task)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_xgboost_estimator_converts_to_onnx_at_its_best_iteration(
    task: str, full: bool
) -> None:
    # 400 rows: nearly every value is a threshold, and imputed ones repeat (float32 ties)
    model, x, _ = _fit("xgboost", task, n=400, full=full)
    if full:  # refit on every row for the rounds found: no early stopping, all its trees
        assert not hasattr(model[-1], "best_iteration")
    else:
        assert model[-1].best_iteration < 1000
    _assert_onnx_predicts_as(model, x, task)


def test_catboost_has_no_onnx_converter() -> None:
    from shipyard.train._onnx import OnnxConversionError

    model, x, _ = _fit("catboost", "binary", {"learning_rate": 0.3})
    with pytest.raises(OnnxConversionError, match="EarlyStoppingCatBoostClassifier"):
        _onnx_predictions(model, x)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_an_ensemble_of_whole_pipelines_converts_to_onnx(task: str) -> None:
    """The run's ensemble (a voting estimator over members' whole pipelines) is served from
    its ONNX graph like any candidate (the converter refuses ``flatten_transform``)."""
    from shipyard.train import ensemble_pipeline

    catalogue = default_catalogue()
    members = {
        k: make_pipeline(SIG, catalogue.create(k, task, seed=0, params=p))
        for k, p in (("lightgbm", {"learning_rate": 0.3}), ("xgboost", {"learning_rate": 0.3}))
    }
    members["linear"] = make_pipeline(SIG, catalogue.create("linear", task, seed=0, params={}))
    weights = {"lightgbm": 0.5, "xgboost": 0.25, "linear": 0.25}
    x, y = _data(task, n=400)
    model = refit(ensemble_pipeline(task, members, weights), x, y)
    _assert_onnx_predicts_as(model, x, task)


def test_an_ensemble_with_a_catboost_member_is_refused_before_any_member_converts() -> None:
    from shipyard.train._onnx import OnnxConversionError, convert_to_onnx

    model, _, _ = _boosters_voting()
    with pytest.raises(OnnxConversionError, match="EarlyStoppingCatBoostClassifier has no ONNX"):
        convert_to_onnx(model, SIG)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_lightgbm_splits_on_category_numbers_and_converts_to_onnx(task: str) -> None:
    """The run gives LightGBM the category inputs as numbers and their positions: it splits on
    them as categories (not as ordered numbers), and the graph gives the same predictions,
    for a category unseen in training too (LightGBM's missing)."""
    rng = np.random.default_rng(3)
    x, y = _data(task, n=600)
    # a category whose effect is not ordered: a tree on its numbers would need several splits
    codes = np.asarray(list("abcdefgh"), dtype=object)
    x["c"] = rng.choice(codes, size=len(x))
    effect = {"a": 2, "b": -2, "c": 2, "d": -2, "e": 2, "f": -2, "g": 2, "h": -2}
    if task == "regression":
        y = y + 1000 * x["c"].map(effect)
    else:
        flip = x["c"].map(effect).to_numpy() > 0
        y = pd.Series(np.where(flip, y.to_numpy(), y.to_numpy()[::-1]), dtype=object)
    estimator = default_catalogue().create("lightgbm", task, seed=0, params={})
    estimator.set_params(categorical_columns=[0])
    features = build_features(SIG, native_categories=True, task=task)
    model = refit(make_pipeline(SIG, estimator, features=features), x, y)
    trees = model[-1].booster_.dump_model()["tree_info"]
    kinds = {
        node.get("decision_type")
        for tree in trees
        for node in _nodes(tree["tree_structure"])
        if node.get("split_feature") == 0
    }
    assert "==" in kinds  # categorical splits on the first column
    test = x.iloc[:50].copy()
    test.loc[test.index[:5], "c"] = "never seen"
    _assert_onnx_predicts_as(model, test, task)


def _nodes(node: dict) -> list[dict]:
    out = [node]
    for side in ("left_child", "right_child"):
        if side in node:
            out += _nodes(node[side])
    return out
