"""The run's log: its progress events and warnings as timestamped lines (``run.log``).

``shipyard run`` shows these events as they happen; the log keeps the same text with the run,
so the UI and ``shipyard runs show`` can tell what a run did after its terminal is gone. It
holds what the events and the ``shipyard`` loggers' warnings say (which never carry data
values: PII stays out) with any password in a URL masked, and keeps the last
:data:`MAX_LOG_LINES` lines.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from shipyard.errors import ShipyardError
from shipyard.pipeline._events import Event, EventHandler
from shipyard.tracking import Run

__all__ = ["LOG_ARTIFACT", "MAX_LINE_CHARS", "MAX_LOG_LINES", "RunLog"]

logger = logging.getLogger(__name__)

LOG_ARTIFACT = "run.log"
"""The run's artifact holding its log."""
MAX_LOG_LINES = 5_000
"""The most lines a run's log keeps (the last ones)."""
MAX_LINE_CHARS = 2_000
"""A longer line is cut."""
_INDENT = "\n" + " " * len("2026-01-01T00:00:00.000Z  ")
_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?P<tail>@)")


class RunLog:
    """Records a run's events (and the ``shipyard`` loggers' warnings) while it is used as a
    context manager, then :meth:`stored_with` keeps them as the run's ``run.log``.

    Args:
        on_event: the handler the events go on to (the CLI's progress display).

    Example:
        >>> with RunLog(on_event) as log:  # doctest: +SKIP
        ...     log.on_event(Event("step", "loading csv data"))
        ...     with tracker.start_run("run") as run, log.stored_with(run):
        ...         ...
    """

    def __init__(self, on_event: EventHandler, max_lines: int = MAX_LOG_LINES) -> None:
        self._next = on_event
        self._lines: deque[tuple[float, str]] = deque(maxlen=max_lines)
        self._n_lines = 0
        self._started = time.monotonic()
        self._handler = _WarningHandler(self)

    def on_event(self, event: Event) -> None:
        """Record ``event``, then pass it on."""
        self.add(_event_text(event))
        self._next(event)

    def add(self, text: str) -> None:
        """Record one line (time-stamped now)."""
        self._lines.append((time.time(), text))
        self._n_lines += 1

    def text(self) -> str:
        """The log: one ``YYYY-MM-DDTHH:MM:SS.mmmZ  message`` line per event, oldest first."""
        left_out = self._n_lines - len(self._lines)
        lines = [f"({left_out:,} earlier lines left out)\n"] if left_out else []
        lines += [f"{_stamp(at)}  {_clean(text)}\n" for at, text in self._lines]
        return "".join(lines)

    def __enter__(self) -> RunLog:
        logging.getLogger("shipyard").addHandler(self._handler)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        logging.getLogger("shipyard").removeHandler(self._handler)

    @contextmanager
    def stored_with(self, run: Run) -> Iterator[None]:
        """Store the log as ``run``'s ``run.log`` when the block ends, however it ends (its
        last line says how: ``finished``, or ``failed:`` with the error). Storing it never
        fails the run: a failure is a warning."""
        try:
            yield
        except BaseException as exc:
            self.add(f"{'failed' if isinstance(exc, Exception) else 'stopped'}: {_error(exc)}")
            self._store(run)
            raise
        self.add(f"finished in {time.monotonic() - self._started:.1f} s")
        self._store(run)

    def _store(self, run: Run) -> None:
        try:
            run.log_artifact(LOG_ARTIFACT, self.text().encode("utf-8"))
        except (ShipyardError, OSError) as exc:
            logger.warning("could not store the log of run %s: %s", run.id, exc)
            self._next(Event("warning", f"no {LOG_ARTIFACT}: {exc}"))


class _WarningHandler(logging.Handler):
    """Adds the ``shipyard`` loggers' warnings and errors to a run's log (their message only,
    never a traceback)."""

    def __init__(self, log: RunLog) -> None:
        super().__init__(logging.WARNING)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._log.add(f"{record.levelname.lower()} [{record.name}]: {record.getMessage()}")
        except Exception:  # a message that cannot be formatted: the log goes on without it
            self.handleError(record)
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and self._alone(record.name):
            last.handle(record)  # as without this handler: unconfigured logging still prints

    def _alone(self, name: str) -> bool:
        """Whether this is the only handler a record of logger ``name`` reaches."""
        node: logging.Logger | None = logging.getLogger(name)
        while node is not None:
            if any(handler is not self for handler in node.handlers):
                return False
            node = node.parent if node.propagate else None
        return True


def _event_text(event: Event) -> str:
    """The event as the CLI shows it: ``warning: ...``, or the message with its progress."""
    if event.kind == "warning":
        return f"warning: {event.message}"
    if event.kind == "fold" and event.total:
        return f"{event.message} ({event.current}/{event.total})"
    return event.message


def _error(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _clean(text: str) -> str:
    """The text without URL passwords, cut at :data:`MAX_LINE_CHARS` characters, its further
    lines indented under the first."""
    masked = _PASSWORD.sub(r"\g<head>***\g<tail>", text)
    cut = masked if len(masked) <= MAX_LINE_CHARS else masked[: MAX_LINE_CHARS - 1] + "…"
    return _INDENT.join(line for line in cut.splitlines() if line.strip())


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
