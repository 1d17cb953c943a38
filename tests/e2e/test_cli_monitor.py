"""``shipyard monitor`` and ``shipyard drift``: verdicts, formats, exit codes, the history."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cli_runner import cli, run_cli
from shipyard.data import ColumnSchema, Signature
from shipyard.errors import ShipyardError
from shipyard.model import ReferenceSample
from shipyard.registry import ModelPackage, MonitorHistory, Registry
from shipyard.store import ParquetSink, PredictionEntry, Store, read_predictions
from webhook_receiver import Receiver

NUMBERS = ["bill_length_mm", "flipper_length_mm", "body_mass_g"]
INPUTS = ["island", *NUMBERS]
EXIT_DRIFT = 3


def _package(frame: pd.DataFrame) -> ModelPackage:
    x, y = frame[INPUTS], frame["species"]
    features = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
            ("island", OneHotEncoder(handle_unknown="ignore"), ["island"]),
        ]
    )
    model = make_pipeline(features, LogisticRegression(max_iter=2_000)).fit(x, y)
    signature = Signature(
        inputs=(
            ColumnSchema(name="island", kind="category", dtype="object", nullable=True),
            *(ColumnSchema(name=n, kind="number", dtype="float64", nullable=True) for n in NUMBERS),
        ),
        classes=tuple(str(c) for c in model.classes_),
    )
    proba = model.predict_proba(x)
    predictions = pd.DataFrame({"prediction": model.predict(x).astype(str)})
    for i, cls in enumerate(model.classes_):
        predictions[f"proba.{cls}"] = proba[:, i]
    reference = ReferenceSample.build(x, predictions, max_rows=5_000, seed=0)
    return ModelPackage(model, signature, "multiclass", {}, reference=reference)


def _log(home: Path, package: ModelPackage, frame: pd.DataFrame, ts: float) -> None:
    """Log ``frame``'s rows as served predictions of penguins/1 at time ``ts``."""
    x = frame[INPUTS]
    labels = package.pipeline.predict(x)
    proba = package.pipeline.predict_proba(x)
    classes = [str(c) for c in package.pipeline.classes_]
    entries = []
    for i, record in enumerate(x.astype(object).where(x.notna(), None).to_dict("records")):
        output = {
            "prediction": str(labels[i]),
            "probabilities": dict(zip(classes, map(float, proba[i]), strict=True)),
        }
        entries.append(PredictionEntry(f"r{ts}-{i}", ts, "penguins", "1", [record], [output], 1.0))
    sink = ParquetSink(home / ".shipyard" / "predictions")
    sink.write(sink.encode(entries))
    sink.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``models:/penguins/1`` (aliased production) with a day of unshifted predictions two
    days ago and an hour of shifted ones now (bill length + 10 mm, body mass + 30%)."""
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_ARTIFACT_ROOT", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    frame = load_penguins()
    package = _package(frame)
    store = Store.from_env(None, root=tmp_path / ".shipyard")
    try:
        registry = Registry(store)
        registry.register("penguins", package)
        registry.promote("penguins", 1, "production", moved_by="test", reason="first")
    finally:
        store.close()
    now = time.time()
    _log(tmp_path, package, frame.sample(300, random_state=1), now - 2 * 86_400)
    shifted = frame.sample(300, random_state=2).assign(
        bill_length_mm=lambda f: f["bill_length_mm"] + 10,
        body_mass_g=lambda f: f["body_mass_g"] * 1.3,
    )
    _log(tmp_path, package, shifted, now - 60)
    return tmp_path


def test_monitor_finds_the_shifted_columns_in_the_last_hour(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, err = run_cli(
        capsys, "monitor", "models:/penguins@production", "--window", "1h", "--format", "json"
    )
    assert code == 0, err
    result = json.loads(out)
    verdicts = {c["column"]: c["drifted"] for c in result["inputs"]["columns"]}
    assert verdicts == {
        "island": False,
        "bill_length_mm": True,
        "flipper_length_mm": False,
        "body_mass_g": True,
    }
    assert result["inputs"]["drifted"] is True  # 2 of 4 reaches the default share of 0.5
    assert result["inputs"]["n_current"] == 300
    assert result["predictions"]["columns"][0]["column"] == "prediction"
    assert result["version"] == 1 and result["check_id"]


def test_an_unshifted_window_does_not_drift_and_checks_are_recorded_as_a_series(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    three_days_ago = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=3)
    yesterday = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)
    code, out = cli(
        capsys,
        "monitor",
        "models:/penguins/1",
        "--since",
        three_days_ago.isoformat(),
        "--until",
        yesterday.isoformat(),
    )
    assert code == 0, out
    assert "Inputs of penguins/1: no drift: 0 of 4 column(s) drifted" in out
    assert "300 rows against 344 reference rows" in out
    code, out = cli(capsys, "monitor", "models:/penguins/1", "--window", "1h")
    assert code == 0, out
    assert "Inputs of penguins/1: drifted: 2 of 4 column(s) drifted" in out
    store = Store.from_env(None, root=home / ".shipyard")
    try:
        checks = MonitorHistory(store).checks("penguins", version=1)
        assert [c.drifted for c in checks] == [False, True]
        assert [c.n_drifted for c in checks] == [0, 2]
        detail = MonitorHistory(store).get(checks[-1].id)
    finally:
        store.close()
    by_column = {(r.section, r.column): r for r in detail.results}
    assert by_column["inputs", "bill_length_mm"].drifted is True
    assert by_column["inputs", "bill_length_mm"].method == "ks"
    assert ("predictions", "prediction") in by_column


def test_fail_on_drift_exits_3_and_no_record_keeps_the_history_empty(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out = cli(
        capsys, "monitor", "models:/penguins/1", "--window", "1h", "--fail-on-drift", "--no-record"
    )
    assert code == EXIT_DRIFT, out
    assert "Recorded check" not in out
    store = Store.from_env(None, root=home / ".shipyard")
    try:
        assert MonitorHistory(store).checks("penguins") == []
    finally:
        store.close()


def test_project_settings_change_the_tests(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    (home / "shipyard.yaml").write_text(
        "name: penguins\n"
        "data: {source: {type: csv, path: data.csv}, target: species}\n"
        "monitoring:\n"
        "  drift:\n"
        "    drift_share: 0.75\n"
        "    columns:\n"
        "      body_mass_g: {method: psi, threshold: 0.2}\n"
        "      island: {ignore: true}\n"
    )
    code, out, err = run_cli(
        capsys, "monitor", "models:/penguins/1", "--window", "1h", "--format", "json"
    )
    assert code == 0, err
    inputs = json.loads(out)["inputs"]
    columns = {c["column"]: c for c in inputs["columns"]}
    assert "island" not in columns
    assert columns["body_mass_g"]["method"] == "psi"
    assert columns["body_mass_g"]["threshold"] == 0.2
    assert inputs["drift_share"] == 0.75 and inputs["drifted"] is False  # 2 of 3 < 0.75


def test_an_empty_window_is_a_clear_error(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, out = cli(
        capsys, "monitor", "models:/penguins/1", "--since", "2001-01-01", "--until", "2001-01-02"
    )
    assert code == 1
    assert "holds no predictions of penguins/1 from 2001-01-01" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--window", "1x"], "window '1x' is not a duration"),
        (["--window", "1h", "--since", "2024-01-01"], "either --window or --since"),
        (["--since", "yesterday"], "--since/--until"),
        (["--since", "2024-02-01", "--until", "2024-01-01"], "is after until"),
    ],
)
def test_bad_windows_are_usage_errors(
    capsys: pytest.CaptureFixture[str], home: Path, args: list[str], expected: str
) -> None:
    code, out = cli(capsys, "monitor", "models:/penguins/1", *args)
    assert code == 1
    assert expected in out
    assert "Traceback" not in out


def test_a_model_without_a_reference_sample_says_to_run_again(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    store = Store.from_env(None, root=home / ".shipyard")
    try:
        registry = Registry(store)
        old = registry.load("models:/penguins/1")
        registry.register("penguins", ModelPackage(old.pipeline, old.signature, old.task, {}))
    finally:
        store.close()
    code, out = cli(capsys, "monitor", "models:/penguins/2")
    assert code == 1
    assert "registered without a reference sample" in out


def _files(tmp_path: Path, shift: float) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "x": rng.normal(size=2_000),
            "y": rng.normal(size=2_000),
            "c": rng.choice(["a", "b"], 2_000),
        }
    )
    current = pd.DataFrame(
        {
            "x": rng.normal(shift, 1, size=1_500),
            "y": rng.normal(size=1_500),
            "c": rng.choice(["a", "b"], 1_500),
        }
    )
    ref_path, cur_path = tmp_path / "reference.parquet", tmp_path / "current.csv"
    reference.to_parquet(ref_path)
    current.to_csv(cur_path, index=False)
    return ref_path, cur_path


def test_drift_compares_two_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ref, cur = _files(tmp_path, shift=0.5)
    code, out, err = run_cli(capsys, "drift", str(ref), str(cur), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert {c["column"]: c["drifted"] for c in report["columns"]} == {
        "x": True,
        "y": False,
        "c": False,
    }
    assert [c["method"] for c in report["columns"]] == [
        "wasserstein",
        "wasserstein",
        "jensenshannon",
    ]
    code, out = cli(
        capsys,
        "drift",
        str(ref),
        str(cur),
        "--method",
        "psi",
        "--fail-on-drift",
        "--drift-share",
        "0.3",
    )
    assert code == EXIT_DRIFT, out
    assert "drifted: 1 of 3 column(s) drifted" in out


def test_drift_errors_name_the_file_and_the_method(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ref, cur = _files(tmp_path, shift=0.0)
    code, out = cli(capsys, "drift", str(ref), str(tmp_path / "missing.csv"))
    assert code == 1 and "missing.csv does not exist" in out
    code, out = cli(capsys, "drift", str(ref), str(cur), "--method", "kss")
    assert code == 1 and "unknown drift method 'kss'; did you mean 'ks'?" in out
    code, out = cli(capsys, "drift", str(ref), str(cur), "--method", "ks")
    assert code == 1 and "column 'c' is categorical" in out
    pd.DataFrame({"x": [1.0]}).to_csv(tmp_path / "narrow.csv", index=False)
    code, out = cli(capsys, "drift", str(ref), str(tmp_path / "narrow.csv"))
    assert code == 1 and "narrow.csv has no column 'y'" in out


def _labels_file(home: Path, *, key: str = "prediction_id", wrong: int = 0) -> Path:
    """A labels file for the last hour's predictions: the true species for the logged rows
    (the log has the inputs; the penguins frame has the species for the same rows)."""
    logged = read_predictions(home / ".shipyard" / "predictions", model="penguins")
    recent = logged[logged["ts"] > pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)]
    frame = load_penguins().sample(300, random_state=2).reset_index(drop=True)
    labels = pd.DataFrame(
        {key: recent["prediction_id"].to_numpy(), "label": frame["species"].to_numpy()}
    )
    if wrong:
        labels.loc[: wrong - 1, "label"] = "Gentoo"
    path = home / "labels.csv"
    labels.to_csv(path, index=False)
    return path


def test_labels_join_by_prediction_id_and_the_check_shows_realised_metrics(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = _labels_file(home)
    code, out = cli(capsys, "labels", "add", str(path), "--model", "penguins")
    assert code == 0, out
    assert "Added 300 of 300 labels for penguins (by prediction_id)" in out
    assert "match no logged prediction" not in out
    code, out, err = run_cli(
        capsys, "monitor", "models:/penguins/1", "--window", "1h", "--format", "json"
    )
    assert code == 0, err
    performance = json.loads(out)["performance"]
    assert performance["n_labelled"] == 300 and performance["n_predictions"] == 300
    metrics = {m["metric"]: m for m in performance["metrics"]}
    accuracy = metrics["accuracy"]
    assert accuracy["realised"] is not None and accuracy["estimated"] is not None
    assert accuracy["reference"] is None  # this test package recorded no holdout metrics
    # the shifted bills fool the model: realised accuracy falls below its own estimate
    assert accuracy["realised"] < accuracy["estimated"]
    code, out = cli(capsys, "monitor", "models:/penguins/1", "--window", "1h")
    assert "Performance: 300 of 300 predictions labelled" in out
    assert "realised" in out


def test_repeated_known_and_unknown_keys_are_reported_never_dropped_silently(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = _labels_file(home)
    extra = pd.DataFrame(
        {"prediction_id": ["nope-1", "nope-2", None], "label": ["Adelie", "Adelie", "Adelie"]}
    )
    frame = pd.concat([pd.read_csv(path).head(3), pd.read_csv(path).head(1), extra])
    frame.to_csv(path, index=False)
    code, out = cli(capsys, "labels", "add", str(path), "--model", "penguins")
    assert code == 0, out
    assert "Added 5 of 7 labels" in out
    assert "1 row(s) without a key or a label were skipped" in out
    assert "1 key(s) repeated in the source; the first label was kept" in out
    assert "2 key(s) match no logged prediction" in out and "nope-1" in out
    code, out = cli(capsys, "labels", "add", str(path), "--model", "penguins")
    assert "Added 0 of 7 labels" in out
    assert "5 key(s) already had a label, kept (--replace replaces them)" in out
    code, out = cli(capsys, "labels", "add", str(path), "--model", "penguins", "--replace")
    assert "Added 5 of 7 labels" in out and "replaced" in out


def test_labels_by_a_request_field(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    logged = read_predictions(home / ".shipyard" / "predictions", model="penguins")
    recent = logged[logged["ts"] > pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)]
    by_mass = recent.drop_duplicates("input.body_mass_g").dropna(subset=["input.body_mass_g"])
    labels = pd.DataFrame(
        {"body_mass_g": by_mass["input.body_mass_g"], "species": by_mass["prediction"]}
    )
    labels.to_parquet(home / "labels.parquet")
    code, out = cli(
        capsys,
        "labels",
        "add",
        str(home / "labels.parquet"),
        "--model",
        "penguins",
        "--key",
        "body_mass_g",
        "--label-column",
        "species",
    )
    assert code == 0, out
    assert f"Added {len(labels)} of {len(labels)} labels" in out
    code, out, _ = run_cli(
        capsys, "monitor", "models:/penguins/1", "--window", "1h", "--format", "json"
    )
    performance = json.loads(out)["performance"]
    # every logged row whose mass was labelled joins, repeated masses included
    assert performance["n_labelled"] == int(recent["input.body_mass_g"].notna().sum())
    accuracy = {m["metric"]: m for m in performance["metrics"]}["accuracy"]
    # each row is labelled with the first answer logged for its mass: the same join by hand
    first = dict(zip(by_mass["input.body_mass_g"], by_mass["prediction"], strict=True))
    joined = recent.dropna(subset=["input.body_mass_g"])
    expected = (joined["input.body_mass_g"].map(first) == joined["prediction"]).mean()
    assert accuracy["realised"] == pytest.approx(expected)


def test_labels_errors_name_the_column_and_the_model(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = _labels_file(home)
    code, out = cli(capsys, "labels", "add", str(path), "--model", "penguins", "--key", "id")
    assert code == 1 and "has no column 'id'" in out and "--key" in out
    code, out = cli(capsys, "labels", "add", str(path), "--model", "nope")
    assert code == 1 and "nope" in out
    code, out = cli(capsys, "labels", "add", "postgresql://x/y", "--model", "penguins")
    assert code == 1 and "need a query" in out
    code, out = cli(capsys, "labels", "add", str(home / "labels.json"), "--model", "penguins")
    assert code == 1 and "cannot read labels from" in out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _alerting_project(home: Path, url: str, retries: int = 3) -> None:
    (home / "shipyard.yaml").write_text(
        "name: penguins\n"
        "data: {source: {type: csv, path: data.csv}, target: species}\n"
        "monitoring:\n"
        "  alerts:\n"
        f"    webhook: {url}\n"
        f"    retries: {retries}\n"
        "    rules:\n"
        "      - {signal: drift_share, above: 0.3}\n"
        "      - {signal: missing_increase, above: 0.5, name: inputs went missing}\n"
        "      - {signal: accuracy_drop, above: 0.05}\n"
    )


def _old_window() -> list[str]:
    now = pd.Timestamp.now(tz="UTC")
    return [
        "--since",
        (now - pd.Timedelta(days=3)).isoformat(),
        "--until",
        (now - pd.Timedelta(days=1)).isoformat(),
    ]


def test_an_incident_is_notified_once_when_it_opens_and_once_when_it_resolves(
    capsys: pytest.CaptureFixture[str], home: Path, receiver: Receiver
) -> None:
    _alerting_project(home, receiver.url)
    code, out = cli(capsys, "monitor", "models:/penguins@production", "--window", "1h")
    assert code == 0, out
    assert "Alert drift_share > 0.3: firing (0.5)" in out
    assert [b["status"] for b in receiver.bodies] == ["firing"]
    first = receiver.bodies[0]
    assert first["model"] == "penguins" and first["version"] == 1
    assert first["rule"] == "drift_share > 0.3" and first["value"] == 0.5
    assert "is firing" in str(first["text"])
    # the same drift again: the incident is ongoing, nothing is sent
    code, out = cli(capsys, "monitor", "models:/penguins@production", "--window", "1h")
    assert "still firing" in out
    assert len(receiver.bodies) == 1
    # a quiet window resolves it, with one more notice
    code, out = cli(capsys, "monitor", "models:/penguins@production", *_old_window())
    assert "Resolved drift_share > 0.3 (0)" in out
    assert [b["status"] for b in receiver.bodies] == ["firing", "resolved"]
    assert receiver.bodies[1]["incident_id"] == first["incident_id"]
    store = Store.from_env(None, root=home / ".shipyard")
    try:
        [incident] = MonitorHistory(store).incidents("penguins")
    finally:
        store.close()
    assert not incident.is_open and incident.open_notified and incident.resolve_notified


def test_a_webhook_that_fails_is_retried_with_backoff_then_at_the_next_check(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    receiver = Receiver(failures=3)  # the first check's 2 attempts fail, and one more
    try:
        _alerting_project(home, receiver.url, retries=1)
        code, out = cli(capsys, "monitor", "models:/penguins/1", "--window", "1h")
        assert code == 0, out
        assert receiver.attempts == 2 and receiver.bodies == []
        assert "Undelivered firing notice of drift_share > 0.3" in out
        code, out = cli(capsys, "monitor", "models:/penguins/1", "--window", "1h")
        # the missed notice is sent again (attempt 3 fails, 4 succeeds), once
        assert receiver.attempts == 4
        assert [b["status"] for b in receiver.bodies] == ["firing"]
        assert receiver.bodies[0]["check_id"] is None  # a re-sent notice
    finally:
        receiver.close()


def test_rules_without_a_record_only_report(
    capsys: pytest.CaptureFixture[str], home: Path, receiver: Receiver
) -> None:
    _alerting_project(home, receiver.url)
    code, out, err = run_cli(
        capsys,
        "monitor",
        "models:/penguins/1",
        "--window",
        "1h",
        "--no-record",
        "--format",
        "json",
    )
    assert code == 0, err
    result = json.loads(out)
    rules = {r["rule"]: r for r in result["alerts"]}
    assert rules["drift_share > 0.3"]["firing"] is True
    assert rules["inputs went missing"]["firing"] is False
    assert rules["accuracy_drop > 0.05"]["firing"] is None  # no holdout accuracy to compare
    assert receiver.bodies == []
    assert result["signals"]["drift_share"] == 0.5


def test_retrain_needs_a_project(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, out = cli(capsys, "monitor", "models:/penguins/1", "--window", "1h", "--retrain")
    assert code == 1 and "--retrain runs the project" in out


def test_monitor_writes_a_self_contained_report_with_the_history(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = _labels_file(home)
    cli(capsys, "labels", "add", str(path), "--model", "penguins")
    cli(capsys, "monitor", "models:/penguins/1", *_old_window())
    code, out = cli(
        capsys, "monitor", "models:/penguins/1", "--window", "1h", "--report", "check.html"
    )
    assert code == 0, out
    assert "Report: check.html" in out
    html = (home / "check.html").read_text()
    assert html.index("drifted") < html.index("bill_length_mm")  # the verdict comes first
    assert "http://" not in html and "https://" not in html
    assert html.count("data:image/png;base64,") >= 4  # 2 drifted inputs, predictions, history
    assert "Performance" in html and not list(home.glob(".check.html*"))


def test_drift_writes_a_report_and_a_bad_report_path_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ref, cur = _files(tmp_path, shift=0.5)
    code, out = cli(capsys, "drift", str(ref), str(cur), "--report", str(tmp_path / "d.html"))
    assert code == 0, out
    html = (tmp_path / "d.html").read_text()
    assert "current.csv against reference.parquet" in html and "data:image/png" in html
    code, out = cli(
        capsys, "drift", str(ref), str(cur), "--report", str(tmp_path / "no" / "d.html")
    )
    assert code == 1 and "cannot write" in out and "Traceback" not in out


def test_labels_by_request_id(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    logged = read_predictions(home / ".shipyard" / "predictions", model="penguins")
    recent = logged[logged["ts"] > pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)]
    labels = pd.DataFrame({"request_id": recent["request_id"], "label": recent["prediction"]})
    labels.to_csv(home / "by_request.csv", index=False)
    code, out = cli(
        capsys, "labels", "add", "by_request.csv", "--model", "penguins", "--key", "request_id"
    )
    assert code == 0 and "Added 300 of 300 labels" in out and "match no" not in out, out
    code, out, _ = run_cli(
        capsys, "monitor", "models:/penguins/1", "--window", "1h", "--format", "json"
    )
    performance = json.loads(out)["performance"]
    accuracy = {m["metric"]: m for m in performance["metrics"]}["accuracy"]
    assert performance["n_labelled"] == 300 and accuracy["realised"] == 1.0


def test_parquet_files_are_read_a_column_at_a_time_with_the_same_results(
    tmp_path: Path,
) -> None:
    from shipyard.monitor import detect_drift
    from shipyard.pipeline import ParquetTable, compare_files

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=3_000),
            "n": rng.integers(0, 4, 3_000),
            "c": pd.Categorical(rng.choice(["a", "b", None], 3_000)),
            "s": rng.choice(["u", "v"], 3_000),
            "b": rng.random(3_000) > 0.5,
            "t": pd.date_range("2024-01-01", periods=3_000, freq="h"),
        }
    )
    shifted = frame.assign(x=frame["x"] + 0.3)
    frame.to_parquet(tmp_path / "a.parquet")
    shifted.to_parquet(tmp_path / "b.parquet")
    table = ParquetTable(tmp_path / "a.parquet")
    assert len(table) == 3_000 and table.columns == list(frame.columns)
    assert table.column_kinds() == {
        "x": "numeric",
        "n": "numeric",
        "c": "categorical",
        "s": "categorical",
        "b": "categorical",
    }
    streamed = compare_files(tmp_path / "a.parquet", tmp_path / "b.parquet")
    assert streamed == detect_drift(frame, shifted)
    assert [c.column for c in streamed.columns if c.drifted] == ["x"]
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ShipyardError, match=r"bad\.parquet: cannot read it as Parquet"):
        ParquetTable(tmp_path / "bad.parquet")


def test_a_regression_model_is_monitored_with_realised_metrics(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    from sklearn.linear_model import LinearRegression

    frame = load_penguins().dropna(subset=["body_mass_g", "flipper_length_mm"])
    x, y = frame[["flipper_length_mm"]], frame["body_mass_g"]
    model = make_pipeline(SimpleImputer(), LinearRegression()).fit(x, y)
    signature = Signature(
        inputs=(
            ColumnSchema(name="flipper_length_mm", kind="number", dtype="float64", nullable=True),
        ),
    )
    holdout = pd.DataFrame({"prediction": model.predict(x), "target": y.to_numpy()})
    rmse = float(np.sqrt(np.mean((holdout["prediction"] - holdout["target"]) ** 2)))
    package = ModelPackage(
        model,
        signature,
        "regression",
        {"metrics": {"rmse": rmse}},
        reference=ReferenceSample.build(x, holdout, max_rows=5_000, seed=0),
    )
    store = Store.from_env(None, root=home / ".shipyard")
    try:
        Registry(store).register("mass", package)
    finally:
        store.close()
    sample = frame.sample(200, random_state=4)
    records = sample[["flipper_length_mm"]].astype(object).to_dict("records")
    predictions = model.predict(sample[["flipper_length_mm"]])
    entries = [
        PredictionEntry(f"m{i}", time.time(), "mass", "1", [r], [{"prediction": float(p)}], 1.0)
        for i, (r, p) in enumerate(zip(records, predictions, strict=True))
    ]
    sink = ParquetSink(home / ".shipyard" / "predictions")
    sink.write(sink.encode(entries))
    sink.close()
    pd.DataFrame(
        {"request_id": [f"m{i}" for i in range(200)], "label": sample["body_mass_g"] + 500}
    ).to_csv(home / "mass.csv", index=False)
    code, out = cli(capsys, "labels", "add", "mass.csv", "--model", "mass", "--key", "request_id")
    assert code == 0 and "Added 200 of 200" in out, out
    code, out, err = run_cli(
        capsys, "monitor", "models:/mass/1", "--window", "1h", "--format", "json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert [c["column"] for c in result["predictions"]["columns"]] == ["prediction"]
    assert result["predictions"]["columns"][0]["kind"] == "numeric"
    metrics = {m["metric"]: m for m in result["performance"]["metrics"]}
    assert metrics["rmse"]["estimated"] is None  # no estimate for regression
    expected = float(np.sqrt(np.mean((predictions - (sample["body_mass_g"] + 500)) ** 2)))
    assert metrics["rmse"]["realised"] == pytest.approx(expected)  # labels 500 g heavier
    assert metrics["rmse"]["drop"] == pytest.approx(expected - rmse)  # lower is better
