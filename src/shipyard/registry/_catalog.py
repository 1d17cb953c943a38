"""The model registry's persistence: registered models, numbered versions and movable aliases.

Every write happens in one transaction that first locks the model's ``registered_models`` row
(SQLite: ``BEGIN IMMEDIATE`` locks the whole database; PostgreSQL: ``SELECT ... FOR UPDATE``),
so concurrent registrations from several processes get distinct, gap-free version numbers and
alias moves record the right ``previous_version``. Version numbers start at 1.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.errors import ModelNotFoundError, RegistryError
from shipyard.store import Store, check_artifact_path, dialect_insert, tables

alias_history = tables.alias_history
aliases = tables.aliases
model_versions = tables.model_versions
registered_models = tables.registered_models
runs = tables.runs

__all__ = [
    "ALIAS_PATTERN",
    "MODEL_NAME_PATTERN",
    "AliasMove",
    "ModelCatalog",
    "ModelRecord",
    "VersionRecord",
]

logger = logging.getLogger(__name__)

ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_ATTEMPTS = 8
_SHOWN = 20


@dataclass(frozen=True)
class VersionRecord:
    """One registered model version.

    Attributes:
        name: the registered model's name.
        version: the version number (1, 2, ...).
        run_id: the run that trained it, if recorded.
        package_path: the package folder, relative to the artifact root.
        task: the model's task (e.g. ``"classification"``).
        metrics: evaluation metrics at registration.
        signature: the input/output Signature as a dict.
        lineage: where it came from (spec hash, dataset fingerprint, ...).
        created_at: registration time, epoch seconds.
        created_by: who registered it.
        aliases: the aliases pointing at this version, sorted.
    """

    name: str
    version: int
    run_id: str | None
    package_path: str
    task: str
    metrics: dict[str, Any]
    signature: dict[str, Any]
    lineage: dict[str, Any]
    created_at: float
    created_by: str
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """The version's model URI, ``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class ModelRecord:
    """A registered model with its newest version and aliases.

    Attributes:
        name: the model's name.
        description: free text, if set.
        latest_version: the highest version number, ``None`` before the first version.
        aliases: alias -> version.
        created_at: when the model was first registered, epoch seconds.
    """

    name: str
    description: str | None
    latest_version: int | None
    aliases: Mapping[str, int] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True)
class AliasMove:
    """One change of an alias, as kept in ``alias_history``.

    Attributes:
        name: the model's name.
        alias: the alias moved.
        version: the version it now points at; ``None`` when the alias was removed.
        previous_version: the version it pointed at before; ``None`` when it is new.
        moved_at: when, epoch seconds.
        moved_by: who moved it.
        reason: why, if given.
    """

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    moved_at: float
    moved_by: str
    reason: str | None = None


def _check_name(name: str) -> None:
    if not MODEL_NAME_PATTERN.match(name):
        msg = (
            f"invalid model name {name!r}: expected 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (it is used in model URIs and artifact paths)"
        )
        raise RegistryError(msg)


def _check_alias(alias: str) -> None:
    if not ALIAS_PATTERN.match(alias):
        msg = (
            f"invalid alias {alias!r}: expected a lowercase letter followed by up to 63 "
            "lowercase letters, digits, '_' or '-' (for example 'production' or 'staging')"
        )
        raise RegistryError(msg)


def _check_json(name: str, version_fields: Mapping[str, Any]) -> None:
    for key, value in version_fields.items():
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError) as exc:
            msg = (
                f"cannot register model {name!r}: its {key} are not JSON-serialisable "
                f"({exc}); pass plain dicts of str, int, float, bool, list and None"
            )
            raise RegistryError(msg) from exc


def _shown(items: list[str]) -> str:
    if not items:
        return "none"
    more = f", ... ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _version_record(row: Any, alias_names: tuple[str, ...]) -> VersionRecord:
    return VersionRecord(**row._mapping, aliases=alias_names)


def _move(row: Any) -> AliasMove:
    return AliasMove(**{k: v for k, v in row._mapping.items() if k != "id"})


class ModelCatalog:
    """Registered models, versions and aliases over a :class:`~shipyard.store.Store`.

    Args:
        store: the open metadata store.

    Example:
        >>> catalog = ModelCatalog(Store.open())  # doctest: +SKIP
        >>> v = catalog.create_version("iris", run_id=None, task="classification",
        ...     metrics={}, signature={}, lineage={}, created_by="me")  # doctest: +SKIP
        >>> catalog.set_alias("iris", "production", v.version, moved_by="me")  # doctest: +SKIP
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- lookups shared by reads and errors -------------------------------------------

    def _model_names(self, conn: Connection) -> list[str]:
        query = sa.select(registered_models.c.name).order_by(registered_models.c.name)
        return list(conn.execute(query).scalars())

    def _versions_of(self, conn: Connection, name: str) -> list[int]:
        query = (
            sa.select(model_versions.c.version)
            .where(model_versions.c.name == name)
            .order_by(model_versions.c.version)
        )
        return list(conn.execute(query).scalars())

    def _aliases_of(self, conn: Connection, name: str) -> dict[str, int]:
        query = (
            sa.select(aliases.c.alias, aliases.c.version)
            .where(aliases.c.name == name)
            .order_by(aliases.c.alias)
        )
        return {row.alias: row.version for row in conn.execute(query)}

    def _no_model(self, conn: Connection, name: str) -> ModelNotFoundError:
        msg = (
            f"no registered model named {name!r}; registered models: "
            f"{_shown(self._model_names(conn))}. Register a version first, or check the name"
        )
        return ModelNotFoundError(msg)

    def _model_exists(self, conn: Connection, name: str, *, lock: bool = False) -> bool:
        query = sa.select(registered_models.c.name).where(registered_models.c.name == name)
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first() is not None

    def _require_version(self, conn: Connection, name: str, version: int) -> None:
        if not self._model_exists(conn, name):
            raise self._no_model(conn, name)
        found = conn.execute(
            sa.select(model_versions.c.version).where(
                (model_versions.c.name == name) & (model_versions.c.version == version)
            )
        ).first()
        if found is None:
            versions = [str(v) for v in self._versions_of(conn, name)]
            msg = f"model {name!r} has no version {version}; its versions: {_shown(versions)}"
            raise ModelNotFoundError(msg)

    # --- versions ---------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        *,
        package_path_for: Callable[[int], str] | None = None,
        run_id: str | None,
        task: str,
        metrics: dict[str, Any],
        signature: dict[str, Any],
        lineage: dict[str, Any],
        created_by: str,
    ) -> VersionRecord:
        """Register the next version of ``name`` (creating the model when new).

        Args:
            name: the model name (letters, digits, ``_``, ``-``, ``.``).
            package_path_for: maps the new version number to its package folder; the
                default is ``models/<name>/<version>``.
            run_id: the run that trained the model, or ``None``.
            task: the model's task.
            metrics: evaluation metrics (JSON-serialisable).
            signature: the Signature as a dict.
            lineage: the lineage as a dict.
            created_by: who registers it.

        Returns:
            The new version, numbered ``max(existing) + 1``.

        Raises:
            RegistryError: a bad name, an unknown run or non-JSON fields.
        """
        _check_name(name)
        _check_json(name, {"metrics": metrics, "signature": signature, "lineage": lineage})
        values = {
            "run_id": run_id,
            "task": task,
            "metrics": metrics,
            "signature": signature,
            "lineage": lineage,
            "created_by": created_by,
        }
        for attempt in range(1, MAX_ATTEMPTS):
            try:
                return self._create_once(name, package_path_for, values)
            except sa.exc.IntegrityError:
                # Only a lost race gets here (the model row is locked first): try again.
                logger.debug("version race on %s (attempt %d); retrying", name, attempt)
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        return self._create_once(name, package_path_for, values)

    def _create_once(
        self,
        name: str,
        package_path_for: Callable[[int], str] | None,
        values: dict[str, Any],
    ) -> VersionRecord:
        with self.store.begin() as conn:
            record = self._insert_version(conn, name, package_path_for, values)
        logger.info("registered %s version %d", name, record.version)
        return record

    def _insert_version(
        self,
        conn: Connection,
        name: str,
        package_path_for: Callable[[int], str] | None,
        values: dict[str, Any],
    ) -> VersionRecord:
        now = time.time()
        ensure = dialect_insert(conn, registered_models).values(name=name, created_at=now)
        conn.execute(ensure.on_conflict_do_nothing(index_elements=[registered_models.c.name]))
        self._model_exists(conn, name, lock=True)
        run_id = values["run_id"]
        if (
            run_id is not None
            and conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None
        ):
            msg = (
                f"cannot register model {name!r}: run_id {run_id!r} is not a run in the "
                "metadata store; pass the id of the run that trained it, or None"
            )
            raise RegistryError(msg)
        current = conn.execute(
            sa.select(sa.func.max(model_versions.c.version)).where(model_versions.c.name == name)
        ).scalar()
        version = (current or 0) + 1
        raw_path = package_path_for(version) if package_path_for else f"models/{name}/{version}"
        row = {
            **values,
            "name": name,
            "version": version,
            "package_path": check_artifact_path(raw_path),
            "created_at": now,
        }
        conn.execute(sa.insert(model_versions).values(**row))
        return VersionRecord(**row)

    def get_version(self, name: str, version: int) -> VersionRecord:
        """The version ``version`` of model ``name``.

        Raises:
            ModelNotFoundError: no such model or version (the message lists what exists).
        """
        with self.store.connect() as conn:
            self._require_version(conn, name, version)
            return self._read_version(conn, name, version)

    def _read_version(self, conn: Connection, name: str, version: int) -> VersionRecord:
        row = conn.execute(
            sa.select(model_versions).where(
                (model_versions.c.name == name) & (model_versions.c.version == version)
            )
        ).one()
        names = tuple(a for a, v in self._aliases_of(conn, name).items() if v == version)
        return _version_record(row, names)

    def latest_version(self, name: str) -> VersionRecord:
        """The highest-numbered version of ``name``.

        Raises:
            ModelNotFoundError: no such model, or it has no versions.
        """
        with self.store.connect() as conn:
            versions = self._versions_of(conn, name)
            if not versions:
                raise self._no_model(conn, name)
            return self._read_version(conn, name, versions[-1])

    def list_versions(self, name: str) -> list[VersionRecord]:
        """Every version of ``name``, oldest first.

        Raises:
            ModelNotFoundError: no such model.
        """
        with self.store.connect() as conn:
            if not self._model_exists(conn, name):
                raise self._no_model(conn, name)
            by_version: dict[int, list[str]] = {}
            for alias, version in self._aliases_of(conn, name).items():
                by_version.setdefault(version, []).append(alias)
            rows = conn.execute(
                sa.select(model_versions)
                .where(model_versions.c.name == name)
                .order_by(model_versions.c.version)
            )
            return [_version_record(r, tuple(by_version.get(r.version, ()))) for r in rows]

    def list_models(self) -> list[ModelRecord]:
        """Every registered model, sorted by name, with its latest version and aliases."""
        latest = sa.func.max(model_versions.c.version).label("latest_version")
        query = (
            sa.select(registered_models, latest)
            .select_from(registered_models.outerjoin(model_versions))
            .group_by(*registered_models.c)
            .order_by(registered_models.c.name)
        )
        with self.store.connect() as conn:
            rows = conn.execute(query).all()
            alias_rows = conn.execute(sa.select(aliases).order_by(aliases.c.alias)).all()
        by_model: dict[str, dict[str, int]] = {}
        for a in alias_rows:
            by_model.setdefault(a.name, {})[a.alias] = a.version
        return [
            ModelRecord(
                r.name, r.description, r.latest_version, by_model.get(r.name, {}), r.created_at
            )
            for r in rows
        ]

    # --- aliases ----------------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        moved_by: str,
        reason: str | None = None,
    ) -> AliasMove:
        """Point ``alias`` of ``name`` at ``version`` and record the move.

        Args:
            name: the model name.
            alias: the alias (``^[a-z][a-z0-9_-]{0,63}$``), e.g. ``production``.
            version: an existing version of the model.
            moved_by: who moves it.
            reason: why, kept in the history.

        Returns:
            The move, with the version the alias pointed at before.

        Raises:
            RegistryError: the alias name is invalid.
            ModelNotFoundError: no such model or version.
        """
        _check_alias(alias)
        with self.store.begin() as conn:
            self._lock(conn, name)
            self._require_version(conn, name, version)
            previous = self._aliases_of(conn, name).get(alias)
            stmt = dialect_insert(conn, aliases).values(name=name, alias=alias, version=version)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[aliases.c.name, aliases.c.alias],
                    set_={"version": stmt.excluded.version},
                )
            )
            move = self._record_move(conn, name, alias, version, previous, moved_by, reason)
        logger.info("alias %s@%s: %s -> %s", name, alias, previous, version)
        return move

    def delete_alias(
        self, name: str, alias: str, *, moved_by: str, reason: str | None = None
    ) -> AliasMove:
        """Remove ``alias`` from ``name`` and record the removal.

        Returns:
            The move, with ``version=None`` and the version the alias pointed at.

        Raises:
            ModelNotFoundError: no such model or alias (the message lists the aliases).
        """
        with self.store.begin() as conn:
            self._lock(conn, name)
            current = self._aliases_of(conn, name)
            if alias not in current:
                raise self._no_alias(name, alias, current)
            conn.execute(
                sa.delete(aliases).where((aliases.c.name == name) & (aliases.c.alias == alias))
            )
            move = self._record_move(conn, name, alias, None, current[alias], moved_by, reason)
        logger.info("alias %s@%s removed (was %s)", name, alias, current[alias])
        return move

    def _lock(self, conn: Connection, name: str) -> None:
        """Lock the model's row for this transaction; ModelNotFoundError when absent."""
        if not self._model_exists(conn, name, lock=True):
            raise self._no_model(conn, name)

    def _no_alias(self, name: str, alias: str, current: dict[str, int]) -> ModelNotFoundError:
        known = [f"{a} -> {v}" for a, v in current.items()]
        msg = (
            f"model {name!r} has no alias {alias!r}; its aliases: {_shown(known)}. "
            f"Set it with set_alias({name!r}, {alias!r}, VERSION)"
        )
        return ModelNotFoundError(msg)

    def _record_move(
        self,
        conn: Connection,
        name: str,
        alias: str,
        version: int | None,
        previous: int | None,
        moved_by: str,
        reason: str | None,
    ) -> AliasMove:
        move = AliasMove(name, alias, version, previous, time.time(), moved_by, reason)
        conn.execute(sa.insert(alias_history).values(**move.__dict__))
        return move

    def resolve_alias(self, name: str, alias: str) -> VersionRecord:
        """The version ``alias`` of ``name`` points at.

        Raises:
            ModelNotFoundError: no such model or alias (the message names the known aliases).
        """
        with self.store.connect() as conn:
            if not self._model_exists(conn, name):
                raise self._no_model(conn, name)
            current = self._aliases_of(conn, name)
            if alias not in current:
                raise self._no_alias(name, alias, current)
            return self._read_version(conn, name, current[alias])

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """The alias moves of ``name`` (only ``alias``'s when given), oldest first.

        Raises:
            ModelNotFoundError: no such model.
        """
        query = sa.select(alias_history).where(alias_history.c.name == name)
        if alias is not None:
            query = query.where(alias_history.c.alias == alias)
        query = query.order_by(alias_history.c.moved_at, alias_history.c.id)
        with self.store.connect() as conn:
            if not self._model_exists(conn, name):
                raise self._no_model(conn, name)
            return [_move(row) for row in conn.execute(query)]
