"""Running a server app under uvicorn."""

from __future__ import annotations

import logging

import uvicorn
from starlette.types import ASGIApp

__all__ = ["run_server"]

logger = logging.getLogger(__name__)


def run_server(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    graceful_timeout: int = 30,
) -> None:
    """Serve ``app`` with uvicorn until SIGINT/SIGTERM, then shut down gracefully.

    On a signal uvicorn stops accepting connections, lets in-flight requests finish (for at
    most ``graceful_timeout`` seconds) and runs the app's shutdown hooks.

    Args:
        app: the ASGI app, usually from :func:`create_app`.
        host: the interface to bind; ``0.0.0.0`` exposes the server beyond this machine.
        port: the TCP port (``0`` picks a free one).
        log_level: uvicorn's log level (``debug``, ``info``, ``warning``, ``error``).
        graceful_timeout: seconds to wait for in-flight requests on shutdown.

    Example:
        >>> run_server(create_app(package), port=8080)  # doctest: +SKIP
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=graceful_timeout,
        server_header=False,
    )
    logger.info("serving on http://%s:%d", host, port)
    uvicorn.Server(config).run()
