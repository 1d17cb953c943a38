"""Alembic environment for Shipyard's metadata store.

Shipyard configures Alembic programmatically (``shipyard.store._db.alembic_config``) and hands
it an open connection in ``config.attributes["connection"]``; there is no ``alembic.ini``.
To write a new migration, autogenerate against ``shipyard.store.tables.metadata``, e.g.::

    from alembic import command
    from shipyard.store import Store
    from shipyard.store._db import alembic_config

    store = Store.open(root="/tmp/scratch")
    with store.engine.begin() as conn:
        command.revision(alembic_config(conn), "add x", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from shipyard.store._tables import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        msg = "no connection and no sqlalchemy.url: configure Alembic via alembic_config(conn)"
        raise RuntimeError(msg)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    msg = "offline (--sql) migrations are not supported; run them on a connection"
    raise RuntimeError(msg)
_run_online()
