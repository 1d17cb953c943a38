"""Erasure against PostgreSQL: the prediction log table, the labels and the audit log in one
database; the subject's rows deleted, the others intact, the value written nowhere."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.data import PII_KEY_ENV, PiiKey
from shipyard.pipeline import forget
from shipyard.registry import AuditLog, LabelStore
from shipyard.store import (
    PredictionEntry,
    SqlSink,
    Store,
    Subject,
    erase_predictions,
    read_predictions,
)

pytestmark = pytest.mark.postgres

KEY_TEXT = "a-test-pii-key-that-is-long-enough"
KEY = PiiKey(KEY_TEXT)
SUBJECT = "C-qzwvk7"


def _entries() -> list[PredictionEntry]:
    now = time.time() - 60
    return [
        PredictionEntry(
            "r1",
            now,
            "churn",
            "1",
            [{"customer_id": KEY.hash(SUBJECT), "x": 1}, {"customer_id": "C-8", "x": 2}],
            [
                {"prediction": "no", "prediction_id": "p1"},
                {"prediction": "yes", "prediction_id": "p2"},
            ],
            1.0,
        ),
        PredictionEntry(
            "r2",
            now,
            "churn",
            "2",
            [{"customer_id": SUBJECT, "x": 3}],
            [{"prediction": "no", "prediction_id": "p3"}],
            1.0,
        ),
        PredictionEntry(
            "r3",
            now,
            "other",
            "1",
            [{"customer_id": SUBJECT}],
            [{"prediction": "no", "prediction_id": "p4"}],
            1.0,
        ),
    ]


@pytest.fixture
def store(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv(PII_KEY_ENV, KEY_TEXT)
    sink = SqlSink(pg_url)
    sink.write(sink.encode(_entries()))
    sink.close()
    with Store.open(pg_url, root=tmp_path) as opened:
        LabelStore(opened).add("churn", ["p1", "p2", "p3"], ["yes", "no", "yes"])
        yield opened


def test_the_sql_log_on_postgres(pg_url: str, store: Store) -> None:
    dry = erase_predictions(pg_url, Subject("customer_id", SUBJECT, KEY), dry_run=True)
    assert sorted(dry.prediction_ids) == ["p1", "p3", "p4"]
    assert len(read_predictions(pg_url, model="churn")) == 3
    result = erase_predictions(
        pg_url, Subject("customer_id", SUBJECT, KEY), model="churn", keep_values=["input.x"]
    )
    assert sorted(result.prediction_ids) == ["p1", "p3"]
    assert sorted(r.values["input.x"] for r in result.records) == [1, 3]
    assert list(read_predictions(pg_url, model="churn")["prediction_id"]) == ["p2"]
    assert list(read_predictions(pg_url, model="other")["prediction_id"]) == ["p4"]


def test_forget_with_the_store_and_the_log_on_postgres(pg_url: str, store: Store) -> None:
    result = forget("customer_id", SUBJECT, store=store, predictions=pg_url, user="dpo")
    assert sorted(result.prediction_ids) == ["p1", "p3", "p4"]
    assert result.labels_removed == 2 and result.audit_id is not None
    assert result.prediction_log == pg_url  # no password in the test URL
    assert LabelStore(store).lookup("churn", "prediction_id", ["p1", "p2", "p3"]) == {"p2": "no"}
    [entry] = AuditLog(store).entries()
    assert entry.actor == "dpo" and entry.details["value_hash"] == KEY.hash(SUBJECT)
    assert entry.details["predictions_removed"] == 3
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT details::text FROM audit_log")).scalars().all()
            log = conn.execute(sa.text("SELECT inputs::text FROM prediction_log")).scalars().all()
    finally:
        engine.dispose()
    assert len(rows) == 1 and SUBJECT not in rows[0] and KEY.hash(SUBJECT) in rows[0]
    assert not any(SUBJECT in text for text in log)
