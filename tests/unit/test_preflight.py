"""preflight: everything ``validate`` and ``run`` can check before a candidate is trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import DataError, DataValidationError, SpecError, TrainingError
from shipyard.pipeline import inspect_data, preflight
from shipyard.spec import ProjectSpec, load_spec


def _frame(counts: dict[str, int]) -> pd.DataFrame:
    labels = [label for label, n in counts.items() for _ in range(n)]
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=len(labels)),
            "colour": rng.choice(["red", "blue"], len(labels)),
            "label": labels,
        }
    )


def _spec(tmp_path: Path, body: str) -> ProjectSpec:
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        "name: demo\ndata:\n  source: {type: csv, path: d.csv}\n  target: label\n" + body
    )
    return load_spec(path)


def _check(spec: ProjectSpec, frame: pd.DataFrame) -> object:
    return preflight(spec, inspect_data(spec, frame))


def test_a_good_project_gets_its_plan(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "split: {cv_folds: 3}\nmodels:\n  - model: linear\n  - model: random_forest\n"
        "    params: {n_estimators: 5}\n",
    )
    frame = _frame({"a": 30, "b": 20})
    frame.loc[[0, 7], "label"] = None  # rows without a target are left out
    plan = preflight(spec, inspect_data(spec, frame))
    assert list(plan.estimators) == ["linear", "random_forest"]
    assert plan.estimators["random_forest"].get_params()["n_estimators"] == 5
    assert len(plan.frame) == len(plan.x) == len(plan.y) == 48
    assert len(plan.train_idx) + len(plan.test_idx) == 48
    assert len(plan.folds) == 3
    assert all(len(tr) + len(te) == len(plan.train_idx) for tr, te in plan.folds)
    assert set(plan.y) == {"a", "b"}


def test_every_candidate_problem_at_once_with_its_line(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "models:\n"
        "  - model: linear\n"  # line 6: fine
        "  - model: xgboostt\n"  # line 7: unknown key
        "  - model: random_forest\n"  # line 8
        "    params: {n_estimator: 5}\n"  # line 9: unknown parameter
        "  - model: extra_trees\n"  # line 10
        "    params: {n_estimators: -3}\n"  # line 11: a value the estimator refuses
        "  - model: linear_regression\n",  # line 12: not for classification
    )
    with pytest.raises(TrainingError) as info:
        _check(spec, _frame({"a": 30, "b": 20}))
    message = str(info.value)
    assert "4 problem(s) with the candidate models" in message
    assert "shipyard.yaml:7 (models[1].model): unknown model 'xgboostt'" in message
    assert "shipyard.yaml:9 (models[2].params): random_forest has no parameter" in message
    assert "'n_estimator' (did you mean 'n_estimators'?)" in message
    assert "shipyard.yaml:11 (models[3].params): bad parameters for extra_trees" in message
    assert "must be an int in the range [1, inf). Got -3" in message
    assert "shipyard.yaml:12 (models[4].model): model 'linear_regression' does not support" in (
        message
    )


def test_a_class_too_small_for_the_holdout_split(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "models: [{model: linear}]\n")
    with pytest.raises(DataError) as info:
        _check(spec, _frame({"a": 30, "b": 20, "c": 1}))
    message = str(info.value)
    assert "shipyard.yaml" in message and "(split.strategy)" in message
    assert "'c' (1 row)" in message and "split.strategy" in message


def test_a_class_too_small_for_the_cv_folds(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "split:\n  cv_folds: 5\nmodels: [{model: linear}]\n")
    with pytest.raises(DataError) as info:
        _check(spec, _frame({"a": 30, "b": 20, "c": 4}))
    message = str(info.value)
    assert "shipyard.yaml:6 (split.cv_folds)" in message
    assert "5-fold stratified cross-validation" in message
    assert "'c' (3 rows)" in message  # 4 rows, one of them held out
    assert "set split.cv_folds to 3" in message


def test_too_few_rows_for_the_folds_of_a_random_split(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "split: {strategy: random, cv_folds: 8, test_size: 0.5}\nmodels: [{model: linear}]\n",
    )
    with pytest.raises(DataError, match=r"split.cv_folds\).*8 folds.*7 rows"):
        _check(spec, _frame({"a": 7, "b": 7}))


def test_a_text_target_for_a_regression(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "task: regression\nmodels: [{model: linear}]\n")
    with pytest.raises(DataError) as info:
        _check(spec, _frame({"good": 30, "bad": 20}))
    message = str(info.value)
    assert "shipyard.yaml:5 (task)" in message and "not numbers" in message
    assert "'good'" in message


def test_candidates_are_checked_first_then_the_report(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "models: [{model: linear}]\n"
        "validation:\n  expectations:\n    - {check: range, column: x, min: 100}\n",
    )
    with pytest.raises(DataValidationError, match="range"):
        _check(spec, _frame({"a": 30, "b": 20}))
    bad_model = _spec(tmp_path, "models: [{model: nope}]\n")
    with pytest.raises(TrainingError, match="unknown model 'nope'"):
        _check(bad_model, _frame({"a": 30, "b": 20}))


def test_registry_names_are_checked_when_the_file_is_read(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"shipyard.yaml:6: registry.alias: found .Production."):
        _spec(tmp_path, "registry:\n  alias: Production\n")
    with pytest.raises(SpecError, match=r"shipyard.yaml:6: registry.model_name: found .my model."):
        _spec(tmp_path, "registry:\n  model_name: my model\n")


def test_a_regression_on_a_single_value(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "task: regression\nmodels: [{model: linear}]\n")
    frame = _frame({"a": 30})
    frame["label"] = 4.5
    with pytest.raises(
        DataError, match=r"the target 'label' has a single value 4.5.*check the data"
    ):
        _check(spec, frame)
