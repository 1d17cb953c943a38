"""Several server processes on one port: a forking supervisor.

The parent binds the socket and forks ``workers`` children. Each child builds its own app
(its own onnxruntime session, batcher and model thread: nothing with threads crosses the
fork) and serves the shared listening socket with :func:`run_server`, so the kernel spreads
connections over the processes. The parent only supervises:

- SIGTERM or SIGINT is passed to every child; each drains as a single server does (nothing new
  admitted, every admitted request answered) and the parent exits when all have.
- A child that dies while the server is not stopping is replaced, so one crashed process
  never takes the port down.
- ``/metrics`` reports the whole server, whichever child answers: with several children, each
  keeps its metrics in prometheus_client's multiprocess files in a directory the parent makes
  (and removes when all have stopped), and the parent drops the live gauges of each child that
  exits.

POSIX only (``os.fork``); elsewhere ask for one worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from types import FrameType

from starlette.types import ASGIApp

from shipyard.serve._metrics import forget_worker, use_multiprocess_metrics
from shipyard.serve._server import ShutdownReport, TlsFiles, run_server

__all__ = ["default_workers", "run_workers"]

logger = logging.getLogger(__name__)
_uvicorn_logger = logging.getLogger("uvicorn.error")

_EXIT_DRAINED, _EXIT_CUT_OFF, _EXIT_CRASHED = 0, 1, 2
_RESTART_PAUSE = 1.0  # seconds between replacing crashed children, so a crash loop is slow


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_workers(
    build_app: Callable[[], ASGIApp],
    *,
    workers: int,
    sock: socket.socket,
    host: str,
    port: int,
    log_level: str = "info",
    graceful_timeout: int = 30,
    tls: TlsFiles | None = None,
) -> ShutdownReport:
    """Serve ``build_app()`` in ``workers`` forked processes sharing ``sock``.

    Args:
        build_app: makes the app; called in each child after the fork.
        workers: how many processes (at least 1).
        sock: the bound socket from :func:`bind_socket`.
        host: the interface, for messages.
        port: the port, for messages.
        log_level: uvicorn's log level.
        graceful_timeout: seconds from the signal that admitted requests may take to finish.
        tls: serve HTTPS with this certificate and key.

    Returns:
        How the server stopped: ``drained`` only if every child answered everything it had
        admitted; ``workers_cut_off`` counts the children that did not.
    """
    metrics_dir = tempfile.mkdtemp(prefix="shipyard-metrics-") if workers > 1 else None
    supervisor = _Supervisor(
        lambda: _child(build_app, sock, host, port, log_level, graceful_timeout, metrics_dir, tls),
        workers,
        on_exit=None if metrics_dir is None else lambda pid: forget_worker(pid, metrics_dir),
    )
    try:
        return supervisor.run()
    finally:
        sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _child(
    build_app: Callable[[], ASGIApp],
    sock: socket.socket,
    host: str,
    port: int,
    log_level: str,
    graceful_timeout: int,
    metrics_dir: str | None,
    tls: TlsFiles | None = None,
) -> int:
    """A child's whole life: build the app, serve, drain; its exit code."""
    try:
        if metrics_dir is not None:  # before the app makes its metrics
            use_multiprocess_metrics(metrics_dir)
        report = run_server(
            build_app(),
            host=host,
            port=port,
            sock=sock,
            log_level=log_level,
            graceful_timeout=graceful_timeout,
            tls=tls,
        )
    except BaseException:
        logger.exception("worker %d failed", os.getpid())
        return _EXIT_CRASHED
    return _EXIT_DRAINED if report.drained else _EXIT_CUT_OFF


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Linux: get SIGTERM (and drain) when the supervisor dies, even by SIGKILL.

    Without it a supervisor killed outright would leave its workers serving the port forever.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class _Supervisor:
    def __init__(
        self,
        child: Callable[[], int],
        workers: int,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.child = child
        self.workers = max(1, workers)
        self.on_exit = on_exit
        self.pids: set[int] = set()
        self.parent = os.getpid()
        self.stop_signal: int | None = None
        self.not_drained = 0

    def run(self) -> ShutdownReport:
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            for _ in range(self.workers):
                self._spawn()
            _uvicorn_logger.info("Started %d worker processes", self.workers)
            self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return ShutdownReport(
            signal=self.stop_signal,
            drained=self.not_drained == 0,
            workers_cut_off=self.not_drained,
        )

    def _spawn(self) -> None:
        # A stop must reach every child, also one being forked when it comes: blocked here,
        # the signal cannot run the supervisor's handler in the child (or be dropped when the
        # child resets it); a stop seen before the fork forks nothing, and one seen after is
        # sent to the new child below (the handler may have run before it was in `pids`).
        stops = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            if self.stop_signal is not None:
                return
            pid = os.fork()
            if pid == 0:  # the child: default signal handling until its server installs its own
                code = _EXIT_CRASHED
                try:
                    for sig in stops:
                        signal.signal(sig, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
                    _die_with_parent(self.parent)
                    code = self.child()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            self.pids.add(pid)
            if self.stop_signal is not None:
                # The mask holds for this thread only: in a process with other threads, one of
                # them may take the signal, and its handler then runs here before the child
                # was in `pids`. Tell the child now; it is still starting, with the default
                # action, so a second signal from the handler changes nothing.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, self.stop_signal)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
            _uvicorn_logger.info("Stopping %d worker processes", len(self.pids))
        for pid in list(self.pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _supervise(self) -> None:
        while self.pids:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries os.wait
                continue
            if pid not in self.pids:
                continue
            self.pids.discard(pid)
            if self.on_exit is not None:
                self.on_exit(pid)
            code = os.waitstatus_to_exitcode(status)
            if self.stop_signal is not None:
                # a worker the signal ended outright was still starting (a serving one drains
                # and exits 0 or 1): it had admitted nothing, so nothing was cut off
                if code not in (_EXIT_DRAINED, -self.stop_signal):
                    self.not_drained += 1
                continue
            logger.error("worker %d exited with %d; starting another", pid, code)
            time.sleep(_RESTART_PAUSE)
            if self.stop_signal is None:
                self._spawn()
