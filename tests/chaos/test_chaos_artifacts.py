"""Artifact storage that fills up or turns read-only while a model package is written.

As root, ``chmod`` stops nothing, so the fault is injected in the filesystem: the artifact root
is a ``chaosdisk://`` URL, a local folder behind an fsspec filesystem that fails one write of a
package file as a full disk does (``ENOSPC`` after part of the bytes reached the file) or a
read-only one does (``EROFS`` on opening it). ``shipyard run`` must then exit 1 naming the file
and the cause, register no version, leave no partial file, keep every recorded artifact
readable (its sha256 matches), record the run ``failed``; and once the fault is gone the next
run must register a version that loads and predicts.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from palmerpenguins import load_penguins

from cli_runner import cli
from shipyard.errors import ModelNotFoundError
from shipyard.registry import Registry
from shipyard.store import Store
from shipyard.tracking import Tracker

pytestmark = pytest.mark.slow


@dataclass
class Fault:
    """Fail the write of the first file whose path matches ``path``."""

    code: int  # errno.ENOSPC or errno.EROFS
    path: str
    after_bytes: int = 0  # ENOSPC: bytes that reach the file before the error
    fired: bool = False


class ChaosDisk(LocalFileSystem):
    """A local folder as ``chaosdisk:///path``, whose writes fail as :attr:`fault` says."""

    protocol = ("chaosdisk",)
    fault: Fault | None = None

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str) and path.startswith("chaosdisk://"):
            path = path[len("chaosdisk://") :]
        return super()._strip_protocol(path)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        fault = ChaosDisk.fault
        if "w" not in mode or fault is None or fault.fired or not re.search(fault.path, path):
            return super()._open(path, mode, **kwargs)
        fault.fired = True
        if fault.code == errno.EROFS:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return _FillingFile(super()._open(path, mode, **kwargs), fault.after_bytes)


class _FillingFile:
    """A file on a disk with ``room`` bytes left: the write that needs more fails."""

    def __init__(self, file: Any, room: int) -> None:
        self._file = file
        self._room = room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            self._file.write(data[: self._room])
            self._file.flush()  # the partial bytes are on disk, as on a real full disk
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._file.write(data))

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


@pytest.fixture
def disk(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The project, its artifacts on a ``chaosdisk://`` root."""
    monkeypatch.setenv("SHIPYARD_ARTIFACT_ROOT", f"chaosdisk://{project}/artifacts")
    fsspec.register_implementation("chaosdisk", ChaosDisk, clobber=True)
    yield project
    ChaosDisk.fault = None


def _check_store(project: Path) -> tuple[list[Any], list[tuple[str, str, str]], int]:
    """Versions, runs (name, status, error) and recorded artifacts; every recorded artifact
    reads back whole (sha256 verified) and no temporary file is left on disk."""
    store = Store.from_env()
    try:
        records = store.artifacts.list()
        for record in records:
            store.artifacts.get(record.path)  # raises on a missing or partial file
        try:
            versions = Registry(store).list_versions("penguins")
        except ModelNotFoundError:
            versions = []
        with Tracker(store) as tracker:
            runs = sorted((r.name, r.status, r.error or "") for r in tracker.search_runs())
    finally:
        store.close()
    leftovers = [p for p in (project / "artifacts").rglob("*") if ".tmp-" in p.name]
    assert leftovers == [], leftovers
    return versions, runs, len(records)


# validation.json, signature.json, evaluation.json, curves.json and model_card.json (the card
# is computed while the model converts to ONNX): stored before the package; run.log: stored as
# the failed run ends
RUN_ARTIFACTS = 6


@pytest.mark.parametrize(
    ("fault", "cause", "stored_before"),
    [
        pytest.param(
            Fault(errno.ENOSPC, r"models/penguins/.*/model\.onnx", after_bytes=100),
            "No space left on device",
            4,  # pipeline.joblib, signature.json, metadata.json, profile.json
            id="disk-full",
        ),
        pytest.param(
            Fault(errno.EROFS, r"models/penguins/.*/profile\.json"),
            "Read-only file system",
            3,
            id="read-only",
        ),
    ],
)
def test_a_failed_package_write_registers_nothing_and_the_next_run_works(
    capsys: pytest.CaptureFixture[str], disk: Path, fault: Fault, cause: str, stored_before: int
) -> None:
    ChaosDisk.fault = fault
    code, out = cli(capsys, "run")
    assert fault.fired
    assert code == 1, out
    assert "Traceback" not in out and "internal error" not in out, out
    error = next(line for line in out.splitlines() if line.startswith("error: "))
    assert "was not registered (no version was created)" in error, error
    assert cause in error and re.search(fault.path, error), error
    versions, runs, recorded = _check_store(disk)
    assert versions == []
    assert recorded == RUN_ARTIFACTS + stored_before  # the failed file is not recorded
    assert [(name, status) for name, status, _ in runs] == [
        ("linear", "finished"),
        ("run", "failed"),
    ]
    assert cause in next(text for name, _, text in runs if name == "run")

    ChaosDisk.fault = None  # space freed, or the mount writable again
    code, out = cli(capsys, "run")
    assert code == 0 and "Registered penguins version 1" in out, out
    versions, runs, _ = _check_store(disk)
    assert [v.version for v in versions] == [1]
    store = Store.from_env()
    try:
        package = Registry(store).load("models:/penguins@production")
    finally:
        store.close()
    frame = load_penguins().drop(columns=["species"]).head(3)
    assert len(package.runtime().predict_frame(frame).labels) == 3  # it loads and predicts
    print(
        f"\n{fault}: exit 1, no version, {recorded} artifacts recorded, all whole; then version 1"
    )


def test_a_full_disk_at_the_report_leaves_the_registered_model_and_a_finished_run(
    capsys: pytest.CaptureFixture[str], disk: Path
) -> None:
    ChaosDisk.fault = Fault(errno.ENOSPC, r"runs/.*/report\.html", after_bytes=100)
    code, out = cli(capsys, "run")
    assert ChaosDisk.fault.fired
    assert code == 0, out
    assert "Registered penguins version 1" in out and "promoted" in out, out
    assert "no HTML report" in out and "No space left on device" in out, out
    versions, runs, _ = _check_store(disk)
    assert [(v.version, v.aliases) for v in versions] == [(1, ("production",))]
    assert [(name, status) for name, status, _ in runs] == [
        ("linear", "finished"),
        ("run", "finished"),
    ]
