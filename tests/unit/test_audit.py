"""The registry's audit log, and removing labels by key (an erasure's part in the registry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.errors import RegistryError, StoreError
from shipyard.registry import AuditLog, LabelStore
from shipyard.store import Store, tables


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(root=tmp_path / "sy") as opened:
        yield opened


def test_entries_are_recorded_and_read_back_newest_first(store: Store) -> None:
    audit = AuditLog(store)
    first = audit.record("forget", "ana", {"column": "customer_id", "value_hash": "pii:1"})
    second = audit.record("promote", "bo", {"version": 2}, model="churn")
    assert second.id > first.id
    assert first.model is None and first.details["column"] == "customer_id"
    entries = audit.entries()
    assert [e.id for e in entries] == [second.id, first.id]
    assert entries[1] == first
    assert [e.action for e in audit.entries(action="forget")] == ["forget"]
    # an entry for every model concerns each model too
    assert [e.id for e in audit.entries(model="churn")] == [second.id, first.id]
    assert [e.id for e in audit.entries(model="other")] == [first.id]
    assert [e.id for e in audit.entries(limit=1)] == [second.id]


@pytest.mark.parametrize("action", ["", "Forget", "1st", "a b", "x" * 65])
def test_an_action_must_be_a_name(store: Store, action: str) -> None:
    with pytest.raises(RegistryError, match="not a valid name"):
        AuditLog(store).record(action, "ana", {})


def test_details_must_be_json(store: Store) -> None:
    with pytest.raises(RegistryError, match="not JSON"):
        AuditLog(store).record("forget", "ana", {"when": object()})
    with pytest.raises(RegistryError, match="not JSON"):
        AuditLog(store).record("forget", "ana", {"share": float("nan")})
    assert AuditLog(store).entries() == []


# -- labels ------------------------------------------------------------------------------------


@pytest.fixture
def labels(store: Store) -> LabelStore:
    labels = LabelStore(store)
    labels.add("churn", ["p1", "p2", "p3"], ["yes", "no", "yes"])
    labels.add("churn", ["o1", "o2"], ["yes", "no"], key_column="order_id")
    labels.add("churn", ["pii:aa", "pii:bb"], ["yes", "no"], key_column="customer_id")
    labels.add("other", ["p1"], ["no"])
    return labels


def test_key_columns_by_model(labels: LabelStore) -> None:
    assert labels.key_columns_by_model() == {
        "churn": ["prediction_id", "customer_id", "order_id"],
        "other": ["prediction_id"],
    }
    assert labels.key_columns_by_model("other") == {"other": ["prediction_id"]}
    assert labels.key_columns("churn") == ["prediction_id", "customer_id", "order_id"]
    assert labels.key_columns("absent") == []


def test_keys_where_a_test_picks(labels: LabelStore) -> None:
    picked = labels.keys_where("prediction_id", lambda k: k == "p1")
    assert picked == {"churn": ["p1"], "other": ["p1"]}
    assert labels.keys_where("prediction_id", lambda k: k == "p1", model="other") == {
        "other": ["p1"]
    }
    assert labels.keys_where("customer_id", lambda k: False) == {}


def test_remove_deletes_the_keys_given_and_counts_them(labels: LabelStore) -> None:
    wanted = {
        ("churn", "prediction_id"): ["p1", "p3", "p9"],
        ("churn", "order_id"): {"o2"},
        ("other", "order_id"): {"o2"},
    }
    assert labels.remove(wanted, dry_run=True) == 3
    assert labels.lookup("churn", "prediction_id", ["p1", "p2", "p3"]) == {
        "p1": "yes",
        "p2": "no",
        "p3": "yes",
    }
    assert labels.remove(wanted) == 3
    assert labels.lookup("churn", "prediction_id", ["p1", "p2", "p3"]) == {"p2": "no"}
    assert labels.lookup("churn", "order_id", ["o1", "o2"]) == {"o1": "yes"}
    assert labels.lookup("other", "prediction_id", ["p1"]) == {"p1": "no"}
    assert labels.remove(wanted) == 0
    assert labels.remove({}) == 0


def test_a_failed_removal_removes_nothing(
    labels: LabelStore, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sa.delete
    calls = []

    def second_fails(*args: object, **kwargs: object) -> object:
        calls.append(1)
        statement = real(*args, **kwargs)  # type: ignore[arg-type]
        return statement.where(sa.text("no_such_column = 1")) if len(calls) > 1 else statement

    monkeypatch.setattr(sa, "delete", second_fails)
    wanted = {("churn", "prediction_id"): ["p1"], ("churn", "order_id"): ["secret-o1"]}
    with pytest.raises(StoreError, match="none was removed") as info:
        labels.remove(wanted)
    assert "secret-o1" not in str(info.value)
    monkeypatch.undo()
    with store.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(tables.labels)).scalar()
    assert count == 8
