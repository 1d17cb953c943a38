"""Text from data, users and the project file prints as written, brackets and all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_runner import cli

SPEC = """\
name: brackets
data:
  source: {type: csv, path: data/train.csv}
  target: kind
models:
  - model: linear
split: {cv_folds: 3}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.setenv("SHIPYARD_USER", "ann[/]")
    monkeypatch.setenv("COLUMNS", "250")
    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame({"size[/]cm": rng.normal(size=n), "kind": rng.choice(["a", "b"], n)})
    frame.loc[:4, "size[/]cm"] = np.nan
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "train.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(SPEC)
    return tmp_path


def test_validate_run_and_models_show_print_brackets(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out = cli(capsys, "validate", "--all")
    assert code == 0, out
    assert "size[/]cm" in out
    code, out = cli(capsys, "run")
    assert code == 0, out
    code, out = cli(capsys, "models", "promote", "brackets", "1", "--reason", "why [/] not")
    assert code == 0, out
    code, out = cli(capsys, "models", "show", "brackets")
    assert code == 0, out
    assert "why [/] not" in out and "ann[/]" in out
    code, out = cli(capsys, "models", "show", "models:/brackets/1")
    assert code == 0, out
    assert "size[/]cm" in out
