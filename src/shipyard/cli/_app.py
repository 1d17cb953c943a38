"""The ``shipyard`` command: a typer app with one module per command group."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.logging import RichHandler

from shipyard import __version__
from shipyard.cli._context import CliState
from shipyard.cli._deploy import deploy
from shipyard.cli._forget import audit, forget
from shipyard.cli._models import models_app
from shipyard.cli._monitor import drift, labels_app, monitor
from shipyard.cli._project import init, quickstart, run, validate, worker
from shipyard.cli._runs import runs_app
from shipyard.cli._serve import predict, serve
from shipyard.cli._ui import ui

__all__ = ["build_app"]


def build_app() -> typer.Typer:
    """Build the CLI (a fresh app each call; nothing is registered at import time)."""
    app = typer.Typer(
        name="shipyard",
        help="Shipyard: from a dataset to a validated, tracked, registered, served model.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)
    commands = (
        init,
        quickstart,
        validate,
        run,
        worker,
        serve,
        predict,
        deploy,
        ui,
        monitor,
        drift,
        forget,
        audit,
    )
    for command in commands:
        app.command()(command)
    app.add_typer(runs_app, name="runs")
    app.add_typer(models_app, name="models")
    app.add_typer(labels_app, name="labels")
    return app


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"shipyard {__version__}")
        raise typer.Exit(0)


def _root(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            help="Metadata store URL (default: SHIPYARD_STORE_URL, else shipyard.db in "
            "SHIPYARD_HOME, else in .shipyard)."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
    debug: Annotated[bool, typer.Option(help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    state = CliState(store_url=store, debug=debug)
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=state.out, show_path=False, show_time=debug)],
        force=True,
    )
    logging.captureWarnings(True)  # library warnings go through the same handler
    ctx.obj = state
