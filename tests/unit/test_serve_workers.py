"""The forking supervisor: a stop while a worker is still starting cuts nothing off."""

from __future__ import annotations

import os
import signal
import threading
import time

from shipyard.serve._workers import _Supervisor


def test_a_worker_stopped_while_starting_counts_as_drained() -> None:
    def starting_forever() -> int:  # a worker still loading its model: default SIGTERM handling
        time.sleep(60)
        return 0

    supervisor = _Supervisor(starting_forever, workers=2)

    def stop_soon() -> None:
        deadline = time.monotonic() + 30
        while len(supervisor.pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_soon, daemon=True).start()
    report = supervisor.run()
    assert report.signal == signal.SIGTERM
    assert report.drained and report.workers_cut_off == 0


def test_no_worker_is_forked_once_the_server_is_stopping() -> None:
    supervisor = _Supervisor(lambda: 0, workers=1)
    supervisor.stop_signal = signal.SIGTERM  # a stop that came while a replacement was due
    supervisor._spawn()
    assert supervisor.pids == set()


def test_a_stop_during_the_fork_reaches_the_new_worker() -> None:
    """A SIGTERM that comes while a worker is forked reaches it, whichever thread of the
    process takes the signal (the test runner's may have several): the worker stops at once
    instead of serving on, never told."""

    def serving_for_ten_minutes() -> int:
        time.sleep(600)
        return 0

    supervisor = _Supervisor(serving_for_ten_minutes, workers=1)
    previous = signal.signal(signal.SIGTERM, supervisor._on_signal)
    real_fork = os.fork

    def fork_after_a_stop() -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # the stop arrives while the fork is under way
        return real_fork()

    # the supervisor's handler stays until the worker is reaped: a stray SIGTERM meanwhile
    # (a Ray cluster of an earlier test tearing down) must not reach the runner's old handler
    try:
        try:
            os.fork = fork_after_a_stop  # type: ignore[assignment]
            supervisor._spawn()
        finally:
            os.fork = real_fork  # type: ignore[assignment]
        (pid,) = supervisor.pids
        deadline = time.monotonic() + 120  # it stops in milliseconds; untold, in 600 s
        status = 0
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the worker forked during the stop was never told to stop")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert supervisor.stop_signal == signal.SIGTERM
    assert os.waitstatus_to_exitcode(status) == -signal.SIGTERM
