"""Run the ``shipyard`` command in process, as the e2e tests do: exit code and output."""

from __future__ import annotations

import pytest

from shipyard.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``shipyard ARGS``: the exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``shipyard ARGS``: the exit code and everything printed (stdout, then stderr)."""
    code, out, err = run_cli(capsys, *args)
    return code, out + err
