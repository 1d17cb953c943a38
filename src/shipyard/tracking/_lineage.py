"""Lineage: what a run was made from (spec, dataset, code version, library versions)."""

from __future__ import annotations

import importlib.metadata
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TRACKED_PACKAGES", "Lineage", "collect_lineage"]

logger = logging.getLogger(__name__)

#: Distributions whose installed versions are recorded with every run.
TRACKED_PACKAGES = ("shipyard", "numpy", "pandas", "scikit-learn", "lightgbm", "pyarrow")

_GIT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Lineage:
    """Where a run came from; every field is optional.

    Attributes:
        spec_hash: hash of the project spec the run executed.
        dataset_fingerprint: fingerprint of the dataset snapshot the run read.
        git_commit: ``HEAD`` of the working tree, with ``-dirty`` when it had changes.
        package_versions: installed versions of the tracked distributions.
    """

    spec_hash: str | None = None
    dataset_fingerprint: str | None = None
    git_commit: str | None = None
    package_versions: dict[str, str] = field(default_factory=dict)


def collect_lineage(
    spec_hash: str | None = None,
    dataset_fingerprint: str | None = None,
    cwd: str | Path = ".",
) -> Lineage:
    """Collect the lineage of a run about to start.

    Args:
        spec_hash: hash of the project spec, when the run executes one.
        dataset_fingerprint: fingerprint of the dataset snapshot, when there is one.
        cwd: directory whose git repository gives the commit.

    Returns:
        The lineage; ``git_commit`` is ``None`` outside a git repository or without git.

    Example:
        >>> lineage = collect_lineage(spec_hash="abc123")
        >>> "numpy" in lineage.package_versions
        True
    """
    return Lineage(
        spec_hash=spec_hash,
        dataset_fingerprint=dataset_fingerprint,
        git_commit=git_commit(cwd),
        package_versions=package_versions(),
    )


def git_commit(cwd: str | Path = ".") -> str | None:
    """The ``HEAD`` commit of the repository at ``cwd`` (``-dirty`` if it has changes)."""
    head = _git(["rev-parse", "HEAD"], cwd)
    if not head:
        return None
    status = _git(["status", "--porcelain"], cwd)
    return f"{head}-dirty" if status else head


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names``; distributions that are not installed are left out."""
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _git(args: list[str], cwd: str | Path) -> str | None:
    """Run git and return its stripped stdout, or ``None`` when git is missing or fails."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("git %s failed in %s: %s", " ".join(args), cwd, exc)
        return None
    if done.returncode != 0:
        logger.debug("git %s exited %d in %s", " ".join(args), done.returncode, cwd)
        return None
    return done.stdout.strip()
