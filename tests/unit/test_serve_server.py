"""The server runner's small parts: binding an address, and Connection: close while draining."""

from __future__ import annotations

import errno
import select
import socket
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from shipyard.errors import ShipyardError
from shipyard.serve import ListenError, bind_socket
from shipyard.serve._server import (
    CloseWhenDraining,
    _listen_message,
    _readable,
    _refuse_new_connections,
)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_bind_socket_binds_without_listening() -> None:
    sock = bind_socket("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0
        with pytest.raises(ConnectionRefusedError):  # bound, not listening: refused
            socket.create_connection(("127.0.0.1", port), timeout=5)
    finally:
        sock.close()


def test_busy_port_is_a_listen_error_naming_the_address(busy_port: int) -> None:
    with pytest.raises(ListenError) as info:
        bind_socket("127.0.0.1", busy_port)
    assert isinstance(info.value, ShipyardError)  # the CLI reports it and exits 1
    assert str(info.value) == (
        f"cannot listen on 127.0.0.1:{busy_port}: the address is in use; pick another --port"
    )


def test_port_out_of_range_is_a_listen_error() -> None:
    with pytest.raises(ListenError, match="from 0 to 65535"):
        bind_socket("127.0.0.1", 70000)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OSError(errno.EACCES, "Permission denied"), "permission denied"),
        (OSError(errno.EADDRNOTAVAIL, "Cannot assign"), "pick another --host"),
        (socket.gaierror(-2, "Name or service not known"), "unknown host"),
        (OSError(errno.ENOBUFS, "No buffer space available"), "No buffer space available"),
    ],
)
def test_listen_messages(exc: Exception, expected: str) -> None:
    assert expected in _listen_message("10.1.2.3", 80, exc)
    assert _listen_message("::1", 80, exc).startswith("cannot listen on [::1]:80: ")


def test_connection_close_only_while_draining() -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi", headers={"connection": "keep-alive"})

    draining = False
    app = CloseWhenDraining(Starlette(routes=[Route("/", hello)]), lambda: draining)
    client = TestClient(app)
    assert client.get("/").headers["connection"] == "keep-alive"
    draining = True
    response = client.get("/")
    assert response.text == "hi"
    assert response.headers.get_list("connection") == ["close"]


def _eventually_readable(sock: socket.socket) -> bool:
    """Loopback delivers in the kernel's own time: look again for up to 5 s."""
    for _ in range(500):
        if _readable(sock):
            return True
        select.select([], [], [], 0.01)
    return False


def test_readable_sees_waiting_connections_and_bytes() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not _readable(listener)
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            assert _eventually_readable(listener)  # a connection waits to be accepted
            accepted, _ = listener.accept()
            with accepted:
                assert not _readable(accepted)
                client.sendall(b"x")
                assert _eventually_readable(accepted)  # bytes wait to be read
    assert not _readable(listener)  # closed


def test_bind_socket_on_ipv6_loopback() -> None:
    try:
        sock = bind_socket("::1", 0)
    except ListenError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with sock:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


class _Unfilterable:
    def fileno(self) -> int:
        return 0

    def setsockopt(self, level: int, optname: int, value: object, /) -> None:
        raise PermissionError("filters are not allowed here")


def test_a_socket_that_refuses_the_filter_is_closed_the_plain_way() -> None:
    assert not _refuse_new_connections(_Unfilterable())
    closed = socket.socket()
    closed.close()
    assert not _refuse_new_connections(closed)
    assert not _readable(closed)


def test_accepted_connections_send_without_nagle_delay() -> None:
    """A response written in two parts (headers, body) must not wait for a delayed ACK.

    asyncio turns Nagle's algorithm off only on sockets that say they are TCP; a socket made
    with protocol 0 made every one-record request take ~40 ms.
    """
    import asyncio

    async def scenario() -> int:
        sock = bind_socket("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted = transport.get_extra_info("socket")
                seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(seen, 10)
        writer.close()
        server.close()
        await server.wait_closed()
        return value

    assert asyncio.run(scenario()) == 1
