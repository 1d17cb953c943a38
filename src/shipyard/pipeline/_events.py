"""Progress events the pipeline emits, for shells to render (rich progress, logs, UI)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Event", "EventHandler", "ignore_events"]


@dataclass(frozen=True)
class Event:
    """One step of a run.

    Attributes:
        kind: ``step`` (a stage starts), ``candidate`` (a candidate starts), ``fold`` (a CV fold
            finished), ``done`` (a stage finished) or ``warning``.
        message: what happens, for people.
        current: progress within the stage (folds done, candidates done).
        total: the stage's size, when known.
    """

    kind: str
    message: str
    current: int = 0
    total: int | None = None


EventHandler = Callable[[Event], None]


def ignore_events(event: Event) -> None:
    """An event handler that drops every event."""
