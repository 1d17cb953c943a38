"""The right to erasure end to end, in process: real runs with PII columns, a prediction log
and labels, then ``forget``: the subject's predictions and labels go, the versions trained on
them are named, the request is audited, and the value is written nowhere."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from shipyard.data import PII_INDEX_ARTIFACT, PII_KEY_ENV, PiiKey
from shipyard.errors import DataError, ModelNotFoundError, StoreError
from shipyard.pipeline import FORGET_ACTION, forget, run_project
from shipyard.pipeline import _forget as forget_module
from shipyard.registry import AuditLog, LabelStore, Registry
from shipyard.spec import load_spec
from shipyard.store import ENCRYPTION_KEY_ENV, ParquetSink, PredictionEntry, Store, read_predictions
from shipyard.tracking import run_artifact_path

KEY_TEXT = "a-test-pii-key-that-is-long-enough"
KEY = PiiKey(KEY_TEXT)
MARK = "qzwvk"  # only the planted customer ids hold it
SUBJECT = f"C-{MARK}7"
SPEC = """\
name: churn
data: {{source: {{type: csv, path: data/{data}}}, target: churned}}
features:
  pii: {{customer_id: {action}}}
split: {{cv_folds: 2}}
models:
  - model: linear
"""


def _frame(without: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 80
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C-{MARK}{i}" for i in range(n)],
            "x1": x1,
            "x2": x2,
            "churned": np.where(x1 + 0.3 * rng.normal(size=n) > 0, "yes", "no"),
        }
    )
    return frame[frame["customer_id"] != without] if without else frame


def _run(root: Path, store: Store, data: str, action: str) -> None:
    (root / "shipyard.yaml").write_text(SPEC.format(data=data, action=action))
    run_project(load_spec(root / "shipyard.yaml"), store=store, user="trainer")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn v1 trained on the subject, v2 on the data without them, v3 without a PII key
    (the column dropped, no index kept)."""
    root = tmp_path_factory.mktemp("trained")
    (root / "data").mkdir()
    _frame().to_csv(root / "data" / "all.csv", index=False)
    _frame(without=SUBJECT).to_csv(root / "data" / "without.csv", index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(ENCRYPTION_KEY_ENV, raising=False)
        mp.setenv(PII_KEY_ENV, KEY_TEXT)
        with Store.open(root=root / ".shipyard") as store:
            _run(root, store, "all.csv", "hash")
            _run(root, store, "without.csv", "hash")
            mp.delenv(PII_KEY_ENV)
            _run(root, store, "all.csv", "drop")
    return root


def _entry(request_id: str, version: str, records: list[dict[str, Any]]) -> PredictionEntry:
    outputs = [
        {"prediction": "no", "prediction_id": f"{request_id}-{i}"} for i in range(len(records))
    ]
    return PredictionEntry(request_id, time.time() - 60, "churn", version, records, outputs, 2.0)


def _record(customer: str, order: str) -> dict[str, Any]:
    return {"x1": 0.5, "x2": -0.5, "customer_id": KEY.hash(customer), "order_id": order}


@pytest.fixture
def home(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the trained store, a prediction log (the customer field hashed, as the server
    logs it) and labels keyed four ways."""
    monkeypatch.delenv(ENCRYPTION_KEY_ENV, raising=False)
    monkeypatch.setenv(PII_KEY_ENV, KEY_TEXT)
    shutil.copytree(trained / ".shipyard", tmp_path / ".shipyard")
    sink = ParquetSink(tmp_path / "predictions")
    sink.write(
        sink.encode(
            [
                _entry("r1", "1", [_record(SUBJECT, "o-1")]),
                _entry("r2", "1", [_record(SUBJECT, "o-2"), _record(f"C-{MARK}8", "o-3")]),
                _entry("r3", "2", [_record(f"C-{MARK}9", "o-2")]),
                _entry("r4", "2", [_record(f"C-{MARK}8", "o-4")]),
            ]
        )
    )
    with Store.open(root=tmp_path / ".shipyard") as store:
        labels = LabelStore(store)
        labels.add("churn", ["r1-0", "r2-0", "r2-1", "r3-0"], ["yes", "no", "no", "yes"])
        labels.add("churn", ["r1", "r2", "r3"], ["yes", "no", "yes"], key_column="request_id")
        labels.add(
            "churn", ["o-1", "o-2", "o-3", "o-4"], ["y", "n", "n", "y"], key_column="order_id"
        )
        hashed = [KEY.hash(SUBJECT), KEY.hash(f"C-{MARK}8")]
        labels.add("churn", hashed, ["yes", "no"], key_column="customer_id")  # type: ignore[arg-type]
    return tmp_path


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with Store.open(root=home / ".shipyard") as opened:
        yield opened


def _label_count(store: Store) -> int:
    with store.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(sa.table("labels"))).scalar_one()
        )


def _tables_holding(store: Store, text: str) -> list[str]:
    hits = []
    with store.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')):
                if text in " ".join(str(v) for v in row):
                    hits.append(name)
    return hits


def test_forget_erases_the_subject_and_names_the_versions_trained_on_them(
    home: Path, store: Store
) -> None:
    log = home / "predictions"
    dry = forget("customer_id", SUBJECT, store=store, predictions=log, dry_run=True, user="ana")
    assert sorted(dry.prediction_ids) == ["r1-0", "r2-0"] and dry.labels_removed == 5
    assert dry.dry_run and dry.audit_id is None
    assert len(read_predictions(log, model="churn")) == 5
    assert _label_count(store) == 13
    assert AuditLog(store).entries(action="forget") == []

    result = forget("customer_id", SUBJECT, store=store, predictions=log, user="ana")
    assert sorted(result.prediction_ids) == ["r1-0", "r2-0"]
    assert result.predictions_removed == 2
    # r1-0 and r2-0 by prediction id, r1 by request id (r2 still has customer 8's record),
    # o-1 by order id (o-2 is also customer 9's), the subject's hash by customer id
    assert result.labels_removed == 5
    assert result.value_hash == KEY.hash(SUBJECT) and result.key_id == KEY.key_id
    assert (result.files_rewritten, result.files_removed) == (1, 0)
    verdicts = {v.version: v.status for v in result.versions}
    assert verdicts == {1: "trained", 2: "not_trained", 3: "unknown"}
    assert [v.uri for v in result.retrain] == ["models:/churn/1"]
    assert "SHIPYARD_PII_KEY was not set" in result.unknown[0].reason
    assert result.warnings == ()

    left = read_predictions(log, model="churn")
    assert sorted(left["prediction_id"]) == ["r2-1", "r3-0", "r4-0"]
    labels = LabelStore(store)
    assert set(labels.lookup("churn", "prediction_id", ["r1-0", "r2-0", "r2-1", "r3-0"])) == {
        "r2-1",
        "r3-0",
    }
    assert set(labels.lookup("churn", "request_id", ["r1", "r2", "r3"])) == {"r2", "r3"}
    assert set(labels.lookup("churn", "order_id", ["o-1", "o-2", "o-3", "o-4"])) == {
        "o-2",
        "o-3",
        "o-4",
    }
    assert labels.lookup("churn", "customer_id", [KEY.hash(SUBJECT)]) == {}  # type: ignore[list-item]

    [entry] = AuditLog(store).entries(action="forget")
    assert entry.id == result.audit_id and entry.action == FORGET_ACTION
    assert entry.actor == "ana" and entry.model is None
    details = dict(entry.details)
    assert details["status"] == "done" and details["column"] == "customer_id"
    assert details["value_hash"] == result.value_hash
    assert details["predictions_removed"] == 2 and details["labels_removed"] == 5
    assert details["versions"][0] == {"model": "churn", "version": 1, "status": "trained"}
    assert details["prediction_log"] == str(log)
    assert _tables_holding(store, SUBJECT) == []
    assert _tables_holding(store, result.value_hash) == ["audit_log"]


def test_forget_by_the_keyed_hash_and_for_one_model(home: Path, store: Store) -> None:
    hashed = KEY.hash(SUBJECT)
    result = forget(
        "customer_id", hashed, store=store, predictions=home / "predictions", model="churn"
    )
    assert sorted(result.prediction_ids) == ["r1-0", "r2-0"]
    assert result.value_hash == hashed and result.model == "churn"
    assert AuditLog(store).entries(action="forget")[0].model == "churn"


def test_forget_without_a_log(home: Path, store: Store) -> None:
    result = forget("customer_id", SUBJECT, store=store, predictions=None)
    assert result.prediction_ids == () and result.prediction_log is None
    assert result.labels_removed == 1  # keyed by the subject's hash
    assert [v.status for v in result.versions] == ["trained", "not_trained", "unknown"]


def test_a_model_input_is_known_but_has_no_index(home: Path, store: Store) -> None:
    result = forget("x1", 0.5, store=store, predictions=home / "predictions", dry_run=True)
    assert len(result.prediction_ids) == 5
    assert {v.status for v in result.versions} == {"unknown"}
    assert "'x1' was not a PII column" in result.versions[0].reason


def test_forget_needs_the_key(home: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PII_KEY_ENV)
    with pytest.raises(DataError, match=f"needs {PII_KEY_ENV}"):
        forget("customer_id", SUBJECT, store=store, predictions=None)


def test_another_key_is_warned_about(home: Path, store: Store) -> None:
    other = PiiKey("another-key-that-is-long-enough")
    result = forget(
        "customer_id", SUBJECT, store=store, predictions=home / "predictions", key=other
    )
    assert result.prediction_ids == ()
    assert [v.status for v in result.versions] == ["unknown", "unknown", "unknown"]
    assert f"key id {KEY.key_id}" in result.versions[0].reason
    assert len(result.warnings) == 2 and "run forget again with the key" in result.warnings[0]


def test_an_unknown_model_or_column_is_an_error(home: Path, store: Store) -> None:
    with pytest.raises(ModelNotFoundError):
        forget("customer_id", SUBJECT, store=store, predictions=None, model="nope")
    with pytest.raises(DataError, match="'custmer_id' is no input or PII column"):
        forget("custmer_id", SUBJECT, store=store, predictions=home / "predictions")
    assert AuditLog(store).entries(action="forget") == []


def test_unreadable_lineage_is_unknown(home: Path, store: Store) -> None:
    registry = Registry(store)
    v1, v2, _ = registry.list_versions("churn")
    (home / ".shipyard" / "artifacts" / v1.package_path / "metadata.json").unlink()
    assert v2.run_id is not None
    index = home / ".shipyard" / "artifacts" / run_artifact_path(v2.run_id, PII_INDEX_ARTIFACT)
    index.write_bytes(b"changed")
    result = forget("customer_id", SUBJECT, store=store, predictions=None, dry_run=True)
    first, second, _ = result.versions
    assert first.status == second.status == "unknown"
    assert first.reason.startswith("its package metadata cannot be read")
    assert second.reason.startswith("its PII index cannot be read")


def test_a_version_without_a_run_is_unknown(home: Path, store: Store) -> None:
    registry = Registry(store)
    package = registry.load("models:/churn/1")
    registry.register("churn", package, run_id=None)
    result = forget("customer_id", SUBJECT, store=store, predictions=None, dry_run=True)
    assert result.versions[-1].reason == "no training run is recorded"


def test_a_failure_part_way_is_audited(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("cannot rewrite the prediction log file x: No space left on device")

    monkeypatch.setattr(forget_module, "erase_predictions", full_disk)
    with pytest.raises(StoreError, match="No space left"):
        forget("customer_id", SUBJECT, store=store, predictions=home / "predictions", user="ana")
    [entry] = AuditLog(store).entries(action="forget")
    assert entry.details["status"] == "failed"
    assert entry.details["error"].startswith("StoreError: cannot rewrite")
    assert entry.details["value_hash"] == KEY.hash(SUBJECT)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError(f"a driver message holding {SUBJECT}")

    monkeypatch.undo()
    monkeypatch.setenv(PII_KEY_ENV, KEY_TEXT)
    monkeypatch.setattr(LabelStore, "remove", broken)
    with pytest.raises(RuntimeError):
        forget("customer_id", SUBJECT, store=store, predictions=home / "predictions")
    latest = AuditLog(store).entries(action="forget")[0]
    assert latest.details["error"] == "RuntimeError"  # never another library's message
    assert latest.details["predictions_removed"] == 2
    assert _tables_holding(store, SUBJECT) == []


def test_an_unrecordable_failure_says_so(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the database is gone")

    monkeypatch.setattr(forget_module, "erase_predictions", down)
    monkeypatch.setattr(AuditLog, "record", down)
    with pytest.raises(StoreError) as info:
        forget("customer_id", SUBJECT, store=store, predictions=home / "predictions")
    assert "could not be recorded in the audit log" in " ".join(info.value.__notes__)
    # a dry run records nothing, even when it fails
    with pytest.raises(StoreError):
        forget("customer_id", SUBJECT, store=store, predictions=home / "predictions", dry_run=True)


def test_the_top_level_api(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shipyard

    monkeypatch.setenv("SHIPYARD_HOME", str(home / ".shipyard"))
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_ARTIFACT_ROOT", raising=False)
    dry = shipyard.forget("customer_id", SUBJECT, dry_run=True)  # no log at the default place
    assert dry.prediction_log is None and dry.labels_removed == 1
    shutil.move(home / "predictions", home / ".shipyard" / "predictions")
    result = shipyard.forget("customer_id", SUBJECT, model="churn", user="ana")
    assert sorted(result.prediction_ids) == ["r1-0", "r2-0"]
    assert result.prediction_log == str(home / ".shipyard" / "predictions")
    with Store.open(root=home / ".shipyard") as store:
        log = home / ".shipyard" / "predictions"
        again = shipyard.forget("customer_id", SUBJECT, store=store, predictions=log)
        assert again.prediction_ids == () and again.audit_id == result.audit_id + 1  # type: ignore[operator]
