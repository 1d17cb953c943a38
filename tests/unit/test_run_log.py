"""The run's log (``run.log``): what it keeps, how it reads, and that it never fails a run."""

from __future__ import annotations

import logging
import re

import pytest

from shipyard.errors import StoreError
from shipyard.pipeline import Event
from shipyard.pipeline._log import MAX_LINE_CHARS, RunLog

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  "


class _Run:
    """A run that keeps its artifacts in a dict, or fails to store them."""

    id = "0123abcd"

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.stored: dict[str, bytes] = {}

    def log_artifact(self, name: str, data: bytes) -> str:
        if self.broken:
            raise StoreError("the disk is full")
        self.stored[name] = data
        return "sha"


def test_events_read_as_the_cli_shows_them_and_pass_on() -> None:
    seen: list[Event] = []
    run = _Run()
    with RunLog(seen.append) as log, log.stored_with(run):  # type: ignore[arg-type]
        log.on_event(Event("step", "loading csv data"))
        log.on_event(Event("fold", "linear: fold 2", 2, 5))
        log.on_event(Event("warning", "column 'x': 3 values missing"))
    assert [e.message for e in seen] == [
        "loading csv data",
        "linear: fold 2",
        "column 'x': 3 values missing",
    ]
    lines = run.stored["run.log"].decode().splitlines()
    assert [line[26:] for line in lines[:3]] == [
        "loading csv data",
        "linear: fold 2 (2/5)",
        "warning: column 'x': 3 values missing",
    ]
    assert all(re.match(STAMP, line) for line in lines)
    assert re.fullmatch(r"finished in \d+\.\d s", lines[-1][26:])


def test_the_log_keeps_its_last_lines_and_says_how_many_it_left_out() -> None:
    with RunLog(lambda e: None, max_lines=3) as log:
        for i in range(5):
            log.on_event(Event("step", f"step {i}\nsecond line\n"))
    lines = log.text().splitlines()
    assert lines[0] == "(2 earlier lines left out)"
    assert lines[1].endswith("  step 2") and lines[2] == " " * 26 + "second line"
    assert len(lines) == 7


def test_passwords_in_urls_are_masked_and_long_lines_cut() -> None:
    with RunLog(lambda e: None) as log:
        log.add("reading postgresql+psycopg://ana:s3cr3t@db:5432/x and https://h/p@q")
        log.add("x" * (MAX_LINE_CHARS + 500))
    first, second = log.text().splitlines()
    assert first.endswith("reading postgresql+psycopg://ana:***@db:5432/x and https://h/p@q")
    assert len(second) == 26 + MAX_LINE_CHARS and second.endswith("x…")


def test_a_failed_run_keeps_its_log_ending_with_the_error() -> None:
    run = _Run()
    with pytest.raises(ValueError), RunLog(lambda e: None) as log, log.stored_with(run):  # type: ignore[arg-type]
        log.on_event(Event("step", "refitting"))
        raise ValueError("bad\nthing")
    lines = run.stored["run.log"].decode().splitlines()
    assert lines[-2].endswith("  failed: ValueError: bad") and lines[-1].strip() == "thing"
    run = _Run()
    with pytest.raises(KeyboardInterrupt), RunLog(lambda e: None) as log, log.stored_with(run):  # type: ignore[arg-type]
        raise KeyboardInterrupt
    assert run.stored["run.log"].decode().splitlines()[-1].endswith("  stopped: KeyboardInterrupt")


def test_a_log_that_cannot_be_stored_is_a_warning_not_a_failure() -> None:
    seen: list[Event] = []
    with RunLog(seen.append) as log, log.stored_with(_Run(broken=True)):  # type: ignore[arg-type]
        log.on_event(Event("step", "training"))
    assert seen[-1] == Event("warning", "no run.log: the disk is full")


def test_the_handler_is_removed_when_the_run_is_over() -> None:
    before = list(logging.getLogger("shipyard").handlers)
    with RunLog(lambda e: None) as log:
        logging.getLogger("shipyard.tests").warning("kept")
    logging.getLogger("shipyard.tests").warning("after the run")
    assert logging.getLogger("shipyard").handlers == before
    assert "kept" in log.text() and "after the run" not in log.text()


def test_unconfigured_logging_still_prints_shipyard_warnings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # no handler but the log's on the way up (pytest's own are on the root: cut it off)
    monkeypatch.setattr(logging.getLogger("shipyard"), "propagate", False)
    with RunLog(lambda e: None) as log:
        logging.getLogger("shipyard.somewhere").warning("disk %s full", "nearly")
        logging.getLogger("shipyard.somewhere").info("not kept")
    assert log.text().endswith("  warning [shipyard.somewhere]: disk nearly full\n")
    assert "not kept" not in log.text()
    assert capsys.readouterr().err == "disk nearly full\n"  # Python's last resort, as before
