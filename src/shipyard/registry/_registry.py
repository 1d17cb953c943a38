"""The registry API: register packages, resolve URIs, load verified models, move aliases."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from shipyard.errors import ModelNotFoundError, RegistryError, StoreError
from shipyard.model import METADATA_FILE, ModelPackage
from shipyard.registry._catalog import AliasMove, ModelCatalog, ModelRecord, VersionRecord
from shipyard.registry._decisions import GateRecord, gate_records, record_gate
from shipyard.registry._uri import ModelRef, parse_model_uri
from shipyard.store import Store, tables

__all__ = ["Registry"]

logger = logging.getLogger(__name__)


class Registry:
    """Versioned models with aliases, over a :class:`~shipyard.store.Store`.

    Args:
        store: the metadata and artifact store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._catalog = ModelCatalog(store)

    def register(
        self,
        name: str,
        package: ModelPackage,
        *,
        run_id: str | None = None,
        created_by: str = "shipyard",
    ) -> VersionRecord:
        """Store the package's files, then record a new version of ``name``.

        The files go to a fresh folder first, so a version row never points at missing
        files; two processes registering at once get distinct versions. When storing a file
        fails (a full disk, the database gone), no version is registered: the files already
        stored stay in their folder, which no version names.

        Raises:
            StoreError: a file could not be stored (no version was registered), or the version
                could not be recorded.
        """
        folder = f"models/{name}/{uuid.uuid4().hex}"
        not_registered = f"model {name!r} was not registered (no version was created)"
        try:
            for filename, data in package.to_files().items():
                self._store.artifacts.put(f"{folder}/{filename}", data, run_id=run_id)
        except StoreError as exc:  # same class: EncryptionError stays one
            msg = f"{not_registered}: {exc}"
            raise type(exc)(msg) from exc
        try:
            record = self._catalog.create_version(
                name,
                package_path_for=lambda _version: folder,
                run_id=run_id,
                task=package.task,
                metrics=dict(package.metadata.get("metrics", {})),
                signature=package.signature.model_dump(mode="json"),
                lineage=dict(package.metadata.get("lineage", {})),
                created_by=created_by,
            )
        except StoreError as exc:  # the files are stored; the version row may be missing
            msg = f"model {name!r}: recording the new version failed: {exc}"
            raise type(exc)(msg) from exc
        return record

    def resolve(self, uri: str | ModelRef) -> VersionRecord:
        """The version a model URI points at.

        Raises:
            InvalidModelURIError: the URI does not parse.
            ModelNotFoundError: no such model, version, alias or run.
        """
        ref = parse_model_uri(uri) if isinstance(uri, str) else uri
        if ref.run_id is not None:
            return self._by_run(ref.run_id)
        assert ref.name is not None  # the parser sets a name unless run_id is set
        if ref.alias is not None:
            return self._catalog.resolve_alias(ref.name, ref.alias)
        if ref.version is not None:
            return self._catalog.get_version(ref.name, ref.version)
        return self._catalog.latest_version(ref.name)

    def load(self, uri: str | ModelRef) -> ModelPackage:
        """Load a model package, verifying every file's sha256 before unpickling.

        Raises:
            ArtifactIntegrityError: a file changed after it was stored.
        """
        record = self.resolve(uri)
        files = {
            item.path.rsplit("/", 1)[-1]: self._store.artifacts.get(item.path)
            for item in self._store.artifacts.list(record.package_path)
        }
        package = ModelPackage.from_files(files)
        package.metadata.update({"name": record.name, "version": record.version})
        return package

    def package_metadata(self, record: VersionRecord) -> dict[str, Any]:
        """A version's package metadata (``metadata.json``: lineage, PII columns and key id,
        metrics ...), sha256-verified, without loading the model.

        Raises:
            StoreError: the package's metadata file is missing.
            ArtifactIntegrityError: it changed after it was stored.
            EncryptionError: it is encrypted and no key, or another key, is set.
        """
        data = self._store.artifacts.get(f"{record.package_path}/{METADATA_FILE}")
        return dict(json.loads(data))

    def promote(
        self,
        name: str,
        version: int,
        alias: str = "production",
        *,
        moved_by: str,
        reason: str | None = None,
    ) -> AliasMove:
        """Point ``alias`` at ``version`` (kept in the alias history)."""
        return self._catalog.set_alias(name, alias, version, moved_by=moved_by, reason=reason)

    def rollback(
        self, name: str, alias: str = "production", *, moved_by: str, reason: str | None = None
    ) -> AliasMove:
        """Point ``alias`` back at the version it held before its latest move.

        Raises:
            RegistryError: the alias never held another version.
        """
        history = self._catalog.alias_history(name, alias)
        if not history or history[-1].previous_version is None:
            msg = f"{name}@{alias} has no earlier version to roll back to"
            raise RegistryError(msg)
        previous = history[-1].previous_version
        why = reason or f"rollback from version {history[-1].version}"
        return self._catalog.set_alias(name, alias, previous, moved_by=moved_by, reason=why)

    def list_models(self) -> list[ModelRecord]:
        """Every registered model."""
        return self._catalog.list_models()

    def list_versions(self, name: str) -> list[VersionRecord]:
        """Every version of ``name``, oldest first."""
        return self._catalog.list_versions(name)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every alias move of ``name`` (optionally one alias), oldest first."""
        return self._catalog.alias_history(name, alias)

    def champion(self, name: str, alias: str) -> VersionRecord | None:
        """The version holding ``alias``, or ``None`` when the model or alias does not exist."""
        try:
            return self._catalog.resolve_alias(name, alias)
        except ModelNotFoundError:
            return None

    def record_gate(
        self,
        name: str,
        version: int,
        *,
        alias: str,
        promoted: bool,
        reason: str,
        evidence: Mapping[str, Any],
        decided_by: str,
    ) -> GateRecord:
        """Keep a promotion gate's decision and evidence with a version (see
        :func:`shipyard.registry.gate.decide_promotion`, which decides and calls this).

        Raises:
            ModelNotFoundError: no such model or version.
            StoreError: the store failed.
        """
        self._catalog.get_version(name, version)
        return record_gate(
            self._store,
            name,
            version,
            alias=alias,
            promoted=promoted,
            reason=reason,
            evidence=evidence,
            decided_by=decided_by,
        )

    def gate_decisions(self, name: str, version: int | None = None) -> list[GateRecord]:
        """The gate decisions on ``name`` (only ``version``'s when given), newest first."""
        return gate_records(self._store, name, version)

    def _by_run(self, run_id: str) -> VersionRecord:
        mv = tables.model_versions
        query = sa.select(mv.c.name, mv.c.version).where(mv.c.run_id.startswith(run_id))
        with self._store.connect() as conn:
            rows: list[Any] = list(conn.execute(query))
        if not rows:
            msg = f"no model version was registered by run {run_id!r}; see 'shipyard runs list'"
            raise ModelNotFoundError(msg)
        if len(rows) > 1:
            found = ", ".join(f"models:/{r.name}/{r.version}" for r in rows)
            msg = f"run {run_id!r} registered several versions ({found}); use one of those URIs"
            raise RegistryError(msg)
        return self._catalog.get_version(rows[0].name, rows[0].version)
