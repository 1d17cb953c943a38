"""The artifact store: files under a root (a local folder or any fsspec URL), each recorded
with its sha256 and size in the ``artifacts`` table and verified when read back; encrypted
(AES-256-GCM) when a key is configured, the sha256 being that of the stored ciphertext.

Writes keep two promises on every kind of root: a reader never sees a half-written file, and
the file and its row agree even when writers race on one path. The row is upserted first (on
PostgreSQL that locks it until the commit, so two writers of one path take turns), the file
is put at its final name inside that transaction, then the transaction commits; when putting
the file fails, the row is rolled back.

* Local folders and filesystems with a rename (``sftp://``, ``memory://``, ...): the bytes go
  to a temporary name first, renamed into place inside the transaction.
* Object stores (``s3://``, ``gs://``, ``az://`` ...): there is no atomic rename (fsspec's
  ``mv`` is a copy then a delete), but a single PUT of the whole object to its final key is
  atomic (large objects go up as a multipart upload, which appears only once it completes).
  So the bytes are sent straight to the final key, in one request, and nothing is left to
  clean up if the process dies. No folders are created either (``makedirs`` on ``s3://``
  would create a missing bucket, turning a typo into a new bucket).

If the process dies after the file is in place but before the commit lands, the path holds
the new file and the old row (or none): a read then fails with
:class:`~shipyard.errors.ArtifactIntegrityError` instead of loading bytes nobody recorded,
and new paths (runs and model versions use fresh folders) are simply never referenced.

Credentials are never part of the store: the root names a bucket and prefix only, and the
filesystem takes its credentials (and, for S3-compatible servers such as MinIO, the
endpoint: ``AWS_ENDPOINT_URL``) from the environment. Messages show the root through
:func:`~shipyard.store.redact_root`.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import sqlalchemy as sa
from fsspec.implementations.local import LocalFileSystem
from sqlalchemy.engine import Connection, Engine

from shipyard.errors import ArtifactIntegrityError, ShipyardError, StoreError
from shipyard.store._crypto import EncryptionKey, open_envelope, resolve_key
from shipyard.store._tables import artifacts as artifacts_table
from shipyard.store._tables import dialect_insert
from shipyard.store._urls import redact_root

__all__ = ["ArtifactRecord", "ArtifactStore", "check_artifact_path"]

logger = logging.getLogger(__name__)

#: fsspec protocols of object stores: a single PUT is atomic and there is no cheap rename.
OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})
_EXTRAS = {"s3": "s3", "s3a": "s3"}
_CREDENTIALS_HINT = (
    "check the credentials and endpoint in the environment (for S3: AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and AWS_ENDPOINT_URL for an S3-compatible server)"
)


@dataclass(frozen=True)
class ArtifactRecord:
    """One stored artifact, as recorded in the metadata store.

    Attributes:
        path: the path relative to the artifact root, ``/``-separated.
        sha256: the hex sha256 of the stored bytes (the ciphertext, when encrypted).
        size: the stored bytes' size.
        run_id: the run that produced it, if any.
        created_at: when it was (last) stored, epoch seconds.
    """

    path: str
    sha256: str
    size: int
    run_id: str | None
    created_at: float


def check_artifact_path(path: str) -> str:
    """Validate an artifact path and return it in canonical form.

    Args:
        path: a relative, ``/``-separated path such as ``models/iris/3/pipeline.joblib``.

    Returns:
        The path without leading ``./`` parts or a trailing ``/``.

    Raises:
        StoreError: the path is empty, absolute, holds ``..``, a backslash or a URL scheme,
            i.e. it could point outside the artifact root.
    """
    parts = [part for part in path.split("/") if part not in ("", ".")]
    bad = not parts or path.startswith(("/", "~")) or "\\" in path or ":" in path or ".." in parts
    if bad:
        msg = (
            f"invalid artifact path {path!r}: expected a non-empty relative path with '/' "
            "separators and no '..', '\\', ':' or leading '/' or '~' (artifact paths must "
            "stay inside the artifact root)"
        )
        raise StoreError(msg)
    return "/".join(parts)


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}/%"


def _record(row: Any) -> ArtifactRecord:
    return ArtifactRecord(row.path, row.sha256, row.size, row.run_id, row.created_at)


class ArtifactStore:
    """Content files with their sha256 recorded in the metadata store.

    Args:
        root: a local directory or an fsspec URL (``s3://bucket/shipyard``, ``memory://x``);
            credentials come from the environment, never from the root.
        engine: the metadata store's engine (the ``artifacts`` table must exist).
        encryption_key: encrypt every artifact written with this key (an
            :class:`EncryptionKey` or its urlsafe base64 text); ``None`` takes
            ``SHIPYARD_ENCRYPTION_KEY``, and without it artifacts are written in clear.
            Encrypted and clear artifacts are both read back.

    Attributes:
        root: the root as given.
        location: the root with any password or query values hidden, for messages.

    Raises:
        StoreError: the root's filesystem is unknown or its library is not installed.
        EncryptionError: the key is invalid, or the cryptography library is missing.

    Example:
        >>> sha = store.artifacts.put("runs/abc/report.html", b"<html/>")  # doctest: +SKIP
        >>> store.artifacts.get("runs/abc/report.html")  # doctest: +SKIP
        b'<html/>'
    """

    def __init__(
        self, root: str, engine: Engine, *, encryption_key: EncryptionKey | str | None = None
    ) -> None:
        self.root = str(root)
        self.location = redact_root(self.root)
        self.engine = engine
        self._key = resolve_key(encryption_key)
        self._fs, base = _filesystem(self.root, self.location)
        self._local = isinstance(self._fs, LocalFileSystem)
        protocols = self._fs.protocol
        protocols = {protocols} if isinstance(protocols, str) else set(protocols)
        self._object_store = bool(protocols & OBJECT_STORE_PROTOCOLS)
        self._base = str(Path(base).resolve()) if self._local else base.rstrip("/")

    @property
    def key_id(self) -> str | None:
        """The id of the key new artifacts are encrypted with, or ``None`` (written in clear)."""
        return None if self._key is None else self._key.key_id

    def _full(self, path: str) -> str:
        return f"{self._base}/{path}"

    def put(self, path: str, data: bytes, *, run_id: str | None = None) -> str:
        """Store ``data`` at ``path`` atomically and record its sha256 and size.

        Readers never see a half-written file: on a local folder the bytes go to a temporary
        name renamed into place once the database row is written; on an object store
        (``s3://`` ...) they go to the final key in one PUT inside the row's transaction (see
        the module docstring). Storing the same path again replaces both file and record.
        With an encryption key, the stored bytes (and the recorded sha256 and size) are those
        of the encrypted envelope.

        Args:
            path: the relative artifact path.
            data: the content.
            run_id: the run that produced the artifact, if any.

        Returns:
            The hex sha256 of the stored bytes (``data``, or its envelope when encrypted).

        Raises:
            StoreError: the path is invalid, the run unknown or the file cannot be written.
        """
        path = check_artifact_path(path)
        if self._key is not None:
            data = self._key.seal(data)
        sha256 = hashlib.sha256(data).hexdigest()
        full = self._full(path)
        tmp = None if self._object_store else f"{full}.tmp-{uuid.uuid4().hex}"
        try:
            if tmp is None:
                with self.engine.begin() as conn:
                    self._upsert(conn, path, sha256, len(data), run_id)
                    self._fs.pipe_file(full, data)  # one PUT: the object appears whole
            else:
                self._write(tmp, data)
                with self.engine.begin() as conn:
                    self._upsert(conn, path, sha256, len(data), run_id)
                    self._rename(tmp, full)
        except sa.exc.IntegrityError as exc:
            self._discard(tmp)
            msg = (
                f"cannot record artifact {path!r}: run_id {run_id!r} is not a run in the "
                "metadata store; pass the id of an existing run, or None"
            )
            raise StoreError(msg) from exc
        except sa.exc.SQLAlchemyError as exc:  # the store unreachable or lost mid-write
            self._discard(tmp)
            doing = f"recording artifact {path!r}"
            raise self._database_error(doing, exc) from exc
        except ShipyardError:
            self._discard(tmp)
            raise
        except Exception as exc:  # OSError, or a filesystem library's own (botocore ...)
            self._discard(tmp)
            msg = f"cannot write artifact {path!r} under {self.location!r}: {_describe(exc)}"
            if not self._local:
                msg += f"; {_CREDENTIALS_HINT}"
            raise StoreError(msg) from exc
        except BaseException:
            self._discard(tmp)
            raise
        logger.debug("stored artifact %s (%d bytes, sha256 %s)", path, len(data), sha256)
        return sha256

    def delete(self, path: str) -> bool:
        """Remove the artifact at ``path``: its record and its file, together.

        The row is deleted and the file removed inside one transaction (which holds the
        row's lock, so a concurrent :meth:`put` of the same path waits and then writes both
        anew); when removing the file fails, the record stays.

        Args:
            path: the relative artifact path.

        Returns:
            Whether an artifact was recorded at ``path``.

        Raises:
            StoreError: the path is invalid, or the store or the file cannot be reached.
        """
        path = check_artifact_path(path)
        full = self._full(path)
        try:
            with self.engine.begin() as conn:
                deleted = conn.execute(
                    sa.delete(artifacts_table).where(artifacts_table.c.path == path)
                ).rowcount
                if deleted:
                    try:
                        self._fs.rm_file(full)
                    except FileNotFoundError:
                        logger.warning("artifact %s had no file to remove", path)
        except sa.exc.SQLAlchemyError as exc:
            doing = f"deleting artifact {path!r}"
            raise self._database_error(doing, exc) from exc
        except Exception as exc:  # OSError, or a filesystem library's own
            msg = (
                f"cannot delete artifact {path!r} under {self.location!r}: {_describe(exc)}; "
                "its record was kept"
            )
            raise StoreError(msg) from exc
        logger.debug("deleted artifact %s", path)
        return bool(deleted)

    @contextmanager
    def _database(self, doing: str) -> Iterator[None]:
        """Turn a metadata store failure into a StoreError naming the store, not the SQL."""
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            raise self._database_error(doing, exc) from exc

    def _database_error(self, doing: str, exc: sa.exc.SQLAlchemyError) -> StoreError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = self.engine.url.render_as_string(hide_password=True)
        msg = (
            f"{doing} failed: the metadata store at {where} did not answer ({detail}); check "
            "that it is running and reachable, then try again"
        )
        return StoreError(msg)

    def _write(self, tmp: str, data: bytes) -> None:
        self._fs.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True)
        with self._fs.open(tmp, "wb") as fh:
            fh.write(data)

    def _rename(self, tmp: str, full: str) -> None:
        if self._local:
            Path(tmp).replace(full)  # atomic on POSIX and Windows
        else:
            self._fs.mv(tmp, full)

    def _discard(self, tmp: str | None) -> None:
        if tmp is None:
            return
        try:
            if self._fs.exists(tmp):
                self._fs.rm(tmp)
        except Exception:  # cleaning up after a failure must not hide that failure
            logger.warning("could not remove the temporary artifact file %s", tmp)

    def _upsert(
        self, conn: Connection, path: str, sha256: str, size: int, run_id: str | None
    ) -> None:
        values = {
            "path": path,
            "sha256": sha256,
            "size": size,
            "run_id": run_id,
            "created_at": time.time(),
        }
        stmt = dialect_insert(conn, artifacts_table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[artifacts_table.c.path],
            set_={k: v for k, v in values.items() if k != "path"},
        )
        conn.execute(stmt)

    def record(self, path: str) -> ArtifactRecord:
        """The stored record of ``path``.

        Raises:
            StoreError: no artifact is recorded at ``path``.
        """
        path = check_artifact_path(path)
        with (
            self._database(f"reading the record of artifact {path!r}"),
            self.engine.connect() as conn,
        ):
            row = conn.execute(
                sa.select(artifacts_table).where(artifacts_table.c.path == path)
            ).first()
        if row is None:
            msg = (
                f"no artifact is recorded at {path!r} in the metadata store (artifact root "
                f"{self.location!r}); check the path, or store it first with put()"
            )
            raise StoreError(msg)
        return _record(row)

    def get(self, path: str) -> bytes:
        """Read ``path``, verify it against the sha256 recorded when it was stored, then
        decrypt it if it is encrypted (nothing is decrypted before the sha256 matches).

        Args:
            path: the relative artifact path.

        Returns:
            The content (decrypted).

        Raises:
            StoreError: no record or no file exists for ``path``.
            ArtifactIntegrityError: the stored sha256 differs from the recorded one, or the
                encrypted content fails authentication.
            EncryptionError: the artifact is encrypted and no key, or another key, is set.
        """
        rec = self.record(path)
        try:
            data = self._fs.cat_file(self._full(rec.path))
        except FileNotFoundError as exc:
            msg = (
                f"artifact {rec.path!r} is recorded in the metadata store but its file is "
                f"missing under {self.location!r} ({exc}); was the artifact root moved or "
                "cleaned? point artifact_root at the right place or store it again"
            )
            raise StoreError(msg) from exc
        except Exception as exc:  # OSError, or a filesystem library's own (botocore ...)
            msg = f"cannot read artifact {rec.path!r} under {self.location!r}: {_describe(exc)}"
            if not self._local:
                msg += f"; {_CREDENTIALS_HINT}"
            raise StoreError(msg) from exc
        found = hashlib.sha256(data).hexdigest()
        if found != rec.sha256:
            msg = (
                f"artifact {rec.path!r} under {self.location!r} has sha256 {found}, expected "
                f"{rec.sha256}: the file was changed after it was stored; refusing to load "
                "it (store it again if the change is intended)"
            )
            raise ArtifactIntegrityError(msg)
        return open_envelope(data, self._key, what=f"artifact {rec.path!r}")

    def list(self, prefix: str = "") -> list[ArtifactRecord]:
        """The records under folder ``prefix`` (recursively), sorted by path.

        Args:
            prefix: a folder such as ``runs/abc``; ``""`` lists everything. A path that is
                itself an artifact is included.

        Returns:
            The matching records.
        """
        query = sa.select(artifacts_table).order_by(artifacts_table.c.path)
        if prefix.strip("/."):
            folder = check_artifact_path(prefix)
            query = query.where(
                (artifacts_table.c.path == folder)
                | artifacts_table.c.path.like(_like_prefix(folder), escape="\\")
            )
        with self._database("listing artifacts"), self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def exists(self, path: str) -> bool:
        """Whether ``path`` is recorded and its file is present (content is not hashed)."""
        path = check_artifact_path(path)
        with self._database(f"looking up artifact {path!r}"), self.engine.connect() as conn:
            recorded = conn.execute(
                sa.select(artifacts_table.c.id).where(artifacts_table.c.path == path)
            ).first()
        if recorded is None:
            return False
        full = self._full(path)
        try:
            if not self._local:  # another process may have written or removed it since
                self._fs.invalidate_cache(full)
            return bool(self._fs.exists(full))
        except Exception as exc:  # OSError, or a filesystem library's own
            msg = f"cannot look up artifact {path!r} under {self.location!r}: {_describe(exc)}"
            raise StoreError(msg) from exc

    def __repr__(self) -> str:
        return f"ArtifactStore({self.location!r})"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _filesystem(root: str, location: str) -> tuple[Any, str]:
    """The fsspec filesystem and base path of ``root``; StoreError names the missing extra."""
    try:
        return fsspec.core.url_to_fs(root)
    except ImportError as exc:
        scheme = root.split("://", 1)[0]
        extra = _EXTRAS.get(scheme)
        hint = f"pip install 'shipyard[{extra}]'" if extra else f"install fsspec's {scheme} support"
        msg = f"cannot use the artifact root {location!r}: {exc}; {hint}"
        raise StoreError(msg) from exc
    except ValueError as exc:
        msg = (
            f"cannot use the artifact root {location!r}: {exc}; expected a local folder or an "
            "fsspec URL such as s3://bucket/prefix (SHIPYARD_ARTIFACT_ROOT)"
        )
        raise StoreError(msg) from exc
