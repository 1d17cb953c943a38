"""``shipyard models catalogue``: the model families a project file's ``models:`` can name."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import cli
from shipyard.train import default_catalogue


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def _rows(out: str) -> dict[str, str]:
    """Table rows by their first cell (the catalogue key)."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) >= 4 and cells[0] and cells[0] != "key":
            rows[cells[0]] = line
    return rows


def test_every_entry_with_its_tasks_description_and_library(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = cli(capsys, "models", "catalogue")
    assert code == 0, out
    assert "16 model families" in out
    rows = _rows(out)
    assert list(rows) == default_catalogue().keys()  # sorted by key
    for entry in default_catalogue().entries():
        assert entry.description in rows[entry.key]
        assert entry.library in rows[entry.key]
    assert "binary, multiclass, regression" in rows["lightgbm"]
    assert "lightgbm" in rows["lightgbm"].split("│")[-2]  # its library
    assert "binary, multiclass" in rows["logistic_regression"]
    assert "regression" in rows["ridge"] and "binary" not in rows["ridge"]
    assert "scikit-learn" in rows["ridge"]
    assert not (tmp_path / ".shipyard").exists()  # no store needed, none created


def test_filtered_by_task(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys, "models", "catalogue", "--task", "regression")
    assert code == 0
    rows = _rows(out)
    assert "ridge" in rows and "linear_regression" in rows
    assert "logistic_regression" not in rows
    n = len(default_catalogue().entries("regression"))
    assert n == 14 and f"{n} model families for regression" in out
    code, out = cli(capsys, "models", "catalogue", "--task", "clustering")
    assert code == 1 and "clustering" in out and "binary, multiclass, regression" in out
    assert "Traceback" not in out


def test_listed_in_the_models_group_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys, "models", "--help")
    assert code == 0 and "catalogue" in out
