"""The model catalogue and cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold, StratifiedKFold

from shipyard.data import ColumnSchema, Signature
from shipyard.errors import TrainingError
from shipyard.train import cross_validate, default_catalogue, make_pipeline, predict_evaluate, refit

SIG = Signature(
    inputs=(
        ColumnSchema(name="x1", kind="number", dtype="float64", nullable=True),
        ColumnSchema(
            name="c", kind="category", dtype="object", nullable=False, categories=("p", "q")
        ),
    ),
)


def _data(task: str, n: int = 120) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(1)
    x1 = rng.normal(size=n)
    c = rng.choice(["p", "q"], size=n)
    x = pd.DataFrame({"x1": x1, "c": np.asarray(c, dtype=object)})
    x.loc[::17, "x1"] = np.nan
    signal = np.nan_to_num(x1) + (c == "p")
    if task == "regression":
        return x, pd.Series(signal + rng.normal(0, 0.1, n))
    if task == "binary":
        return x, pd.Series(np.where(signal > 0.5, "yes", "no"), dtype=object)
    return x, pd.Series(np.asarray(["a", "b", "c"], dtype=object)[np.digitize(signal, [0.0, 1.0])])


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("key", default_catalogue().keys())
def test_every_entry_trains_for_the_tasks_it_claims(key: str, task: str) -> None:
    catalogue = default_catalogue()
    if task not in catalogue.get(key).tasks:
        with pytest.raises(TrainingError, match="does not support task"):
            catalogue.create(key, task, seed=0, params={})
        return
    params = {"n_estimators": 10} if key in ("random_forest", "extra_trees", "lightgbm") else {}
    estimator = catalogue.create(key, task, seed=0, params=params)
    x, y = _data(task)
    model = refit(make_pipeline(SIG, estimator), x, y)
    classes = None if task == "regression" else sorted(set(y))
    ev = predict_evaluate(model, x, y, task=task, classes=classes)
    key_metric = "r2" if task == "regression" else "accuracy"
    assert ev.metrics[key_metric] > 0.5


def test_unknown_model_and_param_errors_name_the_place() -> None:
    catalogue = default_catalogue()
    with pytest.raises(
        TrainingError, match=r"shipyard.yaml:9.*unknown model 'lightgmb'.*did you mean 'lightgbm'"
    ):
        catalogue.create("lightgmb", "binary", seed=0, params={}, where="shipyard.yaml:9")
    with pytest.raises(
        TrainingError, match=r"no parameter 'n_estimator' \(did you mean 'n_estimators'"
    ):
        catalogue.create("random_forest", "binary", seed=0, params={"n_estimator": 5})


def test_unknown_params_point_at_the_params_line() -> None:
    with pytest.raises(TrainingError, match=r"^shipyard.yaml:11: random_forest has no parameter"):
        default_catalogue().create(
            "random_forest",
            "binary",
            seed=0,
            params={"n_estimator": 5},
            where="shipyard.yaml:10",
            params_where="shipyard.yaml:11",
        )


def test_bad_param_value_is_a_training_error_before_any_fit() -> None:
    with pytest.raises(
        TrainingError,
        match=r"bad parameters for random_forest: The 'n_estimators' parameter of "
        r"RandomForestClassifier must be an int in the range \[1, inf\)\. Got -3",
    ):
        default_catalogue().create("random_forest", "binary", seed=0, params={"n_estimators": -3})


def test_a_value_only_the_library_checks_is_a_training_error_at_fit() -> None:
    estimator = default_catalogue().create("lightgbm", "binary", seed=0, params={"num_leaves": 1})
    x, y = _data("binary")
    with pytest.raises(TrainingError, match=r"LGBMClassifier failed to fit: .*num_leaves"):
        refit(make_pipeline(SIG, estimator), x, y)


def test_cross_validate_reports_folds_and_is_reproducible() -> None:
    x, y = _data("binary")
    seen: list[int] = []
    est = default_catalogue().create("lightgbm", "binary", seed=3, params={"n_estimators": 20})
    cv = StratifiedKFold(4, shuffle=True, random_state=0)

    def run() -> dict[str, float]:
        return cross_validate(
            make_pipeline(SIG, est),
            x,
            y,
            cv=cv,
            task="binary",
            classes=["no", "yes"],
            on_fold=lambda i, s: seen.append(i),
        ).mean

    first = run()
    assert seen == [0, 1, 2, 3]
    assert first == run()
    assert 0.5 < first["accuracy"] <= 1.0


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_cross_validate_counts_a_boosters_trees_what_its_conversion_costs(task: str) -> None:
    x, y = _data(task, n=300)
    classes = None if task == "regression" else sorted(set(y))
    cv = KFold(3, shuffle=True, random_state=0)
    catalogue = default_catalogue()
    per_round = len(classes) if task == "multiclass" else 1  # a tree per class each round
    for key in ("lightgbm", "xgboost"):
        est = catalogue.create(key, task, seed=0, params={"n_estimators": 20})
        result = cross_validate(make_pipeline(SIG, est), x, y, cv=cv, task=task, classes=classes)
        assert 0 < result.trees <= 20 * per_round
    linear = catalogue.create("linear", task, seed=0, params={})
    result = cross_validate(make_pipeline(SIG, linear), x, y, cv=cv, task=task, classes=classes)
    assert result.trees == 0


def test_cross_validate_regression_std() -> None:
    x, y = _data("regression")
    result = cross_validate(
        make_pipeline(SIG, default_catalogue().create("ridge", "regression", seed=0, params={})),
        x,
        y,
        cv=KFold(3),
        task="regression",
        classes=None,
    )
    assert len(result.folds) == 3
    assert result.std["rmse"] >= 0 and result.mean["r2"] > 0.5
