"""The metadata store: a SQLAlchemy engine over SQLite or PostgreSQL, migrated on open.

``Store.open()`` creates the engine, brings the schema to the newest Alembic revision and
attaches the artifact store. SQLite connections run in WAL mode with foreign keys on and a 30 s
busy timeout; ``Store.begin()`` starts SQLite write transactions with ``BEGIN IMMEDIATE`` so
that read-then-write transactions in several processes queue instead of failing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from shipyard.errors import StoreError
from shipyard.store._artifacts import ArtifactStore
from shipyard.store._crypto import EncryptionKey, resolve_key
from shipyard.store._tables import metadata
from shipyard.store._urls import redact_root, redact_url

__all__ = [
    "ARTIFACT_ROOT_ENV",
    "HEAD_REVISION",
    "HOME_ENV",
    "STORE_URL_ENV",
    "Store",
    "alembic_config",
    "current_revision",
    "default_store_url",
    "migrate",
    "redact_url",
    "store_location",
]

logger = logging.getLogger(__name__)

DB_FILE = "shipyard.db"
ARTIFACT_DIR = "artifacts"
DEFAULT_HOME = ".shipyard"
#: The environment variables that locate the store (read only by :func:`store_location`).
STORE_URL_ENV = "SHIPYARD_STORE_URL"
HOME_ENV = "SHIPYARD_HOME"
ARTIFACT_ROOT_ENV = "SHIPYARD_ARTIFACT_ROOT"
_IMMEDIATE = "shipyard_begin_immediate"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


STUDY_SCHEMA = "shipyard_optuna"
"""The PostgreSQL schema of shared searches' Optuna tables (see :meth:`Store.study_storage`)."""
STUDY_FILE = "optuna.db"
"""The SQLite file of shared searches' Optuna tables, next to the store's."""


def default_store_url(root: str | Path = ".shipyard") -> str:
    """The default metadata store URL: a SQLite file ``<root>/shipyard.db``.

    Args:
        root: the Shipyard directory (created by ``Store.open`` when missing).

    Returns:
        A ``sqlite:///`` URL with an absolute path.
    """
    return f"sqlite:///{(Path(root) / DB_FILE).resolve().as_posix()}"


def store_location(
    url: str | None = None,
    root: str | Path | None = None,
    artifact_root: str | None = None,
) -> tuple[str | None, Path, str | None]:
    """Where the store is, for every entry point (CLI, ``shipyard.open_store``, tracking).

    Each setting is taken from the argument, else its environment variable, else the default:
    the metadata URL from ``url`` > ``SHIPYARD_STORE_URL`` > SQLite ``<root>/shipyard.db``;
    the local root from ``root`` > ``SHIPYARD_HOME`` > ``.shipyard`` (in the working
    directory); artifacts from ``artifact_root`` > ``SHIPYARD_ARTIFACT_ROOT`` >
    ``<root>/artifacts``. Empty values count as unset.

    Returns:
        The SQLAlchemy URL (``None``: the default SQLite file under the root), the local
        root folder, and the artifact root (``None``: ``<root>/artifacts``).

    Example:
        >>> store_location("sqlite://", root="/tmp/sy", artifact_root="s3://b/sy")
        ('sqlite://', PosixPath('/tmp/sy'), 's3://b/sy')
    """
    url = url or os.environ.get(STORE_URL_ENV) or None
    folder = Path(root or os.environ.get(HOME_ENV) or DEFAULT_HOME)
    artifacts = artifact_root or os.environ.get(ARTIFACT_ROOT_ENV) or None
    return url, folder, artifacts


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite settings; hands transaction control to SQLAlchemy."""
    # pysqlite's own implicit BEGIN is unreliable; ``_on_sqlite_begin`` emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    """Start a deferred transaction, or an immediate one for ``Store.begin()``."""
    immediate = conn.get_execution_options().get(_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _is_memory_sqlite(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _create_engine(url: str) -> Engine:
    """Build the engine for ``url`` with the per-dialect settings; raises StoreError."""
    try:
        parsed = sa.make_url(url)
        if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
            msg = f"unsupported database backend {parsed.get_backend_name()!r}"
            raise ValueError(msg)
        kwargs: dict[str, Any] = {}
        if _is_memory_sqlite(parsed):
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        elif parsed.get_backend_name() == "postgresql":
            kwargs = {"pool_pre_ping": True}
            if "connect_timeout" not in parsed.query:
                kwargs["connect_args"] = {"connect_timeout": 10}
        engine = sa.create_engine(parsed, **kwargs)
    except Exception as exc:
        msg = (
            f"cannot use the metadata store URL {redact_url(url)!r}: {exc}. Expected a "
            "SQLAlchemy URL such as 'sqlite:///.shipyard/shipyard.db' or "
            "'postgresql+psycopg://user@host/db' (install shipyard[postgres] for PostgreSQL); "
            "fix SHIPYARD_STORE_URL or the --store option"
        )
        raise StoreError(msg) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _checkout_error(url: str, exc: Exception) -> StoreError:
    detail = getattr(exc, "orig", None) or exc
    msg = (
        f"cannot connect to the metadata store at {redact_url(url)}: {detail}; check that "
        "the database server is running, reachable and that the URL is right "
        "(SHIPYARD_STORE_URL or the --store option)"
    )
    return StoreError(msg)


def _disconnect_error(url: str, exc: sa.exc.DBAPIError) -> StoreError:
    msg = (
        f"lost the connection to the metadata store at {redact_url(url)}: "
        f"{str(exc.orig).strip()}; the transaction in progress was not committed (unless the "
        "connection broke while committing); check that the database server is running and "
        "reachable, then try again"
    )
    return StoreError(msg)


@contextmanager
def _checkout(engine: Engine, url: str) -> Iterator[Connection]:
    """A pooled connection; failing to get one, or losing it while it is used (the server
    restarted, the network failed), raises StoreError naming the redacted URL."""
    try:
        conn = engine.connect()
    except sa.exc.SQLAlchemyError as exc:
        raise _checkout_error(url, exc) from exc
    try:
        with conn:
            yield conn
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise _disconnect_error(url, exc) from exc


# --- migrations -------------------------------------------------------------------------

#: The newest Alembic revision shipped in ``shipyard/store/migrations/versions``.
HEAD_REVISION = "0005"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x5348_4950  # "SHIP": serialises concurrent migrations on PostgreSQL

# Alembic's own bookkeeping table, declared here so a fresh database is stamped without
# loading Alembic at all.
_version_table = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def current_revision(conn: Connection) -> str | None:
    """The Alembic revision the database is at, ``None`` when it has never been migrated."""
    if not sa.inspect(conn).has_table(_version_table.name):
        return None
    return conn.execute(sa.select(_version_table.c.version_num)).scalar()


def alembic_config(conn: Connection | None = None) -> Any:
    """An Alembic ``Config`` for the shipped migrations (no ``alembic.ini`` needed).

    Args:
        conn: the connection migrations run on (``env.py`` reads it from ``attributes``).

    Returns:
        The ``alembic.config.Config``.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = conn
    return cfg


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """One transaction that holds the database's migration lock until it ends."""
    if engine.dialect.name == "sqlite":
        with engine.execution_options(**{_IMMEDIATE: True}).begin() as conn:
            yield conn
        return
    with engine.begin() as conn:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        yield conn


def _create_schema(conn: Connection) -> None:
    """Create every table at once and stamp HEAD_REVISION (a brand-new database)."""
    existing = set(sa.inspect(conn).get_table_names()) & set(metadata.tables)
    if existing:
        msg = (
            f"the database holds Shipyard tables ({', '.join(sorted(existing))}) but no "
            "alembic_version table, so its schema revision is unknown; point the store at an "
            "empty database, or restore the alembic_version table from a backup"
        )
        raise StoreError(msg)
    # Creating the tables directly is much faster than replaying every migration; a test
    # checks that both paths give the same schema.
    metadata.create_all(conn)
    _version_table.create(conn)
    conn.execute(sa.insert(_version_table).values(version_num=HEAD_REVISION))
    logger.info("created the metadata store schema at revision %s", HEAD_REVISION)


def _upgrade(conn: Connection, revision: str) -> None:
    """Run the Alembic migrations from ``revision`` to the head."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    cfg = alembic_config(conn)
    try:
        ScriptDirectory.from_config(cfg).get_revision(revision)
    except CommandError as exc:
        msg = (
            f"the metadata store is at schema revision {revision!r}, which this version of "
            f"Shipyard (newest revision {HEAD_REVISION!r}) does not know; upgrade Shipyard"
        )
        raise StoreError(msg) from exc
    logger.info("migrating the metadata store from revision %s to %s", revision, HEAD_REVISION)
    command.upgrade(cfg, "head")


def _migrate_locked(conn: Connection) -> None:
    """Bring the schema to HEAD_REVISION; the caller holds the migration lock."""
    revision = current_revision(conn)
    if revision == HEAD_REVISION:
        return
    if revision is None:
        _create_schema(conn)
    else:
        _upgrade(conn, revision)


def migrate(engine: Engine, url: str) -> None:
    """Apply pending migrations; a cheap revision check when already up to date.

    Args:
        engine: the store's engine.
        url: the store URL, for error messages (redacted here).

    Raises:
        StoreError: the database is unreachable or a migration failed.
    """
    try:
        with _checkout(engine, url) as conn:
            if current_revision(conn) == HEAD_REVISION:
                return
        with _migration_lock(engine) as conn:
            _migrate_locked(conn)
    except StoreError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        msg = (
            f"cannot migrate the metadata store at {redact_url(url)} to schema revision "
            f"{HEAD_REVISION}: {exc}; check the database permissions, or restore a backup "
            "if the schema was changed by hand"
        )
        raise StoreError(msg) from exc


class Store:
    """The metadata store (runs, datasets, models) plus the artifact store.

    Attributes:
        url: the SQLAlchemy URL (log ``redact_url(url)``, never the URL itself).
        engine: the SQLAlchemy engine.
        artifacts: the artifact store, whose files are recorded in the ``artifacts`` table.

    Example:
        >>> store = Store.open(root=tmp_dir)  # doctest: +SKIP
        >>> with store.begin() as conn:  # doctest: +SKIP
        ...     conn.execute(...)
    """

    def __init__(self, url: str, engine: Engine, artifacts: ArtifactStore) -> None:
        self.url = url
        self.engine = engine
        self.artifacts = artifacts
        self._immediate_engine = engine.execution_options(**{_IMMEDIATE: True})

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        root: str | Path = ".shipyard",
        artifact_root: str | None = None,
        encryption_key: EncryptionKey | str | None = None,
    ) -> Store:
        """Open (creating and migrating as needed) a metadata store.

        Args:
            url: a SQLAlchemy URL; ``None`` uses ``sqlite:///<root>/shipyard.db``.
            root: the Shipyard directory for the default database and artifacts.
            artifact_root: a local path or fsspec URL; ``None`` uses ``<root>/artifacts``.
            encryption_key: encrypt artifacts with this key (urlsafe base64 of 32 bytes);
                ``None`` takes ``SHIPYARD_ENCRYPTION_KEY``, if set.

        Returns:
            The open store, its schema at the newest revision.

        Raises:
            StoreError: the URL is invalid, the database unreachable, or migrating failed.
            EncryptionError: the key is invalid, or the cryptography library is missing.
        """
        artifact_key = resolve_key(encryption_key)  # a bad key fails before touching the store
        if url is None:
            Path(root).mkdir(parents=True, exist_ok=True)
            url = default_store_url(root)
        engine = _create_engine(url)
        try:
            migrate(engine, redact_url(url))
        except BaseException:
            engine.dispose()
            raise
        if artifact_root is None:
            artifact_root = str(Path(root) / ARTIFACT_DIR)
        logger.debug(
            "opened store %s (artifacts at %s)", redact_url(url), redact_root(artifact_root)
        )
        artifacts = ArtifactStore(artifact_root, engine, encryption_key=artifact_key)
        return cls(url, engine, artifacts)

    @classmethod
    def from_env(
        cls,
        url: str | None = None,
        *,
        root: str | Path | None = None,
        artifact_root: str | None = None,
        encryption_key: EncryptionKey | str | None = None,
    ) -> Store:
        """Open the store that :func:`store_location` finds (arguments beat the environment).

        Raises:
            StoreError: the URL is invalid, the database unreachable, or migrating failed.
            EncryptionError: the key is invalid, or the cryptography library is missing.
        """
        url, folder, artifacts = store_location(url, root, artifact_root)
        return cls.open(url, root=folder, artifact_root=artifacts, encryption_key=encryption_key)

    @property
    def dialect(self) -> str:
        """The database dialect name: ``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def study_storage(self) -> Any:
        """An Optuna storage beside this store, for a search shared by several processes.

        Optuna keeps its own tables and its own Alembic history, which would collide with the
        store's: on PostgreSQL they live in the schema ``shipyard_optuna`` of the same
        database (every machine that reaches the store reaches them); on SQLite in the file
        ``optuna.db`` next to the store's (processes on one machine).

        Raises:
            StoreError: the storage cannot be created (unreachable database, a memory store).
        """
        import optuna

        parsed = sa.make_url(self.url)
        kwargs: dict[str, Any] = {}
        if self.dialect == "postgresql":
            url = self.url
            kwargs = {
                "pool_pre_ping": True,
                "connect_args": {"options": f"-c search_path={STUDY_SCHEMA}"},
            }
        elif _is_memory_sqlite(parsed) or not parsed.database:
            msg = "an in-memory store cannot share a search with other processes"
            raise StoreError(msg)
        else:
            url = f"sqlite:///{Path(parsed.database).with_name(STUDY_FILE).as_posix()}"
        try:
            # processes starting together would race to create Optuna's tables: one at a time
            with _migration_lock(self.engine):
                if self.dialect == "postgresql":  # committed before Optuna connects
                    with self.begin() as conn:
                        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {STUDY_SCHEMA}"))
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except StoreError:
            raise
        except Exception as exc:
            msg = f"cannot keep a shared search in the store {redact_url(self.url)!r}: {exc}"
            raise StoreError(msg) from exc

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction, committed on success and rolled back on error.

        On SQLite it starts with ``BEGIN IMMEDIATE``: the write lock is taken up front, so
        concurrent read-then-write transactions wait (up to the 30 s busy timeout) rather
        than fail with "database is locked".

        Yields:
            A connection inside the transaction.

        Raises:
            StoreError: the database cannot be reached, or the connection was lost during
                the transaction (it was rolled back, unless it broke while committing).
        """
        with _checkout(self._immediate_engine, self.url) as conn, conn.begin():
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reading (its implicit transaction is rolled back at the end).

        Yields:
            A connection.

        Raises:
            StoreError: the database cannot be reached, or the connection was lost.
        """
        with _checkout(self.engine, self.url) as conn:
            yield conn

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r}, artifacts={self.artifacts.location!r})"
