"""The registry API over a real SQLite store: URIs, aliases, rollback, loading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline

from shipyard.data import ColumnSchema, Signature
from shipyard.errors import InvalidModelURIError, ModelNotFoundError, RegistryError
from shipyard.registry import ModelPackage, Registry
from shipyard.store import Store
from shipyard.tracking import Tracker

SIG = Signature(
    inputs=(ColumnSchema(name="x", kind="number", dtype="float64", nullable=False),),
    classes=("a", "b"),
)


def _package(accuracy: float) -> ModelPackage:
    model = make_pipeline(DummyClassifier(strategy="most_frequent"))
    model.fit(pd.DataFrame({"x": [0.0, 1.0, 2.0]}), ["a", "b", "b"])
    return ModelPackage(model, SIG, "binary", {"metrics": {"accuracy": accuracy}})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(root=tmp_path / ".shipyard")
    yield s
    s.close()


def test_versions_uris_and_loading(store: Store) -> None:
    registry = Registry(store)
    with Tracker(store) as tracker, tracker.start_run("train") as run:
        first = registry.register("m", _package(0.8), run_id=run.id, created_by="ann")
    second = registry.register("m", _package(0.9), created_by="bob")
    assert (first.version, second.version) == (1, 2)
    assert registry.resolve("models:/m").version == 2  # latest
    assert registry.resolve("models:/m/1").created_by == "ann"
    assert registry.resolve(f"runs:/{run.id[:8]}").version == 1
    package = registry.load("models:/m/2")
    assert package.metadata["name"] == "m" and package.metadata["version"] == 2
    assert package.metadata["metrics"] == {"accuracy": 0.9}
    assert list(package.predict(pd.DataFrame({"x": [5.0]})).labels) == ["b"]
    assert [v.version for v in registry.list_versions("m")] == [1, 2]
    assert [m.name for m in registry.list_models()] == ["m"]


def test_aliases_history_and_rollback(store: Store) -> None:
    registry = Registry(store)
    for accuracy in (0.7, 0.8, 0.9):
        registry.register("m", _package(accuracy))
    assert registry.champion("m", "production") is None
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback("m", moved_by="ann")
    registry.promote("m", 1, moved_by="ann", reason="first")
    registry.promote("m", 3, moved_by="bob", reason="better")
    move = registry.rollback("m", moved_by="carol")
    assert (move.previous_version, move.version) == (3, 1)
    assert "rollback from version 3" in (move.reason or "")
    history = registry.alias_history("m", "production")
    assert [(h.moved_by, h.version) for h in history] == [("ann", 1), ("bob", 3), ("carol", 1)]
    champion = registry.champion("m", "production")
    assert champion is not None and champion.version == 1
    assert registry.champion("nope", "production") is None


def test_lookup_errors(store: Store) -> None:
    registry = Registry(store)
    registry.register("m", _package(0.5))
    with pytest.raises(ModelNotFoundError, match="nope"):
        registry.resolve("models:/nope@production")
    with pytest.raises(ModelNotFoundError):
        registry.resolve("models:/m/7")
    with pytest.raises(ModelNotFoundError, match="no model version was registered by run"):
        registry.resolve("runs:/abcdef12")
    with pytest.raises(InvalidModelURIError):
        registry.load("m@production")
