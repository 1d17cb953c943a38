"""Request limits: the body size middleware on a minimal ASGI app, and how limits are settled."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from shipyard.data import ColumnSchema, Signature
from shipyard.serve import ServeConfig
from shipyard.serve._limits import (
    DEFAULT_MAX_RECORDS,
    BodySizeLimitMiddleware,
    request_limits,
)
from shipyard.serve._schema import record_size_bound

LIMIT = 100


@pytest.fixture
def app_and_reads() -> tuple[Starlette, list[int]]:
    reads: list[int] = []

    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        reads.append(len(body))
        return JSONResponse({"n": len(body)})

    app = Starlette(routes=[Route("/", echo, methods=["POST"])])
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=LIMIT)
    return app, reads


def _chunks(n: int, size: int) -> Iterator[bytes]:
    for _ in range(n):
        yield b"x" * size


def test_body_within_limit_passes(app_and_reads: tuple[Starlette, list[int]]) -> None:
    app, reads = app_and_reads
    response = TestClient(app).post("/", content=b"x" * LIMIT)
    assert response.json() == {"n": LIMIT}
    assert reads == [LIMIT]


def test_declared_length_over_limit_never_reaches_app(
    app_and_reads: tuple[Starlette, list[int]],
) -> None:
    app, reads = app_and_reads
    response = TestClient(app).post("/", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    detail = response.json()["detail"][0]
    assert detail["type"] == "body_too_large"
    assert f"found {LIMIT + 1} bytes" in detail["msg"]
    assert reads == []


def test_chunked_body_refused_while_streaming(
    app_and_reads: tuple[Starlette, list[int]],
) -> None:
    app, reads = app_and_reads
    response = TestClient(app).post("/", content=_chunks(10, 30))
    assert response.status_code == 413
    assert f"body limit of {LIMIT} bytes" in response.json()["detail"][0]["msg"]
    assert reads == []


def test_chunked_body_within_limit(app_and_reads: tuple[Starlette, list[int]]) -> None:
    app, _ = app_and_reads
    response = TestClient(app).post("/", content=_chunks(3, 30))
    assert response.json() == {"n": 90}


# --- how many records and bytes a request may carry ------------------------------------------


def _sig(*cols: ColumnSchema) -> Signature:
    return Signature(inputs=cols)


def _col(name: str, kind: Any, **kw: Any) -> ColumnSchema:
    return ColumnSchema(name=name, kind=kind, dtype="x", nullable=True, **kw)


PENGUIN_LIKE = _sig(
    _col("island", "category", categories=("Biscoe", "Dream", "Torgersen")),
    *(_col(f"measure_{i}", "number") for i in range(4)),
)


@pytest.mark.parametrize("indent", [None, 2, 4])
def test_record_size_bound_holds_the_longest_values(indent: int | None) -> None:
    sig = _sig(
        _col("n", "number"),
        _col("i", "integer"),
        _col("b", "boolean"),
        _col("d", "datetime"),
        _col("c", "category", categories=("a", 'Ünïcödé ✓ "quoted"', "b")),
        _col('odd "name"\n', "number"),
    )
    longest = {
        "n": -2.2250738585072014e-308,
        "i": -(2**63),
        "b": False,
        "d": "2024-01-01T00:00:00.000000+00:00",
        "c": 'Ünïcödé ✓ "quoted"',
        'odd "name"\n': -1.7976931348623157e308,
    }
    for n in (1, 2, 50):
        body = json.dumps([longest] * n, indent=indent).encode()
        assert len(body) <= n * record_size_bound(sig)


def test_default_limits_hold_the_default_records() -> None:
    limits = request_limits(ServeConfig(), PENGUIN_LIKE)
    assert limits.max_records == DEFAULT_MAX_RECORDS
    assert limits.max_body_bytes == DEFAULT_MAX_RECORDS * record_size_bound(PENGUIN_LIKE)
    assert limits.max_body_bytes > 1 << 20


def test_a_narrow_model_still_gets_at_least_one_mebibyte() -> None:
    limits = request_limits(ServeConfig(max_records=10), PENGUIN_LIKE)
    assert (limits.max_records, limits.max_body_bytes) == (10, 1 << 20)


def test_explicit_records_get_room_for_them() -> None:
    limits = request_limits(ServeConfig(max_records=100_000), PENGUIN_LIKE)
    assert limits.max_body_bytes == 100_000 * record_size_bound(PENGUIN_LIKE)


def test_explicit_bytes_set_the_records_that_fit() -> None:
    per_record = record_size_bound(PENGUIN_LIKE)
    limits = request_limits(ServeConfig(max_body_bytes=100 * per_record + 5), PENGUIN_LIKE)
    assert limits.max_records == 100
    assert request_limits(ServeConfig(max_body_bytes=10), PENGUIN_LIKE).max_records == 1
    assert request_limits(ServeConfig(max_body_bytes=1 << 30), PENGUIN_LIKE).max_records == (
        DEFAULT_MAX_RECORDS
    )


def test_both_explicit_are_kept_and_a_mismatch_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shipyard.serve"):
        limits = request_limits(ServeConfig(max_records=5000, max_body_bytes=1000), PENGUIN_LIKE)
    assert (limits.max_records, limits.max_body_bytes) == (5000, 1000)
    assert "max_body_bytes=1000" in caplog.text


def test_a_wide_model_gets_fewer_records_not_a_huge_body() -> None:
    wide = _sig(*(_col(f"feature_{i:04d}", "number") for i in range(1000)))
    limits = request_limits(ServeConfig(), wide)
    assert 1 <= limits.max_records < DEFAULT_MAX_RECORDS
    assert limits.max_records * limits.record_bytes <= limits.max_body_bytes <= 16 << 20
