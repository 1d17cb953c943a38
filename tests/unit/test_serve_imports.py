"""The server's public surface, and that importing it never loads the training stack."""

from __future__ import annotations

import subprocess
import sys

import shipyard.serve

FORBIDDEN = (
    "shipyard.train",
    "shipyard.evaluate",
    "shipyard.pipeline",
    "shipyard.tracking",
    "lightgbm",
    "skl2onnx",
    "onnxmltools",
)


def test_public_names() -> None:
    assert sorted(shipyard.serve.__all__) == [
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
    for name in shipyard.serve.__all__:
        assert getattr(shipyard.serve, name).__module__.startswith("shipyard.serve._")


def test_import_does_not_load_training_stack() -> None:
    code = (
        "import sys, shipyard.serve\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout
