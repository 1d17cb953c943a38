"""Fixtures of the chaos tests: a cuttable proxy in front of the real PostgreSQL server, and a
small project for ``shipyard run``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _proxy import FaultProxy
from palmerpenguins import load_penguins

SPEC = """\
name: penguins
data: {source: {type: csv, path: data/penguins.csv}, target: species}
split: {cv_folds: 2}
models:
  - model: linear
"""


@pytest.fixture
def proxy(pg_server_url: str) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` to the PostgreSQL server (skips like every PostgreSQL test)."""
    with FaultProxy(pg_server_url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: ``shipyard.yaml`` for one quick candidate on the penguins, the
    store under ``.shipyard`` (unless ``--store`` says otherwise)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_ARTIFACT_ROOT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "data").mkdir()
    load_penguins().to_csv(tmp_path / "data" / "penguins.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(SPEC)
    return tmp_path
