"""Shared fixtures: service availability (PostgreSQL, Redis) and isolated PostgreSQL schemas."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from hypothesis import settings

pytest_plugins = ["s3_server"]  # the S3 server fixtures: s3_endpoint, s3_bucket

# No per-example deadline: a shared 2-core CI machine must not turn slowness into failures.
settings.register_profile("shipyard", deadline=None)
settings.load_profile("shipyard")

PG_URL = os.environ.get("SHIPYARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _require(service: str, url: str, port: int) -> None:
    if _reachable(url, port):
        return
    reason = f"{service} is not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{reason}; under CI=true the {service} tests must run", pytrace=False)
    pytest.skip(f"{reason} (set it up or point SHIPYARD_TEST_PG_URL at one; CI runs these)")


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server URL; skips (fails under CI=true) when unreachable."""
    pytest.importorskip("psycopg", reason="install shipyard[postgres] for the PostgreSQL tests")
    _require("PostgreSQL", PG_URL, 5432)
    return PG_URL


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped after the test."""
    import sqlalchemy as sa

    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = pg_server_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server URL; skips (fails under CI=true) when unreachable."""
    url = os.environ.get("SHIPYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    _require("Redis", url, 6379)
    return url
