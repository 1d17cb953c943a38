"""Monitoring a served model end to end: train, serve with a prediction log, send shifted
traffic over HTTP, stop the server, and check: the shifted inputs drift, the others do not.

The log goes to Parquet files (SQLite store) and to a PostgreSQL table (PostgreSQL store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from _served import serving

from cli_runner import cli
from shipyard.pipeline import add_labels, check_model, run_project
from shipyard.registry import MonitorHistory, Registry
from shipyard.spec import load_spec
from shipyard.store import Store, read_predictions
from webhook_receiver import Receiver

SPEC = """\
name: cancer
data:
  source: {type: csv, path: data/train.csv}
  target: target
models:
  - model: linear
monitoring:
  reference_rows: 300
"""
SHIFTED = ("mean_radius", "worst_area", "worst_radius", "worst_perimeter")  # x 1.5: the
# model's accuracy falls from about 0.96 on the holdout to about 0.86


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str | None]]:
    """A trained ``cancer`` model in ``tmp_path``, and the PostgreSQL URL of its store and
    log (``None``: SQLite store, Parquet log)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["target"] = np.where(frame["target"] == 1, "benign", "malignant")
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "train.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(SPEC)
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    store = Store.open(url, root=tmp_path / ".shipyard")
    try:
        run_project(load_spec(tmp_path / "shipyard.yaml"), store=store)
    finally:
        store.close()
    yield tmp_path, url


def test_shifted_traffic_drifts_and_the_check_is_recorded(home: tuple[Path, str | None]) -> None:
    root, url = home
    store = Store.open(url, root=root / ".shipyard")
    package = Registry(store).load("models:/cancer@production")
    reference = package.reference
    assert reference is not None
    assert len(reference.inputs()) == 300  # bounded by monitoring.reference_rows
    assert set(reference.predictions().columns) == {
        "prediction",
        "proba.benign",
        "proba.malignant",
        "target",
    }
    full = pd.read_csv(root / "data" / "train.csv")
    sample = full.sample(400, random_state=3, replace=True).reset_index(drop=True)
    shifted = sample.drop(columns="target")
    for column in SHIFTED:
        shifted[column] = shifted[column] * 1.5
    records = shifted.to_dict("records")
    log = url or str(root / ".shipyard" / "predictions")
    options = ["--prediction-log", log, "--prediction-log-flush-seconds", "0.2"]
    ids = []
    with (
        serving(root, "models:/cancer@production", "--workers", "1", *options, store=url) as served,
        httpx.Client(base_url=f"http://127.0.0.1:{served.port}", timeout=30) as client,
    ):
        for start in range(0, len(records), 50):
            response = client.post("/predict", json=records[start : start + 50])
            assert response.status_code == 200, response.text
            ids += [p["prediction_id"] for p in response.json()["predictions"]]
    # the server drained on SIGTERM: every prediction is in the log, under the id it returned
    logged = read_predictions(log, model="cancer")
    assert sorted(logged["prediction_id"]) == sorted(ids)
    # inputs scaled past the training range are flagged (--ood flag, the default), by field
    flags = [f for f in logged["ood"] if isinstance(f, str)]
    assert 0 < len(flags) < 400
    assert {tag for f in flags for tag in f.split(";")} <= {f"{c}:above_range" for c in SHIFTED}
    labels = pd.DataFrame({"prediction_id": ids, "label": sample["target"]})
    try:
        ingest = add_labels(labels, store=store, model="cancer", predictions=log)
        assert (ingest.n_added, ingest.n_unknown, ingest.n_duplicates) == (400, 0, 0)
        result = check_model("models:/cancer@production", store=store, predictions=log)
        drifted = {c.column for c in result.inputs.columns if c.drifted}
        assert set(SHIFTED) <= drifted
        assert len(drifted) <= 12  # of 30; correlated features may move with the shifted ones
        assert result.inputs.n_current == 400
        assert result.check is not None
        [recorded] = MonitorHistory(store).checks("cancer")
        assert recorded.id == result.check.id and recorded.n_drifted == len(drifted)
        roc_auc = result.performance.metric("roc_auc")
        assert roc_auc.n_labelled == 400
        assert roc_auc.reference is not None and roc_auc.reference > 0.9  # the holdout's
        assert roc_auc.realised is not None and roc_auc.estimated is not None
        stored = {m.metric: m for m in MonitorHistory(store).get(recorded.id).performance}
        assert stored["roc_auc"].realised == pytest.approx(roc_auc.realised)
    finally:
        store.close()


def test_the_loop_drift_labels_one_alert_and_a_retrained_challenger_judged_by_the_gate(
    home: tuple[Path, str | None], capsys: pytest.CaptureFixture[str]
) -> None:
    """Serve, send shifted traffic, ingest labels, check twice with an alert rule and
    --retrain: the webhook gets exactly one alert, and a new version is trained on the
    project's data and judged by the champion/challenger gate."""
    root, url = home
    store_args = ["--store", url] if url is not None else []
    full = pd.read_csv(root / "data" / "train.csv")
    sample = full.sample(300, random_state=5, replace=True).reset_index(drop=True)
    shifted = sample.drop(columns="target")
    for column in SHIFTED:
        shifted[column] = shifted[column] * 1.5
    log = url or str(root / ".shipyard" / "predictions")
    options = ["--prediction-log", log, "--prediction-log-flush-seconds", "0.2"]
    with (
        serving(root, "models:/cancer@production", "--workers", "1", *options, store=url) as served,
        httpx.Client(base_url=f"http://127.0.0.1:{served.port}", timeout=30) as client,
    ):
        response = client.post("/predict", json=shifted.to_dict("records"))
        assert response.status_code == 200, response.text
        ids = [p["prediction_id"] for p in response.json()["predictions"]]
    pd.DataFrame({"prediction_id": ids, "label": sample["target"]}).to_csv(
        root / "labels.csv", index=False
    )
    receiver = Receiver()
    try:
        (root / "shipyard.yaml").write_text(
            SPEC
            + "  alerts:\n"
            + f"    webhook: {receiver.url}\n"
            + "    rules:\n"
            + "      - {signal: drift_share, above: 0.05}\n"
        )
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SHIPYARD_HOME", str(root / ".shipyard"))
            mp.chdir(root)
            code, out = cli(
                capsys,
                *store_args,
                "labels",
                "add",
                "labels.csv",
                "--model",
                "cancer",
                "--predictions",
                log,
            )
            assert code == 0 and "Added 300 of 300 labels" in out, out
            args = [*store_args, "monitor", "models:/cancer@production", "--predictions", log]
            code, out = cli(capsys, *args, "--retrain")
            assert code == 0, out
            assert "Alert drift_share > 0.05: firing" in out
            assert "Performance: 300 of 300 predictions labelled" in out
            assert "Retraining shipyard.yaml because drift_share > 0.05" in out
            # same data, same seed: the challenger ties the champion, and a tie keeps it
            assert "Registered cancer version 2: not promoted" in out
            code, out = cli(capsys, *args)
            assert "still firing" in out
            code, out = cli(capsys, *args, "--no-record", "--format", "json")
            decay = {m["metric"]: m for m in json.loads(out)["performance"]["metrics"]}
            accuracy = decay["accuracy"]
            assert accuracy["n_labelled"] == 300
            assert accuracy["realised"] < accuracy["reference"] - 0.05  # the decay
            assert accuracy["drop"] > 0.05
    finally:
        receiver.close()
    assert [b["status"] for b in receiver.bodies] == ["firing"]
    store = Store.open(url, root=root / ".shipyard")
    try:
        registry = Registry(store)
        assert registry.resolve("models:/cancer@production").version == 1
        assert registry.resolve("models:/cancer/2").run_id is not None
        assert len(MonitorHistory(store).checks("cancer")) == 2
    finally:
        store.close()
