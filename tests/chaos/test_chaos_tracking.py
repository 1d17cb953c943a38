"""A run's end while its store is away: retried for ``end_retry_s``, then given up.

The store is a SQLite file whose folder is moved away (new connections then fail with "unable
to open database file", as a database that is down does) and, in the first test, moved back
while the end is being retried.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from shipyard.errors import StoreError
from shipyard.store import Store
from shipyard.tracking import Tracker


def _away(store: Store, folder: Path) -> Path:
    """Move the store's folder away (and drop pooled connections); where it went."""
    gone = folder.with_name(f"{folder.name}-away")
    folder.rename(gone)
    store.engine.dispose()
    return gone


def test_an_end_is_recorded_once_the_store_is_back(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store = Store.open(root=folder)
    tracker = Tracker(store, flush_interval=60, end_retry_s=30)
    run = tracker.start_run("through an outage")
    gone = _away(store, folder)
    threading.Timer(0.5, gone.rename, args=(folder,)).start()
    started = time.monotonic()
    run.end()
    waited = time.monotonic() - started
    tracker.close()
    with Tracker(store) as reader:
        assert reader.get_run(run.id).status == "finished"
    assert 0.5 <= waited < 5, waited
    store.close()


def test_a_store_that_stays_away_is_given_up_after_the_window(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store = Store.open(root=folder)
    tracker = Tracker(store, flush_interval=60, end_retry_s=0.6)
    first, second = tracker.start_run("first"), tracker.start_run("second")
    gone = _away(store, folder)
    started = time.monotonic()
    with pytest.raises(StoreError, match="unable to open database file"):
        first.end()
    waited = time.monotonic() - started
    with pytest.raises(StoreError):  # the window has passed: one try, no wait
        second.end("failed")
    assert 0.6 <= waited < 3, waited
    assert time.monotonic() - started - waited < 0.5
    gone.rename(folder)
    tracker.close()
    with Tracker(store) as reader:  # left running; this process lives, so not yet crashed
        assert {reader.get_run(r.id).status for r in (first, second)} == {"running"}
    store.close()
