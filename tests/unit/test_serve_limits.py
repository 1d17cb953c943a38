"""The body size limit middleware on a minimal ASGI app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from shipyard.serve._limits import BodySizeLimitMiddleware

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
    assert f"at most {LIMIT} bytes" in response.json()["detail"][0]["msg"]
    assert reads == []


def test_chunked_body_within_limit(app_and_reads: tuple[Starlette, list[int]]) -> None:
    app, _ = app_and_reads
    response = TestClient(app).post("/", content=_chunks(3, 30))
    assert response.json() == {"n": 90}
