"""``shipyard validate`` fails on whatever ``shipyard run`` would fail on before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_runner import cli

HEAD = """\
name: wine
data:
  source: {type: csv, path: data/train.csv}
  target: quality
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    rng = np.random.default_rng(0)
    n = 80
    frame = pd.DataFrame(
        {
            "alcohol": rng.normal(11, 1, n).round(2),
            "magnesium": rng.integers(80, 130, n),
            "quality": np.where(np.arange(n) < 4, "rare", np.where(np.arange(n) % 2, "a", "b")),
        }
    )
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "train.csv", index=False)
    return tmp_path


def _write(project: Path, body: str) -> None:
    (project / "shipyard.yaml").write_text(HEAD + body)


CASES = [
    (
        "unknown model",
        "split: {cv_folds: 3}\nmodels:\n  - model: linear\n  - model: xgboostt\n",
        ["shipyard.yaml:8 (models[1].model)", "unknown model 'xgboostt'"],
    ),
    (
        "unknown parameter",
        "split: {cv_folds: 3}\nmodels:\n  - model: linear\n  - model: random_forest\n"
        "    params: {n_estimator: 10}\n",
        ["shipyard.yaml:9 (models[1].params)", "'n_estimator' (did you mean 'n_estimators'?)"],
    ),
    (
        "too few rows of a class for the folds",
        "split:\n  cv_folds: 5\nmodels: [{model: linear}]\n",
        ["shipyard.yaml:6 (split.cv_folds)", "'rare' (3 rows)", "set split.cv_folds to 3"],
    ),
]


@pytest.mark.parametrize(("what", "body", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_validate_and_run_fail_alike_before_training(
    capsys: pytest.CaptureFixture[str],
    project: Path,
    what: str,
    body: str,
    fragments: list[str],
) -> None:
    _write(project, body)
    code, out = cli(capsys, "validate")
    assert code == 1, out
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} not in: {out}"
    assert "Traceback" not in out and "Ready to train" not in out
    code, out = cli(capsys, "run")
    assert code == 1 and fragments[-1] in out
    assert "cross-validating" not in out and "Candidates" not in out


def test_validate_says_what_run_would_train(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    _write(project, "split: {cv_folds: 3}\nmodels: [{model: linear}, {model: lightgbm}]\n")
    code, out = cli(capsys, "validate")
    assert code == 0, out
    assert "Ready to train 2 candidate(s) (linear, lightgbm)" in out
    assert "on 64 rows with 3-fold cross-validation; 16 rows held out" in out
    assert not (project / ".shipyard").exists()


def test_validate_reports_stray_text_in_a_number_column(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    frame = pd.read_csv(project / "data" / "train.csv")
    frame["magnesium"] = frame["magnesium"].astype(object)
    frame.loc[[6, 9], "magnesium"] = ["unknown", "100 mg"]
    frame.to_csv(project / "data" / "train.csv", index=False)
    _write(project, "split: {cv_folds: 3}\nmodels: [{model: linear}]\n")
    code, out = cli(capsys, "validate")
    assert code == 1
    assert "magnesium" in out and "78 of 80 values are numbers, 2 are not" in out
    assert "lines 8, 11 of the CSV file" in out and "data.on_bad_numbers: coerce" in out
    _write(project, "  on_bad_numbers: coerce\nsplit: {cv_folds: 3}\nmodels: [{model: linear}]\n")
    code, out = cli(capsys, "validate")
    assert code == 0, out
    assert "read as missing" in out
