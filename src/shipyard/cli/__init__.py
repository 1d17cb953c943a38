"""The ``shipyard`` command line; ``main`` maps errors to exit codes in one place.

Exit codes: 0 success, 1 a user error (bad project file, bad data, bad arguments, unknown
model), 2 an internal error (a bug: please report it with ``--debug`` output), 3 drift found
by ``monitor`` or ``drift`` with ``--fail-on-drift``.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from types import FrameType

import typer
from rich.console import Console

from shipyard.cli._app import build_app
from shipyard.cli._render import escape
from shipyard.errors import ShipyardError

__all__ = ["build_app", "main"]

# typer >= 0.20 vendors its own click: find its ClickException through a public subclass
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with 0 (ok), 1 (user error) or 2 (internal error)."""
    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    debug = "--debug" in args
    err = Console(stderr=True, highlight=False)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code = build_app()(args=args, prog_name="shipyard", standalone_mode=False)
        if isinstance(code, int) and code:  # click returns typer.Exit's code in this mode
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("[red]Aborted.[/]")
        sys.exit(1)
    except _ClickException as exc:  # usage errors: bad option, missing argument
        exc.show()  # type: ignore[attr-defined]  # found through the MRO, typed as Exception
        sys.exit(0 if type(exc).__name__ == "NoArgsIsHelpError" else 1)
    except ShipyardError as exc:
        if debug:
            err.print_exception()
        err.print(f"[bold red]error:[/] {escape(exc)}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]Interrupted.[/]")
        sys.exit(1)
    except Exception as exc:
        if debug:
            err.print_exception()
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(exc)}\n"
            "This is a bug in Shipyard. Re-run with --debug for the traceback and report it."
        )
        sys.exit(2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.exit(0)


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so a run in progress is recorded as killed, not left running."""
    raise SystemExit(128 + signum)
