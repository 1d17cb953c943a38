"""``shipyard ui``: the web UI over the store."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._context import CliState, current_user, open_store
from shipyard.cli._render import escape
from shipyard.cli._serve import TlsCertfileOption, TlsKeyfileOption, checked_tls
from shipyard.errors import ShipyardError

__all__ = ["ui"]


def ui(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            help="Interface to listen on. Anything but a loopback address needs API keys."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free one).")] = 8765,
    store: Annotated[
        str | None,
        typer.Option(
            help="Metadata store URL (as `shipyard --store URL ui`; default: SHIPYARD_STORE_URL, "
            "else shipyard.db in SHIPYARD_HOME, else in .shipyard).",
            show_default=False,
        ),
    ] = None,
    api_keys_file: Annotated[
        Path | None,
        typer.Option(
            help="Require a login with an API key: the file format of `shipyard serve "
            "--api-keys-file` (a key or sha256:<hex digest> a line, role=read or role=admin). "
            "SHIPYARD_API_KEYS adds comma-separated ones.",
            show_default=False,
        ),
    ] = None,
    session_hours: Annotated[
        float, typer.Option(min=0.01, max=24 * 30, help="How long a login lasts.")
    ] = 8.0,
    tls_certfile: TlsCertfileOption = None,
    tls_keyfile: TlsKeyfileOption = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="The base URL of a running `shipyard serve` for the serving page's live view "
            "(e.g. http://127.0.0.1:8000). SHIPYARD_UI_SERVER_KEY is sent to it (only) as its "
            "API key.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the web UI: runs (filters, sorting, paging), run details, compare, models,
    monitoring, and a live view of a running server.

    Without API keys it is open to anyone who can reach it, so it refuses to listen on
    anything but a loopback address; with keys, visitors log in (role read: every page;
    admin: also promote and roll back). Ctrl-C or SIGTERM stops it.
    """
    from shipyard._apikeys import load_api_key_roles
    from shipyard.serve import bind_socket, run_server
    from shipyard.ui import UiAuth, create_app

    state: CliState = ctx.obj
    if store is not None:
        state.store_url = store
    tls = checked_tls(tls_certfile, tls_keyfile)
    server_key = os.environ.get("SHIPYARD_UI_SERVER_KEY") or None
    if server is not None:
        from shipyard.ui import normalise_server_url

        try:
            server = normalise_server_url(server)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--server") from exc
    roles = load_api_key_roles(file=api_keys_file, env_value=os.environ.get("SHIPYARD_API_KEYS"))
    if not roles and not is_loopback(host):
        msg = (
            f"shipyard ui on {host} would let anyone who can reach it promote models: give "
            "--api-keys-file FILE (or SHIPYARD_API_KEYS) with role=read or role=admin keys, "
            "or listen on 127.0.0.1"
        )
        raise ShipyardError(msg)
    if roles and not any(role in ("read", "admin") for role in roles.values()):
        msg = "none of the API keys has role read or admin, so nobody could log in to the UI"
        raise ShipyardError(msg)
    auth = UiAuth(
        key_roles=roles,
        secret=secrets.token_urlsafe(32),
        session_seconds=round(session_hours * 3600),
        https=tls is not None,
        anonymous_user=current_user(),
    )
    opened = open_store(state)
    try:
        app = create_app(opened, auth=auth, server=server, server_key=server_key)
        sock = bind_socket(host, port)  # a busy port is an error here, before "Serving"
        bound = sock.getsockname()[1]
        where = f"[{host}]" if ":" in host else host
        access = f"{len(roles)} API key(s), login required" if roles else "no login (loopback)"
        state.out.print(
            f"Shipyard UI on {'http' if tls is None else 'https'}://{where}:{bound} "
            f"({escape(access)}); Ctrl-C stops it"
        )
        if server_key and server is None:
            state.out.print(
                "[yellow]warning:[/] SHIPYARD_UI_SERVER_KEY is set but no --server: the key is "
                "sent to the --server URL only, so it is not used"
            )
        if roles and tls is None and not is_loopback(host):
            state.out.print(
                "[yellow]warning:[/] keys cross the network in clear text without "
                "--tls-certfile/--tls-keyfile"
            )
        run_server(app, host=host, port=bound, sock=sock, log_level=log_level, tls=tls)
    finally:
        opened.close()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.1``, ``::1``, ``localhost``).

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("localhost")
        (True, False, True)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
