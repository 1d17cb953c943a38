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
    """SIGTERM sent while signals are blocked around the fork is handled after it: the new
    worker is in ``pids`` by then and gets the signal, so it cannot serve on untold."""

    def serving_forever() -> int:
        time.sleep(60)
        return 0

    supervisor = _Supervisor(serving_forever, workers=1)
    previous = signal.signal(signal.SIGTERM, supervisor._on_signal)
    real_fork = os.fork

    def fork_after_a_stop() -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # pending: blocked until the fork is done
        return real_fork()

    try:
        os.fork = fork_after_a_stop  # type: ignore[assignment]
        supervisor._spawn()
    finally:
        os.fork = real_fork  # type: ignore[assignment]
        signal.signal(signal.SIGTERM, previous)
    (pid,) = supervisor.pids
    _, status = os.waitpid(pid, 0)
    assert supervisor.stop_signal == signal.SIGTERM
    assert os.waitstatus_to_exitcode(status) == -signal.SIGTERM
