"""The graceful drain's parts on real loopback sockets, in process.

``test_serve_shutdown.py`` checks the whole under load; these pin down each step where it is
deterministic: connections waiting in the kernel's accept queue when the server stops
listening, and requests that outlive the graceful timeout.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shipyard.serve._server import CloseWhenDraining, DrainingServer, bind_socket

pytestmark = pytest.mark.http

QUEUED = 16


class _Echo(asyncio.Protocol):
    """Answers the first bytes it gets, then closes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"answered:" + data)
        self.transport.close()


def _client(port: int, results: Counter[str], sent: threading.Barrier) -> None:
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError as exc:
        results[f"connect: {type(exc).__name__}"] += 1
        sent.wait()
        return
    with conn:
        conn.sendall(b"request")
        sent.wait()
        try:
            reply = conn.recv(100)
        except OSError as exc:
            results[type(exc).__name__] += 1
            return
        results["answered" if reply.startswith(b"answered:") else f"got {reply!r}"] += 1


async def _queue_connections_then(stop: Callable[[DrainingServer], object]) -> Counter[str]:
    """Start a server, let QUEUED clients connect and send while the loop is blocked (so they
    wait in the kernel's accept queue), then stop listening with ``stop``."""
    loop = asyncio.get_running_loop()
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = DrainingServer(uvicorn.Config(app=None))
    server.servers = [await loop.create_server(_Echo, sock=sock, backlog=128)]
    results: Counter[str] = Counter()
    sent = threading.Barrier(QUEUED + 1, timeout=10)
    clients = [threading.Thread(target=_client, args=(port, results, sent)) for _ in range(QUEUED)]
    for t in clients:
        t.start()
    sent.wait()  # every client connected and sent, and the loop has accepted none of them
    await asyncio.to_thread(lambda: None)  # one turn of the loop would accept: not yet
    result = stop(server)
    if asyncio.iscoroutine(result):
        await result
    for t in clients:
        await asyncio.to_thread(t.join, 10)
    late = socket.socket()
    late.settimeout(0.5)
    with pytest.raises((ConnectionRefusedError, TimeoutError)):  # dropped while filtered
        late.connect(("127.0.0.1", port))
    late.close()
    server._close_listeners()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    return results


def test_closing_the_listener_resets_queued_connections() -> None:
    """The control: what uvicorn does (close at once) resets what waits in the queue."""

    def close_at_once(server: DrainingServer) -> None:
        for s in server.servers:
            s.close()

    results = asyncio.run(_queue_connections_then(close_at_once))
    assert results["answered"] < QUEUED, results


def test_stop_listening_answers_queued_connections_and_refuses_new_ones() -> None:
    results = asyncio.run(_queue_connections_then(lambda server: server._stop_listening()))
    assert results == Counter({"answered": QUEUED})


def _slow_app() -> Starlette:
    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(float(request.query_params.get("s", "0")))
        return PlainTextResponse("done")

    return Starlette(routes=[Route("/", slow)])


def _start(graceful_timeout: int) -> tuple[DrainingServer, threading.Thread, int]:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        CloseWhenDraining(_slow_app(), lambda: server.draining),
        log_level="warning",
        timeout_graceful_shutdown=graceful_timeout,
        loop="asyncio",
    )
    server = DrainingServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    return server, thread, port


def _get_in_thread(url: str, out: list[httpx.Response | Exception]) -> threading.Thread:
    def get() -> None:
        try:
            out.append(httpx.get(url, timeout=30))
        except httpx.HTTPError as exc:
            out.append(exc)

    thread = threading.Thread(target=get)
    thread.start()
    return thread


def _wait_for_task(server: DrainingServer) -> None:
    deadline = time.monotonic() + 10
    while not server.server_state.tasks:
        assert time.monotonic() < deadline, "the request never started"
        time.sleep(0.01)


def test_drain_answers_a_running_request_with_connection_close() -> None:
    server, thread, port = _start(graceful_timeout=30)
    out: list[httpx.Response | Exception] = []
    client = _get_in_thread(f"http://127.0.0.1:{port}/?s=1", out)
    _wait_for_task(server)
    server.should_exit = True
    client.join(30)
    thread.join(30)
    (response,) = out
    assert isinstance(response, httpx.Response), response
    assert (response.status_code, response.text) == (200, "done")
    assert response.headers["connection"] == "close"
    assert server.report.drained and server.report.cancelled == 0


def test_request_past_the_graceful_timeout_is_cancelled_and_reported() -> None:
    server, thread, port = _start(graceful_timeout=1)
    out: list[httpx.Response | Exception] = []
    client = _get_in_thread(f"http://127.0.0.1:{port}/?s=20", out)
    _wait_for_task(server)
    server.should_exit = True
    thread.join(30)
    client.join(30)
    assert not thread.is_alive()
    assert not server.report.drained
    assert server.report.cancelled == 1
    (answer,) = out
    assert not isinstance(answer, httpx.Response) or answer.status_code != 200, answer


def _raw_get(conn: socket.socket, path: str = "/") -> bytes:
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"done"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_idle_keep_alive_connection_is_closed_after_the_grace() -> None:
    server, thread, port = _start(graceful_timeout=30)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        assert _raw_get(conn).startswith(b"HTTP/1.1 200")  # keep-alive: stays open, idle
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive()
        assert conn.recv(100) == b""  # the server closed it: an end, not a reset
    assert server.report.drained


def test_request_on_an_idle_connection_after_the_signal_is_answered() -> None:
    server, thread, port = _start(graceful_timeout=30)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        assert _raw_get(conn).startswith(b"HTTP/1.1 200")
        server.should_exit = True
        while not server.draining:
            time.sleep(0.01)
        answer = _raw_get(conn, "/?s=0.2")
        thread.join(30)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in answer.lower()
    assert server.report.drained


def test_run_server_in_the_main_thread_drains_on_sigterm_and_returns() -> None:
    """SIGTERM is handled (no exit 143), the previous handler comes back, the report says so."""
    import os
    import signal

    from shipyard.serve import run_server

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    answers: list[int] = []

    def client_then_sigterm() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                answers.append(httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    def refuse(signum: int, frame: object) -> None:
        raise AssertionError("SIGTERM reached the previous handler")

    previous = signal.signal(signal.SIGTERM, refuse)
    helper = threading.Thread(target=client_then_sigterm)
    try:
        helper.start()
        report = run_server(_slow_app(), sock=sock, log_level="warning", graceful_timeout=10)
        assert signal.getsignal(signal.SIGTERM) is refuse  # restored, not re-raised into
    finally:
        helper.join(30)
        signal.signal(signal.SIGTERM, previous)
    assert answers == [200]
    assert report.signal == signal.SIGTERM
    assert report.drained
