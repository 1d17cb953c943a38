"""A TCP proxy in front of the real PostgreSQL server that the chaos tests can cut.

Point a store or a prediction log at :attr:`FaultProxy.url` instead of the server's URL: every
connection is forwarded to the server byte for byte until :meth:`FaultProxy.cut`, which resets
every live connection and, until :meth:`FaultProxy.restore`, resets each new one as soon as it
is accepted (a client sees "server closed the connection unexpectedly" or a reset, as when the
database restarts or the network between them fails). The server itself is never stopped: other
tests use it.

:meth:`FaultProxy.lose_answer_to` is the subtler fault: the server gets a message (``COMMIT``)
and acts on it, but its answer never reaches the client, whose connection is then reset.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from urllib.parse import urlsplit, urlunsplit

_CHUNK = 65_536
_LINGER_RESET = struct.pack("ii", 1, 0)  # close() sends a RST instead of a FIN


class FaultProxy:
    """Forward 127.0.0.1:<port> to the PostgreSQL server in ``upstream_url``; cut on demand.

    Args:
        upstream_url: the server's SQLAlchemy URL (its host and port are forwarded to).

    Attributes:
        url: ``upstream_url`` with the proxy's host and port.
        accepted: connections accepted so far.
        refused: connections reset on arrival while cut.
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        netloc = parts.netloc.rsplit("@", 1)
        where = f"127.0.0.1:{self.port}"
        self.url = urlunsplit(
            parts._replace(netloc=f"{netloc[0]}@{where}" if len(netloc) == 2 else where)
        )
        self._lock = threading.Lock()
        self._live: set[_Pair] = set()
        self._cut = False
        self._closed = False
        self.accepted = 0
        self.refused = 0
        self.cut_at: float | None = None
        self.restored_at: float | None = None
        self._lose_answer_to: bytes | None = None
        self.answers_lost = 0
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._thread.start()

    def for_database(self, url: str) -> str:
        """``url`` (a database on the same server) through the proxy."""
        parts = urlsplit(url)
        return urlunsplit(urlsplit(self.url)._replace(path=parts.path, query=parts.query))

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Reset every live connection; reset new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            self.cut_at = time.monotonic()
            live = list(self._live)
        for pair in live:
            pair.reset()

    def lose_answer_to(self, message: bytes) -> None:
        """The next time a client sends ``message`` (e.g. ``b"COMMIT"``), forward it, drop
        the server's answer, and cut (then restore) everything 0.2 s later, when the server
        has acted on it: the client cannot know whether it took effect."""
        with self._lock:
            self._lose_answer_to = message

    def _take_lost_answer(self, data: bytes) -> bool:
        """Whether ``data`` from a client is the message whose answer is to be lost."""
        with self._lock:
            if self._lose_answer_to is None or self._lose_answer_to not in data:
                return False
            self._lose_answer_to = None
            self.answers_lost += 1
        threading.Timer(0.2, self.cut).start()
        threading.Timer(0.4, self.restore).start()
        return True

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._cut = False
            self.restored_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the proxy's threads -------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                if self._closed:
                    client.close()
                    return
                cut = self._cut
                self.accepted += 1
                if cut:
                    self.refused += 1
            if cut:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self._upstream, timeout=10)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            pair = _Pair(self, client, server)
            with self._lock:
                if self._cut:  # cut while connecting
                    pair.reset()
                    continue
                self._live.add(pair)
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=pair.pump, args=(src, dst), daemon=True).start()


class _Pair:
    """A client's connection and its upstream one; closed together, once."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, server: socket.socket) -> None:
        self.sockets = (client, server)
        self._proxy = proxy
        self._live = proxy._live
        self._lock = proxy._lock
        self._ends = 0
        self._mute = False  # the server's answers are dropped

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        from_client = src is self.sockets[0]
        try:
            while data := src.recv(_CHUNK):
                if self._mute and not from_client:
                    continue
                if from_client and self._proxy._take_lost_answer(data):
                    self._mute = True  # before the server can answer
                dst.sendall(data)
        except OSError:
            pass
        self.reset()
        with self._lock:
            self._ends += 1
            last = self._ends == 2
            self._live.discard(self)
        if last:  # both pumps are out of recv: the sockets can be closed
            for sock in self.sockets:
                sock.close()

    def reset(self) -> None:
        """Wake both pumps; each side gets a reset when the sockets close."""
        for sock in self.sockets:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def terminate_sessions(server_url: str, application_name: str, *, idle_only: bool = False) -> int:
    """``pg_terminate_backend`` every session of ``application_name`` (a restart, as its
    clients see it), or only those between two transactions; the number of sessions ended."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            ended = conn.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                    "pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid() "
                    "AND (state = 'idle' OR NOT :idle_only)"
                ),
                {"name": application_name, "idle_only": idle_only},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(ended)
