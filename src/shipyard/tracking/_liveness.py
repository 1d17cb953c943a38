"""Crashed runs: a run whose process died without ending it is found and marked ``crashed``.

A run records its owner when it starts: the host name, the pid, the *pid space* (the machine's
boot id and the pid namespace, so two containers or two boots never compare pids) and the
process's start time (so a recycled pid is not taken for the owner). While it runs, the
tracker's writer thread refreshes ``heartbeat_at`` by the database's clock.

The rule, for a row still ``running``:

- read in the owner's pid space: the run is alive exactly when a process with its pid exists,
  is not a zombie, and started when the owner did. Where start times cannot be read (no
  ``/proc``), a live pid is not proof, and the heartbeat rule below decides;
- read anywhere else: the run is alive while its last heartbeat (for runs recorded before
  heartbeats existed, its start) is at most ``stale_after`` seconds old.

A dead run is marked ``crashed`` in one conditional ``UPDATE`` (still ``running``, no newer
heartbeat), with its last heartbeat as end time and the reason as error. A heartbeat from a
live owner puts a run marked ``crashed`` by mistake (a network partition longer than
``stale_after``) back to ``running``; ending it records its real end.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shipyard.store import tables

__all__ = [
    "HEARTBEAT_INTERVAL",
    "STALE_AFTER",
    "Crash",
    "ProcessIdentity",
    "beat",
    "current_process",
    "find_crashed",
    "mark_crashed",
    "owner_columns",
]

logger = logging.getLogger(__name__)

#: Seconds between two heartbeats of a running run.
HEARTBEAT_INTERVAL = 30.0
#: Seconds without a heartbeat after which a run owned elsewhere counts as crashed.
STALE_AFTER = 300.0

_PROC = Path("/proc")
_STARTTIME = 19  # field 22 of /proc/<pid>/stat, counted after "pid (comm)": clock ticks since boot


@dataclass(frozen=True)
class ProcessIdentity:
    """Who owns a run.

    Attributes:
        host: the host name (shown to people).
        pid: the process id.
        pid_space: where ``pid`` means this process: host name, boot id and pid namespace.
        started: the process's start time as the kernel counts it, ``None`` where unknown.
    """

    host: str
    pid: int
    pid_space: str
    started: str | None


@dataclass(frozen=True)
class Crash:
    """The verdict on one run: it is dead, since ``last_seen``, for ``reason``."""

    run_id: str
    last_seen: float | None
    reason: str


def current_process() -> ProcessIdentity:
    """The identity of this process (computed per call: a forked child is another owner)."""
    pid = os.getpid()
    return ProcessIdentity(socket.gethostname(), pid, _pid_space(), _start_time(pid))


def owner_columns() -> dict[str, Any]:
    """The ``runs`` columns naming this process as the owner of a run it starts."""
    me = current_process()
    return {"host": me.host, "pid": me.pid, "pid_space": me.pid_space, "pid_started": me.started}


@functools.cache
def _machine() -> str:
    """The host name and boot id: stable for this boot of this machine."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append((_PROC / "sys/kernel/random/boot_id").read_text().strip())
    return "/".join(parts)


def _pid_space() -> str:
    try:
        namespace = str((_PROC / "self/ns/pid").readlink())  # e.g. pid:[4026531836]
    except OSError:
        return _machine()
    return f"{_machine()}/{namespace}"


def _stat_fields(pid: int) -> list[str] | None:
    """The fields after ``(comm)`` in ``/proc/<pid>/stat``; ``None`` when it cannot be read."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[_STARTTIME] if fields is not None and len(fields) > _STARTTIME else None


def _process_state(pid: int, started: str | None) -> str:
    """``"dead"``, ``"alive"`` (the owner itself) or ``"unverified"`` (a live pid, maybe reused)."""
    fields = _stat_fields(pid)
    if fields is None:  # no /proc (macOS), or hidden by hidepid: ask the kernel directly
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "dead"
        except OSError:  # PermissionError: another user's process holds the pid
            return "unverified"
        return "unverified"
    if fields[0] in ("Z", "X", "x"):  # a zombie or dead: it will never end the run
        return "dead"
    if started is None or len(fields) <= _STARTTIME:
        return "unverified"
    return "alive" if fields[_STARTTIME] == started else "dead"


def _verdict(row: Any, here: str, now: float, stale_after: float) -> Crash | None:
    owner = f"pid {row.pid} on {row.host}" if row.pid is not None else "its process"
    if row.pid is not None and row.pid_space == here:
        state = _process_state(int(row.pid), row.pid_started)
        if state == "alive":
            return None
        if state == "dead":
            reason = (
                f"the run's process ({owner}) ended without ending the run: it was killed "
                "(kill -9, out of memory) or crashed"
            )
            return Crash(row.id, row.heartbeat_at, reason)
    last_seen = row.heartbeat_at if row.heartbeat_at is not None else row.start_time
    silent = now - float(last_seen)
    if silent <= stale_after:
        return None
    reason = (
        f"no heartbeat from the run's process ({owner}) for {silent:.0f} s (more than "
        f"{stale_after:.0f} s): it was killed, crashed or lost its connection to the store"
    )
    return Crash(row.id, row.heartbeat_at, reason)


def find_crashed(
    conn: sa.Connection, *, stale_after: float = STALE_AFTER, run_ids: Iterable[str] | None = None
) -> list[Crash]:
    """The ``running`` runs whose owner is dead, by the rule in this module's docstring.

    Args:
        conn: an open connection (only read).
        stale_after: seconds without a heartbeat after which a run owned elsewhere is dead.
        run_ids: only judge these runs (default: every running run).
    """
    runs = tables.runs
    columns = (
        runs.c.id,
        runs.c.start_time,
        runs.c.host,
        runs.c.pid,
        runs.c.pid_space,
        runs.c.pid_started,
        runs.c.heartbeat_at,
    )
    query = sa.select(*columns).where(runs.c.status == "running")
    if run_ids is not None:
        query = query.where(runs.c.id.in_(list(run_ids)))
    rows = list(conn.execute(query))
    if not rows:
        return []
    now = float(conn.execute(sa.select(tables.db_epoch(conn.dialect.name))).scalar_one())
    here = _pid_space()
    return [c for c in (_verdict(row, here, now, stale_after) for row in rows) if c is not None]


def mark_crashed(conn: sa.Connection, crashes: Iterable[Crash]) -> list[str]:
    """Record the verdicts: each run becomes ``crashed`` if nothing changed since it was judged.

    A run is updated only while it is still ``running`` and has no heartbeat newer than the
    one the verdict saw, so a run that ended or beat in between is left alone.

    Args:
        conn: a connection inside a write transaction.
        crashes: the verdicts of :func:`find_crashed`.

    Returns:
        The ids of the runs marked.
    """
    runs = tables.runs
    marked = []
    for crash in crashes:
        seen = (
            runs.c.heartbeat_at.is_(None)
            if crash.last_seen is None
            else sa.or_(runs.c.heartbeat_at.is_(None), runs.c.heartbeat_at <= crash.last_seen)
        )
        done = conn.execute(
            sa.update(runs)
            .where(runs.c.id == crash.run_id, runs.c.status == "running", seen)
            .values(status="crashed", end_time=crash.last_seen, error=crash.reason)
        )
        if done.rowcount:
            marked.append(crash.run_id)
            logger.info("marked run %s crashed: %s", crash.run_id, crash.reason)
    return marked


def beat(conn: sa.Connection, run_ids: Iterable[str]) -> None:
    """Refresh the heartbeat of live runs; one marked ``crashed`` by mistake runs again.

    Args:
        conn: a connection inside a write transaction.
        run_ids: runs this process owns and has not ended.
    """
    ids = list(run_ids)
    if not ids:
        return
    runs = tables.runs
    conn.execute(
        sa.update(runs)
        .where(runs.c.id.in_(ids), runs.c.status.in_(("running", "crashed")))
        .values(
            heartbeat_at=tables.db_epoch(conn.dialect.name),
            status="running",
            end_time=None,
            error=None,
        )
    )
