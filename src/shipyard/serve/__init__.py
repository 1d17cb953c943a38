"""The prediction server: an ASGI app generated from a model package's Signature.

Example:
    >>> from shipyard.serve import create_app, run_server  # doctest: +SKIP
    >>> run_server(create_app(package), port=8000)  # doctest: +SKIP
"""

from shipyard.serve._app import ServeApp, create_app
from shipyard.serve._batcher import BatchingConfig
from shipyard.serve._config import ServeConfig
from shipyard.serve._limits import RequestLimits, request_limits
from shipyard.serve._ratelimit import RateLimit
from shipyard.serve._runner import ModelRunner
from shipyard.serve._schema import build_record_model, example_record
from shipyard.serve._server import (
    ListenError,
    ShutdownReport,
    TlsFiles,
    bind_socket,
    run_server,
)
from shipyard.serve._workers import default_workers, run_workers

__all__ = [
    "BatchingConfig",
    "ListenError",
    "ModelRunner",
    "RateLimit",
    "RequestLimits",
    "ServeApp",
    "ServeConfig",
    "ShutdownReport",
    "TlsFiles",
    "bind_socket",
    "build_record_model",
    "create_app",
    "default_workers",
    "example_record",
    "request_limits",
    "run_server",
    "run_workers",
]
