"""Erasure from the prediction log: a subject's records removed from Parquet files (rewritten
atomically, encrypted ones kept encrypted) and from a SQL table, nothing else touched."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shipyard.data import PiiKey
from shipyard.errors import DataError, StoreError
from shipyard.store import (
    ENCRYPTION_KEY_ENV,
    ParquetSink,
    PredictionEntry,
    SqlSink,
    Subject,
    _erasure,
    erase_predictions,
    generate_key_text,
    logged_values,
    read_predictions,
)
from shipyard.store._crypto import is_sealed

KEY = PiiKey("a-test-pii-key-that-is-long-enough")
DAY1 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
DAY2 = DAY1 + 86_400


def _entry(
    request_id: str,
    records: list[dict[str, Any]],
    *,
    ts: float = DAY1,
    model: str = "churn",
    version: str = "1",
) -> PredictionEntry:
    outputs = [
        {"prediction": "yes", "prediction_id": f"{request_id}-{i}"} for i in range(len(records))
    ]
    return PredictionEntry(request_id, ts, model, version, records, outputs, 1.0)


def _entries() -> list[PredictionEntry]:
    """The subject (customer 42) in four forms, among others; model 'other' never logs the
    field."""
    return [
        # one file (churn/1, day 1): the subject's record beside another's
        _entry("a", [{"customer_id": 42, "x": 1.0}, {"customer_id": 7, "x": 2.0}]),
        # churn/1, day 2: only the subject's, the id as text
        _entry("b", [{"customer_id": " 42 ", "x": 3.0}], ts=DAY2),
        # churn/2, day 1: the field hashed, as the server logs a hashed PII field
        _entry("c", [{"customer_id": KEY.hash(42), "x": 4.0}], version="2"),
        _entry("d", [{"customer_id": KEY.hash(7), "x": 5.0}], version="2"),
        # churn/3, day 2: nobody of interest
        _entry("e", [{"customer_id": 8.0, "x": 6.0}], version="3", ts=DAY2),
        # another model, without the field at all
        _entry("f", [{"x": 7.0}], model="other"),
    ]


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(ENCRYPTION_KEY_ENV, raising=False)
    root = tmp_path / "predictions"
    sink = ParquetSink(root)
    sink.write(sink.encode(_entries()))
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def _ids(target: str | Path, model: str = "churn") -> list[str]:
    return sorted(read_predictions(target, model=model)["prediction_id"])


# -- the subject -----------------------------------------------------------------------------


def test_a_subject_matches_its_value_written_any_way_and_its_keyed_hash() -> None:
    subject = Subject("customer_id", 42, KEY)
    for same in (42, 42.0, "42", " 42 ", "42.0", KEY.hash(42)):
        assert subject.matches(same), same
    for other in (None, 7, "420", KEY.hash(7), float("nan"), "pii:" + "0" * 32):
        assert not subject.matches(other), other
    assert subject.keyed_hash == KEY.hash("42")
    assert subject.log_column == "input.customer_id"


def test_a_subject_keeps_no_value_in_clear() -> None:
    subject = Subject("email", "ann.qzwv@example.com", KEY)
    assert "qzwv" not in repr(subject)
    assert not any("qzwv" in str(v) for v in vars(subject).values())


def test_a_keyed_hash_stands_for_itself() -> None:
    hashed = KEY.hash("C-1")
    assert hashed is not None
    subject = Subject("customer_id", hashed, None)
    assert subject.keyed_hash == hashed
    assert subject.matches(hashed)
    assert not subject.matches("C-1")  # the value behind it is unknown


def test_without_a_key_only_clear_values_match() -> None:
    subject = Subject("customer_id", 42, None)
    assert subject.keyed_hash is None
    assert subject.matches("42") and not subject.matches(KEY.hash(42))


@pytest.mark.parametrize(("column", "value"), [("", 1), ("customer_id", "  "), ("c", None)])
def test_an_empty_column_or_value_is_refused(column: str, value: Any) -> None:
    with pytest.raises(DataError, match="empty"):
        Subject(column, value, KEY)


# -- Parquet ---------------------------------------------------------------------------------


def test_parquet_erasure_removes_exactly_the_subjects_records(log: Path) -> None:
    before = _files(log)
    result = erase_predictions(log, Subject("customer_id", "42", KEY))
    assert sorted(result.prediction_ids) == ["a-0", "b-0", "c-0"]
    assert {(r.model, r.version, r.request_id) for r in result.records} == {
        ("churn", "1", "a"),
        ("churn", "1", "b"),
        ("churn", "2", "c"),
    }
    assert result.column_seen and not result.dry_run
    assert (result.files_scanned, result.files_rewritten, result.files_removed) == (5, 2, 1)
    assert _ids(log) == ["a-1", "d-0", "e-0"]
    assert _ids(log, "other") == ["f-0"]
    after = _files(log)
    # files without a match are the same bytes; the day-2 file of churn/1 is gone
    untouched = [name for name in before if name in after and before[name] == after[name]]
    assert len(untouched) == 2 and len(after) == 4
    assert not list(log.rglob("*.tmp"))
    frame = read_predictions(log, model="churn")
    assert 42 not in frame["input.customer_id"].tolist()
    assert KEY.hash(42) not in frame["input.customer_id"].tolist()


def test_a_second_erasure_finds_nothing(log: Path) -> None:
    erase_predictions(log, Subject("customer_id", 42, KEY))
    again = erase_predictions(log, Subject("customer_id", 42, KEY))
    assert again.records == () and again.files_rewritten == 0


def test_a_dry_run_changes_nothing(log: Path) -> None:
    before = _files(log)
    result = erase_predictions(log, Subject("customer_id", 42, KEY), dry_run=True)
    assert sorted(result.prediction_ids) == ["a-0", "b-0", "c-0"]
    assert result.dry_run and result.files_rewritten == result.files_removed == 0
    assert _files(log) == before
    assert not (log / _erasure._LOCK_FILE).exists()


def test_erasure_is_limited_to_the_model(log: Path) -> None:
    assert erase_predictions(log, Subject("x", 7.0, KEY), model="churn").records == ()
    result = erase_predictions(log, Subject("x", 7, KEY), model="other")
    assert result.prediction_ids == ["f-0"] and result.files_removed == 1
    assert _ids(log) == ["a-0", "a-1", "b-0", "c-0", "d-0", "e-0"]
    nothing = erase_predictions(log, Subject("customer_id", 42, KEY), model="absent")
    assert nothing.records == () and not nothing.column_seen


def test_a_field_no_file_holds_is_reported_unseen(log: Path) -> None:
    result = erase_predictions(log, Subject("custmer_id", 42, KEY))
    assert not result.column_seen and result.files_scanned == 5


def test_the_values_asked_for_come_with_each_record(log: Path) -> None:
    result = erase_predictions(
        log, Subject("customer_id", 42, KEY), keep_values=["request_id", "input.x", "input.no"]
    )
    values = {r.prediction_id: dict(r.values) for r in result.records}
    assert values["a-0"] == {"request_id": "a", "input.x": 1.0}
    assert values["c-0"] == {"request_id": "c", "input.x": 4.0}


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no prediction log at .*does not exist"):
        erase_predictions(tmp_path / "nope", Subject("customer_id", 42, KEY))


@pytest.mark.parametrize("damage", ["footer", "page"])
def test_an_unreadable_file_is_named(log: Path, damage: str) -> None:
    bad = next(log.rglob("*.parquet"))
    data = bytearray(bad.read_bytes())
    if damage == "footer":
        data = bytearray(b"PAR1 not parquet")
    else:  # the footer reads, the column's pages do not
        data[4:40] = b"\xff" * 36
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="cannot read the prediction log file"):
        erase_predictions(log, Subject("customer_id", 42, KEY))


def test_encrypted_files_are_rewritten_encrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("cryptography")
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, generate_key_text())
    root = tmp_path / "predictions"
    sink = ParquetSink(root)
    sink.write(sink.encode(_entries()))
    result = erase_predictions(root, Subject("customer_id", 42, KEY))
    assert sorted(result.prediction_ids) == ["a-0", "b-0", "c-0"]
    files = _files(root)
    assert files and all(is_sealed(data) for data in files.values())
    assert _ids(root) == ["a-1", "d-0", "e-0"]


def test_a_failed_rewrite_leaves_the_old_file(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _files(log)

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StoreError, match=r"No space left on device.*the file is as it was"):
        erase_predictions(log, Subject("customer_id", 42, KEY), model="churn")
    monkeypatch.undo()
    after = _files(log)
    # whatever was done before the failing file is done; the failing file is intact
    assert all(before[name] == data for name, data in after.items())
    assert not list(log.rglob("*.tmp"))
    assert "a-0" in _ids(log) or "b-0" in _ids(log) or "c-0" in _ids(log)


def test_a_failed_removal_is_an_error(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(StoreError, match="Permission denied"):
        erase_predictions(log, Subject("x", 7, KEY), model="other")


def test_logged_values_leave_out_the_subjects_records(log: Path) -> None:
    subject = Subject("customer_id", 42, KEY)
    wanted = {"a", "b", "c", "d"}
    still = logged_values(
        log, model="churn", column="request_id", wanted=wanted, normal=str, subject=subject
    )
    assert still == {"a", "d"}  # request a also had customer 7's record
    assert logged_values(
        log, model="churn", column="input.x", wanted={"1.0", "2.0"}, normal=str, subject=subject
    ) == {"2.0"}
    assert (
        logged_values(
            log, model="other", column="input.nope", wanted={"1"}, normal=str, subject=subject
        )
        == set()
    )
    assert (
        logged_values(
            log, model="churn", column="request_id", wanted=set(), normal=str, subject=subject
        )
        == set()
    )


def test_logged_values_of_a_model_without_the_field(log: Path) -> None:
    subject = Subject("customer_id", 42, KEY)
    found = logged_values(
        log, model="other", column="request_id", wanted={"f"}, normal=str, subject=subject
    )
    assert found == {"f"}


# -- SQL -------------------------------------------------------------------------------------


@pytest.fixture
def sql_log(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    sink = SqlSink(url)
    sink.write(sink.encode(_entries()))
    sink.close()
    return url


def test_sql_erasure_deletes_exactly_the_subjects_rows(sql_log: str) -> None:
    result = erase_predictions(
        sql_log, Subject("customer_id", 42.0, KEY), keep_values=["request_id", "input.x"]
    )
    assert sorted(result.prediction_ids) == ["a-0", "b-0", "c-0"]
    assert result.column_seen and result.target == sql_log
    assert dict(result.records[0].values) == {"request_id": "a", "input.x": 1.0}
    assert _ids(sql_log) == ["a-1", "d-0", "e-0"]
    assert _ids(sql_log, "other") == ["f-0"]


def test_a_sql_dry_run_changes_nothing(sql_log: str) -> None:
    result = erase_predictions(sql_log, Subject("customer_id", 42, KEY), dry_run=True)
    assert len(result.records) == 3
    assert _ids(sql_log) == ["a-0", "a-1", "b-0", "c-0", "d-0", "e-0"]


def test_sql_erasure_is_limited_to_the_model(sql_log: str) -> None:
    result = erase_predictions(sql_log, Subject("x", 7, KEY), model="other")
    assert result.prediction_ids == ["f-0"]
    assert len(_ids(sql_log)) == 6
    unseen = erase_predictions(sql_log, Subject("custmer_id", 42, KEY))
    assert unseen.records == () and not unseen.column_seen


def test_a_database_without_the_table_holds_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = erase_predictions(url, Subject("customer_id", 42, KEY))
    assert result.records == () and not result.column_seen
    subject = Subject("customer_id", 42, KEY)
    found = logged_values(
        url, model="churn", column="request_id", wanted={"a"}, normal=str, subject=subject
    )
    assert found == set()


def test_sql_logged_values(sql_log: str) -> None:
    subject = Subject("customer_id", 42, KEY)
    still = logged_values(
        sql_log,
        model="churn",
        column="request_id",
        wanted={"a", "b", "c", "d"},
        normal=str,
        subject=subject,
    )
    assert still == {"a", "d"}
    xs = logged_values(
        sql_log, model="churn", column="input.x", wanted={"1.0", "2.0"}, normal=str, subject=subject
    )
    assert xs == {"2.0"}
    other = logged_values(
        sql_log, model="churn", column="latency_ms", wanted={"1.0"}, normal=str, subject=subject
    )
    assert other == set()


def test_a_database_failure_deletes_nothing(sql_log: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    real = sa.delete

    def broken(*args: Any, **kwargs: Any) -> Any:
        statement = real(*args, **kwargs)
        return statement.where(sa.text("no_such_column = 1"))

    monkeypatch.setattr(sa, "delete", broken)
    with pytest.raises(StoreError, match="nothing was deleted"):
        erase_predictions(sql_log, Subject("customer_id", 42, KEY))
    monkeypatch.undo()
    assert len(_ids(sql_log)) == 6
