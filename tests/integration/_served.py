"""Start ``shipyard serve`` as a user does, in its own process, for the HTTP tests."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shipyard.registry import ModelPackage, Registry
from shipyard.store import Store

TIMEOUT = 60.0  # seconds any one step may take


def register(home: Path, name: str, package: ModelPackage) -> None:
    """Register ``package`` as version 1 of ``name`` in a Shipyard home under ``home``."""
    store = Store.from_env(None, root=home / ".shipyard")
    try:
        Registry(store).register(name, package)
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    proc: subprocess.Popen[str]
    port: int

    def output(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        out, _ = self.proc.communicate(timeout=TIMEOUT)
        return out or ""


@contextmanager
def serving(
    home: Path,
    model_uri: str,
    *options: str,
    store: str | None = None,
    tls: ssl.SSLContext | None = None,
    port: int | None = None,
) -> Iterator[Served]:
    """``shipyard serve MODEL_URI --port P OPTIONS`` in ``home``, ready; killed afterwards.

    The store is ``home``'s ``.shipyard``, or the URL ``store``; ``tls`` is the client context
    that trusts the server's certificate when OPTIONS make it serve HTTPS; ``port`` is a free
    one unless given (a server started again where one was killed)."""
    port = port or free_port()
    env = {**os.environ, "SHIPYARD_HOME": str(home / ".shipyard")}
    env.pop("SHIPYARD_STORE_URL", None)
    env.pop("SHIPYARD_ARTIFACT_ROOT", None)
    args = ["serve", model_uri, "--port", str(port), "--log-level", "warning", *options]
    if store is not None:
        args = ["--store", store, *args]
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", *args],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served(proc, port)
    try:
        wait_ready(served, tls)
        yield served
    finally:
        if proc.poll() is None:  # drain first, so worker processes stop with their parent
            proc.terminate()
            try:
                proc.wait(timeout=TIMEOUT / 2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=TIMEOUT)


def wait_ready(served: Served, tls: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            raise AssertionError(f"the server exited during startup:\n{served.output()}")
        try:
            conn: http.client.HTTPConnection = (
                http.client.HTTPConnection("127.0.0.1", served.port, timeout=1)
                if tls is None
                else http.client.HTTPSConnection("127.0.0.1", served.port, timeout=1, context=tls)
            )
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server was not ready within {TIMEOUT} s:\n{served.output()}")
