"""What a run keeps besides its model: the holdout curves (``curves.json``) and its log
(``run.log``), for every outcome of the run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import TrainingError
from shipyard.pipeline import Event, run_project
from shipyard.spec import load_spec
from shipyard.store import Store
from shipyard.tracking import Tracker

FAST = (
    "split: {cv_folds: 2}\nmodels: [{model: linear}]\n"
    "evaluation: {bootstrap: 0, explain: false, learning_curve: false}\n"
)
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  "


def _frame(task: str, n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=n), rng.normal(size=n)
    noisy = a + 0.8 * rng.normal(size=n)
    if task == "regression":
        target: object = 3 * a + b
    elif task == "binary":
        target = np.where(noisy > 0, "yes", "no")
    else:
        target = np.select([noisy < -0.5, noisy < 0.5], ["low", "mid"], "high")
    return pd.DataFrame({"a": a, "b": b, "target": target})


def _project(tmp_path: Path, frame: pd.DataFrame, extra: str = FAST) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    frame.to_csv(tmp_path / "data" / "train.csv", index=False)
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        "name: demo\ndata: {source: {type: csv, path: data/train.csv}, target: target}\n" + extra
    )
    return path


def _artifacts(store: Store, run_id: str) -> dict[str, bytes]:
    prefix = f"runs/{run_id}/"
    return {
        a.path.removeprefix(prefix): store.artifacts.get(a.path)
        for a in store.artifacts.list(prefix.rstrip("/"))
    }


def _run_page(store: Store, run_id: str) -> str:
    from starlette.testclient import TestClient

    from shipyard.ui import UiAuth, create_app

    with TestClient(create_app(store, auth=UiAuth()), base_url="http://127.0.0.1") as client:
        response = client.get(f"/runs/{run_id}")
    assert response.status_code == 200
    return response.text


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(root=tmp_path / ".shipyard")


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_classifier_run_stores_its_curves_and_its_log(
    tmp_path: Path, store: Store, task: str
) -> None:
    events: list[Event] = []
    result = run_project(
        load_spec(_project(tmp_path, _frame(task))), store=store, on_event=events.append
    )
    files = _artifacts(store, result.run_id)
    curves = json.loads(files["curves.json"])
    assert curves["format"] == 1 and curves["task"] == task == result.task
    labels = {"binary": ["yes"], "multiclass": ["high", "low", "mid"]}[task]
    assert [c["label"] for c in curves["roc"]] == labels == [c["label"] for c in curves["pr"]]
    roc = curves["roc"][0]
    assert len(roc["fpr"]) == len(roc["tpr"]) <= 200 and roc["fpr"][0] == 0.0
    if task == "binary":
        assert roc["auc"] == pytest.approx(result.holdout["roc_auc"], abs=1e-5)
        assert curves["pr"][0]["average_precision"] == pytest.approx(
            result.holdout["pr_auc"], abs=1e-5
        )
    log = files["run.log"].decode()
    lines = log.splitlines()
    assert all(re.match(STAMP, line) for line in lines)
    # every event the CLI showed, in order, with the CLI's words
    shown = [e.message for e in events if e.kind != "fold"]
    assert [line[26:] for line in lines[:-1] if "fold" not in line] == shown
    assert re.fullmatch(r"finished in \d+\.\d s", lines[-1][26:])
    assert "loading csv data" in lines[0] and "writing the HTML report" in log
    assert re.search(r"linear: fold 2 \(2/2\)", log)
    page = _run_page(store, result.run_id)  # the UI shows both
    assert (
        "Holdout ROC and precision-recall curves" in page and 'data-curves="curve-2-data"' in page
    )
    assert '<pre class="log"' in page and "refitting linear and evaluating on the holdout" in page
    store.close()


def test_a_regression_run_stores_its_log_and_no_curves(tmp_path: Path, store: Store) -> None:
    result = run_project(load_spec(_project(tmp_path, _frame("regression"))), store=store)
    files = _artifacts(store, result.run_id)
    assert "curves.json" not in files and "run.log" in files
    store.close()


def test_a_failed_run_keeps_its_log_ending_with_the_error(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.pipeline import _run

    def broken(*args: object, **kwargs: object) -> None:
        raise TrainingError("the refit broke at postgresql://ana:s3cret@db/x")

    monkeypatch.setattr(_run, "refit_best", broken)
    spec = load_spec(_project(tmp_path, _frame("binary")))
    with pytest.raises(TrainingError, match="refit broke"):
        run_project(spec, store=store)
    (run,) = Tracker(store).search_runs(parent_id=None)
    assert run.status == "failed"
    log = _artifacts(store, run.id)["run.log"].decode()
    last = log.splitlines()[-1]
    assert "failed: TrainingError: the refit broke at postgresql://ana:***@db/x" in last
    assert "s3cret" not in log and "refitting linear" in log
    store.close()


def test_curves_that_cannot_be_computed_are_a_warning_not_a_failure(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.pipeline import _run

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("no curve today")

    monkeypatch.setattr(_run, "curve_points", broken)
    events: list[Event] = []
    spec = load_spec(_project(tmp_path, _frame("binary")))
    result = run_project(spec, store=store, on_event=events.append)
    assert result.model_uri == "models:/demo@production"
    warning = "no curves.json: ValueError: no curve today"
    assert warning in [e.message for e in events if e.kind == "warning"]
    files = _artifacts(store, result.run_id)
    assert "curves.json" not in files
    log = files["run.log"].decode()
    assert f"warning: {warning}" in log
    assert "warning [shipyard.pipeline._run]: could not store the curves" in log
    store.close()
