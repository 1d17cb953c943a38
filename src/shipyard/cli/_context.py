"""What every command needs: the console, the store location, who the user is."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shipyard.errors import ShipyardError, StoreError
from shipyard.store import Store, store_location

__all__ = ["CliState", "PredictionLogOption", "current_user", "open_store", "write_file"]

PredictionLogOption = Annotated[
    str | None,
    typer.Option(
        "--predictions",
        help="The prediction log: a folder or a SQLAlchemy URL, as `serve --prediction-log` "
        "wrote it (default: <SHIPYARD_HOME>/predictions).",
    ),
]
"""The ``--predictions`` option of the commands that read or erase the prediction log."""


@dataclass
class CliState:
    """Options given before the command (``shipyard --store URL run``)."""

    store_url: str | None = None
    debug: bool = False
    console: Console | None = None

    @property
    def out(self) -> Console:
        """The console results are printed to."""
        if self.console is None:
            self.console = Console(highlight=False)
        return self.console


def open_store(state: CliState, *, create: bool = False) -> Store:
    """Open the store where :func:`shipyard.store.store_location` finds it.

    ``--store`` beats ``SHIPYARD_STORE_URL`` beats ``<root>/shipyard.db``, the root being
    ``SHIPYARD_HOME`` or ``.shipyard``; artifacts go to ``SHIPYARD_ARTIFACT_ROOT`` or
    ``<root>/artifacts``.

    Args:
        state: the CLI's options.
        create: make the default local store when it does not exist (commands that record);
            commands that only read refuse instead, so a typo'd folder never grows an empty
            ``.shipyard/``.

    Raises:
        StoreError: the default local store does not exist and ``create`` is false.
    """
    url, root, artifact_root = store_location(state.store_url)
    if url is None and not create and not (root / "shipyard.db").exists():
        msg = (
            f"no Shipyard store at {(root / 'shipyard.db').resolve()}; run this from the folder "
            "where `shipyard run` (or `quickstart`) created .shipyard/, or point "
            "SHIPYARD_STORE_URL / --store at your store"
        )
        raise StoreError(msg)
    return Store.open(url, root=root, artifact_root=artifact_root)


def current_user() -> str:
    """Who moves aliases: ``SHIPYARD_USER`` or the login name."""
    name = os.environ.get("SHIPYARD_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def write_file(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``target``, then rename it: a reader never
    sees half a file.

    Raises:
        ShipyardError: the folder does not exist or cannot be written.
    """
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"cannot write {target}: {exc.strerror or exc}; check that its folder exists"
        raise ShipyardError(msg) from exc
