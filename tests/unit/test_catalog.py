"""The registry catalog: versions, aliases and their history, concurrent registration."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shipyard.errors import ModelNotFoundError, RegistryError
from shipyard.registry._catalog import AliasMove, ModelCatalog, ModelRecord, VersionRecord
from shipyard.store import Store, tables

needs_fork = pytest.mark.skipif(
    "fork" not in mp.get_all_start_methods(), reason="uses the fork start method"
)

SIGNATURE = {"inputs": [{"name": "x", "dtype": "float64"}], "target": "y"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(root=tmp_path / "sy") as opened:
        yield opened


@pytest.fixture
def catalog(store: Store) -> ModelCatalog:
    return ModelCatalog(store)


def register(catalog: ModelCatalog, name: str = "iris", **overrides: Any) -> VersionRecord:
    fields: dict[str, Any] = {
        "run_id": None,
        "task": "classification",
        "metrics": {"accuracy": 0.9},
        "signature": SIGNATURE,
        "lineage": {"dataset": "abc"},
        "created_by": "alice",
    }
    fields.update(overrides)
    return catalog.create_version(name, **fields)


# --- versions --------------------------------------------------------------------------


def test_versions_are_numbered_from_one(catalog: ModelCatalog) -> None:
    first = register(catalog)
    second = register(catalog, metrics={"accuracy": 0.95})
    other = register(catalog, "wine")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.package_path == "models/iris/1"
    assert first.uri == "models:/iris/1"
    assert catalog.get_version("iris", 2).metrics == {"accuracy": 0.95}
    assert catalog.latest_version("iris").version == 2


def test_created_version_round_trips(catalog: ModelCatalog) -> None:
    created = register(catalog, package_path_for=lambda v: f"pkgs/iris/v{v}/")
    loaded = catalog.get_version("iris", 1)
    assert loaded == created
    assert loaded.package_path == "pkgs/iris/v1"
    assert loaded.signature == SIGNATURE
    assert loaded.lineage == {"dataset": "abc"}
    assert loaded.created_by == "alice"
    assert loaded.aliases == ()
    assert abs(loaded.created_at - time.time()) < 60


def test_run_id_must_exist(catalog: ModelCatalog, store: Store) -> None:
    with pytest.raises(RegistryError, match="run_id 'ghost' is not a run"):
        register(catalog, run_id="ghost")
    with store.begin() as conn:
        conn.execute(
            sa.insert(tables.runs).values(id="r1", name="n", status="finished", start_time=1.0)
        )
    assert register(catalog, run_id="r1").run_id == "r1"
    assert [v.version for v in catalog.list_versions("iris")] == [1]  # the failure left no gap


@pytest.mark.parametrize("name", ["", "a/b", "x@y", "-lead", "a b", "m" * 129])
def test_bad_model_names_are_rejected(catalog: ModelCatalog, name: str) -> None:
    with pytest.raises(RegistryError, match="invalid model name"):
        register(catalog, name)


def test_non_json_fields_are_rejected(catalog: ModelCatalog) -> None:
    with pytest.raises(RegistryError, match="its metrics are not JSON-serialisable"):
        register(catalog, metrics={"when": object()})


def test_escaping_package_path_is_rejected(catalog: ModelCatalog) -> None:
    with pytest.raises(Exception, match="invalid artifact path"):
        register(catalog, package_path_for=lambda v: f"../{v}")
    assert catalog.list_models() == []


def test_missing_models_and_versions_name_what_exists(catalog: ModelCatalog) -> None:
    register(catalog)
    register(catalog)
    with pytest.raises(ModelNotFoundError, match=r"model 'iris' has no version 7; .*: 1, 2$"):
        catalog.get_version("iris", 7)
    with pytest.raises(ModelNotFoundError, match=r"no registered model named 'irs'.*: iris\."):
        catalog.get_version("irs", 1)
    with pytest.raises(ModelNotFoundError, match="no registered model named 'nope'"):
        catalog.latest_version("nope")
    with pytest.raises(ModelNotFoundError, match="no registered model named 'nope'"):
        catalog.list_versions("nope")


def test_list_models_and_versions(catalog: ModelCatalog) -> None:
    assert catalog.list_models() == []
    register(catalog, "wine")
    register(catalog)
    register(catalog)
    catalog.set_alias("iris", "production", 1, moved_by="bob")
    catalog.set_alias("iris", "staging", 2, moved_by="bob")
    models = catalog.list_models()
    assert [(m.name, m.latest_version, dict(m.aliases)) for m in models] == [
        ("iris", 2, {"production": 1, "staging": 2}),
        ("wine", 1, {}),
    ]
    assert all(isinstance(m, ModelRecord) and m.created_at > 0 for m in models)
    versions = catalog.list_versions("iris")
    assert [(v.version, v.aliases) for v in versions] == [(1, ("production",)), (2, ("staging",))]


# --- aliases ---------------------------------------------------------------------------


def test_set_and_move_alias_records_history(catalog: ModelCatalog) -> None:
    register(catalog)
    register(catalog)
    first = catalog.set_alias("iris", "production", 1, moved_by="bob", reason="first")
    assert (first.version, first.previous_version) == (1, None)
    assert catalog.resolve_alias("iris", "production").version == 1
    moved = catalog.set_alias("iris", "production", 2, moved_by="carol", reason="better")
    assert (moved.version, moved.previous_version, moved.moved_by) == (2, 1, "carol")
    resolved = catalog.resolve_alias("iris", "production")
    assert (resolved.version, resolved.aliases) == (2, ("production",))
    assert catalog.get_version("iris", 1).aliases == ()
    history = catalog.alias_history("iris", "production")
    assert [(m.version, m.previous_version, m.reason) for m in history] == [
        (1, None, "first"),
        (2, 1, "better"),
    ]
    assert history[1] == moved


def test_delete_alias(catalog: ModelCatalog) -> None:
    register(catalog)
    catalog.set_alias("iris", "staging", 1, moved_by="bob")
    catalog.set_alias("iris", "production", 1, moved_by="bob")
    removed = catalog.delete_alias("iris", "staging", moved_by="dan", reason="done")
    assert removed == AliasMove("iris", "staging", None, 1, removed.moved_at, "dan", "done")
    with pytest.raises(
        ModelNotFoundError, match=r"no alias 'staging'; its aliases: production -> 1"
    ):
        catalog.resolve_alias("iris", "staging")
    with pytest.raises(ModelNotFoundError, match="no alias 'staging'"):
        catalog.delete_alias("iris", "staging", moved_by="dan")
    assert [m.alias for m in catalog.alias_history("iris")] == ["staging", "production", "staging"]
    assert [m.version for m in catalog.alias_history("iris", "staging")] == [1, None]


@pytest.mark.parametrize("alias", ["Production", "1st", "", "a" * 65, "prod!", "_x"])
def test_invalid_alias_names_are_rejected(catalog: ModelCatalog, alias: str) -> None:
    register(catalog)
    with pytest.raises(RegistryError, match="invalid alias"):
        catalog.set_alias("iris", alias, 1, moved_by="bob")


def test_alias_must_point_at_an_existing_version(catalog: ModelCatalog) -> None:
    register(catalog)
    with pytest.raises(ModelNotFoundError, match="has no version 3; its versions: 1"):
        catalog.set_alias("iris", "production", 3, moved_by="bob")
    with pytest.raises(ModelNotFoundError, match="no registered model named 'wine'"):
        catalog.set_alias("wine", "production", 1, moved_by="bob")
    with pytest.raises(ModelNotFoundError, match="no registered model named 'wine'"):
        catalog.resolve_alias("wine", "production")
    with pytest.raises(ModelNotFoundError, match="no registered model named 'wine'"):
        catalog.alias_history("wine")
    assert catalog.alias_history("iris") == []


def test_alias_cannot_dangle_in_the_database(catalog: ModelCatalog, store: Store) -> None:
    register(catalog)
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(sa.insert(tables.aliases).values(name="iris", alias="x", version=9))


# --- concurrency -----------------------------------------------------------------------


def _register_many(url: str, root: str, n: int, barrier: Any, out: Any) -> None:
    try:
        with Store.open(url, root=root) as store:
            catalog = ModelCatalog(store)
            barrier.wait(30)
            versions = [register(catalog, "race").version for _ in range(n)]
        out.put(versions)
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(repr(exc))


def run_registration_race(url: str, root: str, n_procs: int = 4, n_each: int = 5) -> list[int]:
    """Register ``n_each`` versions from each of ``n_procs`` processes at once."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(n_procs)
    out = ctx.Queue()
    args = (url, root, n_each, barrier, out)
    procs = [ctx.Process(target=_register_many, args=args) for _ in range(n_procs)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    errors = [r for r in results if not isinstance(r, list)]
    assert errors == []
    return sorted(v for r in results for v in r)


@needs_fork
def test_concurrent_registrations_on_sqlite_get_distinct_versions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    Store.open(url, root=tmp_path).close()  # create the schema before the race
    versions = run_registration_race(url, str(tmp_path))
    assert versions == list(range(1, 21))
    with Store.open(url, root=tmp_path) as store:
        listed = [v.version for v in ModelCatalog(store).list_versions("race")]
    assert listed == list(range(1, 21))
