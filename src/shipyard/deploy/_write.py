"""Write generated files atomically, refusing to overwrite unless asked."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import DeployError

__all__ = ["WrittenFile", "write_files"]


@dataclass(frozen=True)
class WrittenFile:
    """A file written: where, and its size in bytes."""

    path: Path
    size: int


def write_files(
    files: Mapping[str, bytes], out_dir: Path, *, force: bool = False
) -> list[WrittenFile]:
    """Write each file under ``out_dir`` (a temporary name, then a rename).

    Nothing is written when a file exists and ``force`` is false.

    Raises:
        DeployError: files exist (and ``force`` is false), or a file cannot be written.
    """
    targets = {name: out_dir / name for name in files}
    existing = sorted(name for name, path in targets.items() if path.exists())
    if existing and not force:
        shown = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
        msg = (
            f"{len(existing)} file(s) already exist in {out_dir}: {shown}; "
            "pass --force to overwrite them, or choose another -o folder"
        )
        raise DeployError(msg)
    written = []
    for name, data in files.items():
        path = targets[name]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # the folder may be what failed
                tmp.unlink(missing_ok=True)
            msg = f"cannot write {path}: {exc.strerror or exc}"
            raise DeployError(msg) from exc
        written.append(WrittenFile(path, len(data)))
    return written
