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
