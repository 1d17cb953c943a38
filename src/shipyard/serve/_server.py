"""Running a server app under uvicorn: binding the address, and a graceful drain on shutdown.

On SIGTERM or SIGINT (Ctrl-C) the server drains instead of dropping what it has admitted:

1. **No new connections.** On Linux a drop-all socket filter goes on the listening socket, so
   no new TCP handshake completes (a client retrying is refused once the socket closes, at
   the end of the drain); the connections that had already completed one, waiting in the
   kernel's accept queue with their requests possibly sent, are accepted and served.
   Elsewhere the socket closes at once, as uvicorn does, which resets that queue.
2. **Requests already sent are answered.** Every response from now on says
   ``Connection: close``. After :data:`IDLE_GRACE` seconds, time for a request already on
   its way to arrive, a connection with no request running and no unread bytes is closed.
3. **In-flight requests finish**, for at most ``graceful_timeout`` seconds from the signal;
   whatever still runs then is cancelled. Then the app's shutdown hooks run.

The process then goes on normally: :func:`run_server` returns a :class:`ShutdownReport`, and
the signal is not re-raised (uvicorn re-raises it, which made ``shipyard serve`` exit 143).

:class:`DrainingServer` is the reusable part: it drains whatever listening sockets and
connections uvicorn gives it, so a server with workers or batching can run it as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import math
import select
import signal
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import ShipyardError

__all__ = [
    "IDLE_GRACE",
    "DrainingServer",
    "ListenError",
    "ShutdownReport",
    "TlsFiles",
    "bind_socket",
    "run_server",
]

logger = logging.getLogger(__name__)
_uvicorn_logger = logging.getLogger("uvicorn.error")  # where an operator sees uvicorn's lines

IDLE_GRACE = 1.0  # seconds an idle connection may still deliver a request after the signal
_ACCEPT_WAIT = 1.0  # most seconds to wait for the accept queue to empty
_POLL = 0.02
_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
_BPF_RET_K = 0x06  # classic BPF "return constant": returning 0 drops the packet


class _Listening(Protocol):
    """A listening socket as an event loop's server exposes it (asyncio's or uvloop's)."""

    def fileno(self) -> int: ...

    def setsockopt(self, level: int, optname: int, value: Any, /) -> None: ...


class ListenError(ShipyardError):
    """The server cannot listen on the host and port asked for (in use, not allowed, ...)."""


@dataclass(frozen=True)
class ShutdownReport:
    """How a server stopped.

    Attributes:
        signal: the signal that stopped it (``SIGTERM``, ``SIGINT``), or ``None``.
        drained: whether every admitted request was answered and every connection closed
            before the graceful timeout (and without a forced exit).
        cancelled: requests still running at the graceful timeout, cancelled.
        open_connections: connections still open then (a request still arriving, say).
        workers_cut_off: with several worker processes, how many did not drain (each
            logs its own counts).
    """

    signal: int | None
    drained: bool
    cancelled: int = 0
    open_connections: int = 0
    workers_cut_off: int = 0

    def describe(self) -> str:
        """What was cut off, for people."""
        if self.workers_cut_off:
            return f"{self.workers_cut_off} worker process(es) did not drain (see their log)"
        return (
            f"{self.cancelled} request(s) cancelled and {self.open_connections} "
            "connection(s) left open"
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a TCP socket to ``host:port`` as uvicorn would, without listening yet.

    Binding first tells a caller at once whether the address can be used (before loading a
    model or announcing anything), and keeps it: no other program can take the port between
    the check and the server starting. Clients are refused until the server listens.

    Args:
        host: an interface address or host name (``127.0.0.1``, ``0.0.0.0``, ``::1``).
        port: the TCP port; ``0`` picks a free one (read it with ``getsockname()``).

    Returns:
        The bound socket; pass it to :func:`run_server`.

    Raises:
        ListenError: the address is in use, not this machine's, not allowed, or unknown.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it a response written in two parts waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # the options uvicorn's loop.create_server sets: reuse a TIME_WAIT port, v6 only for v6
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:
        sock.close()
        raise ListenError(_listen_message(host, port, exc)) from exc
    return sock


def _listen_message(host: str, port: int, exc: Exception) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, OverflowError):
        reason = "the port must be from 0 to 65535; pick another --port"
    elif isinstance(exc, socket.gaierror):
        reason = f"unknown host {host!r}; pick another --host"
    elif isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        reason = "the address is in use; pick another --port"
    elif isinstance(exc, OSError) and exc.errno == errno.EACCES:
        reason = "permission denied (ports below 1024 need privileges); pick another --port"
    elif isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        reason = "the address is not one of this machine's; pick another --host"
    else:
        reason = getattr(exc, "strerror", None) or str(exc)
    return f"cannot listen on {where}: {reason}"


class CloseWhenDraining:
    """ASGI middleware: once the server drains, every response says ``Connection: close``.

    uvicorn then closes each connection after its current response, so a keep-alive client
    learns that the server is going away instead of finding its next request reset.

    Args:
        app: the ASGI app.
        draining: tells whether the server is draining.
    """

    def __init__(self, app: ASGIApp, draining: Callable[[], bool]) -> None:
        self.app = app
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and self.draining():
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing_send)


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains gracefully on SIGTERM/SIGINT and exits without re-raising.

    Wrap the app in :class:`CloseWhenDraining` (``lambda: server.draining``) so that
    keep-alive clients are told to close; :func:`run_server` does.

    Attributes:
        draining: set once shutdown has begun.
        report: how the server stopped, once :meth:`run` has returned.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.draining = False
        self.stop_signal: int | None = None
        self.report = ShutdownReport(signal=None, drained=True)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Handle SIGINT/SIGTERM while serving; restore the previous handlers, re-raise nothing.

        A drained server has done what the signal asked: the caller exits normally, 0.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Begin the drain on the first signal; a second SIGINT forces the exit."""
        if self.stop_signal is None:
            self.stop_signal = sig
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain: admit nothing new, answer what was admitted, then run the app's shutdown."""
        loop = asyncio.get_running_loop()
        timeout = self.config.timeout_graceful_shutdown
        deadline = loop.time() + (math.inf if timeout is None else timeout)
        self.draining = True
        _uvicorn_logger.info("Shutting down: accepting no new connections")
        await self._stop_listening()
        state = self.server_state
        if state.tasks:
            _uvicorn_logger.info("Waiting for %d request(s) to finish", len(state.tasks))
        await self._drain(idle_after=loop.time() + IDLE_GRACE, deadline=deadline)
        self._close_listeners()  # a client still trying is refused from now on
        for sock in sockets or []:
            sock.close()
        unfinished, still_open = len(state.tasks), len(state.connections)
        if unfinished:
            _uvicorn_logger.error(
                "Cancelling %d request(s) still running after the graceful timeout", unfinished
            )
            for task in state.tasks:
                task.cancel(msg="cancelled: the graceful shutdown timeout was exceeded")
        self.report = ShutdownReport(
            signal=self.stop_signal,
            drained=not (unfinished or still_open or self.force_exit),
            cancelled=unfinished,
            open_connections=still_open,
        )
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _stop_listening(self) -> None:
        """Admit no new connection, and accept every one that had already been admitted.

        A listening socket that takes the filter stays open, admitting nothing, until
        :meth:`_close_listeners` (closing it at once would also drop connections the event
        loop has accepted but not yet set up); one that does not is closed now.
        """
        loop = asyncio.get_running_loop()
        filtered: list[_Listening] = []
        for server in self.servers:
            sockets = list(server.sockets or ())
            if sockets and all(_refuse_new_connections(sock) for sock in sockets):
                filtered += sockets
            else:
                server.close()
        deadline = loop.time() + _ACCEPT_WAIT
        # the event loop accepts what waits in the kernel's queue; the filter keeps it from
        # growing, so once it is empty nothing closing the socket could reset is left
        while any(_readable(sock) for sock in filtered) and loop.time() < deadline:
            await asyncio.sleep(_POLL)

    def _close_listeners(self) -> None:
        for server in self.servers:
            server.close()

    async def _drain(self, *, idle_after: float, deadline: float) -> None:
        """Wait until every connection has closed and every request task has finished.

        From ``idle_after`` on, a connection with no request running and nothing unread in
        its socket is closed (uvicorn's ``shutdown()`` of a connection closes it when idle
        and lets it finish otherwise); one with bytes waiting is left for the event loop to
        read, so a request that had arrived is answered, never reset.
        """
        loop = asyncio.get_running_loop()
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            now = loop.time()
            if now >= deadline:
                return
            if now >= idle_after:
                for connection in list(state.connections):
                    if not _has_unread_bytes(connection):
                        connection.shutdown()
            await asyncio.sleep(_POLL)


def _refuse_new_connections(sock: _Listening) -> bool:
    """Drop every packet that would open a connection on a listening socket (Linux only).

    New SYNs and the last ACK of a handshake are dropped, so no connection completes; a
    client retries its SYN and is refused once the socket closes. Connections already
    completed are not touched. Returns whether the filter went on.
    """
    if not sys.platform.startswith("linux") or sock.fileno() < 0:
        return False
    program = ctypes.create_string_buffer(struct.pack("HBBI", _BPF_RET_K, 0, 0, 0))
    fprog = struct.pack("HL", 1, ctypes.addressof(program))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        logger.debug("cannot filter the listening socket (%s); closing it at once", exc)
        return False
    return True


def _readable(sock: _Listening) -> bool:
    """Whether a socket has something to read: data, an end of stream or, when listening, a
    connection waiting to be accepted."""
    if sock.fileno() < 0:
        return False
    poller = select.poll()  # not select(): it cannot watch descriptors past 1023
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _has_unread_bytes(connection: Any) -> bool:
    """Whether a uvicorn connection's socket holds bytes (or an end) the server has not read."""
    transport = getattr(connection, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is not None and _readable(sock)


@dataclass(frozen=True)
class TlsFiles:
    """A TLS certificate chain and its private key, both PEM files.

    Attributes:
        certfile: the certificate (chain) the server presents.
        keyfile: its private key (unencrypted: the server starts unattended).
    """

    certfile: Path
    keyfile: Path

    def check(self) -> None:
        """Load the pair once, so that a wrong file is an error before anything is served.

        Raises:
            ShipyardError: a file is missing or unreadable, or the key does not match the
                certificate; the message names the files, never their contents.
        """
        for what, path in (("certificate", self.certfile), ("key", self.keyfile)):
            if not path.is_file():
                msg = f"the TLS {what} file {path} does not exist"
                raise ShipyardError(msg)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.certfile, self.keyfile)
        except (ssl.SSLError, OSError) as exc:
            msg = (
                f"cannot use the TLS certificate {self.certfile} with the key {self.keyfile}: "
                f"{getattr(exc, 'reason', None) or exc}; give a PEM certificate and its "
                "unencrypted PEM private key"
            )
            raise ShipyardError(msg) from exc


def run_server(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    sock: socket.socket | None = None,
    log_level: str = "info",
    graceful_timeout: int = 30,
    tls: TlsFiles | None = None,
) -> ShutdownReport:
    """Serve ``app`` with uvicorn until SIGINT/SIGTERM, then drain gracefully.

    See the module's description for the drain. The signal is not re-raised: the caller
    decides how to exit (``shipyard serve`` exits 0 when ``report.drained``).

    Args:
        app: the ASGI app, usually from :func:`create_app`.
        host: the interface to bind; ``0.0.0.0`` exposes the server beyond this machine.
        port: the TCP port (``0`` picks a free one).
        sock: a socket from :func:`bind_socket` to serve on; ``host`` and ``port`` are then
            only used in messages.
        log_level: uvicorn's log level (``debug``, ``info``, ``warning``, ``error``).
        graceful_timeout: seconds from the signal that admitted requests may take to finish.
        tls: serve HTTPS with this certificate and key (check them first with
            :meth:`TlsFiles.check`).

    Returns:
        How the server stopped.

    Raises:
        ListenError: ``sock`` is not given and ``host:port`` cannot be bound.

    Example:
        >>> run_server(create_app(package), port=8080)  # doctest: +SKIP
    """
    listener = sock if sock is not None else bind_socket(host, port)
    try:
        config = uvicorn.Config(
            CloseWhenDraining(app, lambda: server.draining),
            host=host,
            port=port,
            log_level=log_level,
            timeout_graceful_shutdown=graceful_timeout,
            server_header=False,
            # asyncio's loop accepts every waiting connection in one callback; uvloop takes the
            # GIL once per connection, which the model's threads starve under load (measured:
            # 40 connections left unaccepted for over a second at c=64); same req/s otherwise
            loop="asyncio",
            ssl_certfile=None if tls is None else str(tls.certfile),
            ssl_keyfile=None if tls is None else str(tls.keyfile),
        )
        server = DrainingServer(config)
        bound = listener.getsockname()
        scheme = "http" if tls is None else "https"
        logger.info("serving on %s://%s:%d", scheme, bound[0], bound[1])
        server.run(sockets=[listener])
    finally:
        listener.close()
    return server.report
