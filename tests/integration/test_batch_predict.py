"""Batch prediction files and the quickstart project, in process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _packages import penguins_package
from _served import register
from palmerpenguins import load_penguins

from cli_runner import cli
from shipyard.errors import DataError, PredictionError, SpecError
from shipyard.pipeline import QUICKSTART_SPEC, create_quickstart_project, predict_file
from shipyard.registry import ModelPackage
from shipyard.spec import load_spec


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    return penguins_package()


def test_csv_to_parquet_and_parquet_to_csv(tmp_path: Path, package: ModelPackage) -> None:
    data = load_penguins().head(20)
    data["prediction"] = "stale"  # an input column with an output's name is replaced
    data.to_csv(tmp_path / "in.csv", index=False)
    assert predict_file(package, tmp_path / "in.csv", tmp_path / "out" / "p.parquet") == 20
    out = pd.read_parquet(tmp_path / "out" / "p.parquet")
    assert list(out.columns[-4:]) == [
        "prediction",
        "proba_Adelie",
        "proba_Chinstrap",
        "proba_Gentoo",
    ]
    assert "stale" not in set(out["prediction"]) and len(out) == 20
    out.drop(columns=["prediction"]).to_parquet(tmp_path / "again.parquet")
    predict_file(package, tmp_path / "again.parquet", tmp_path / "again.csv")
    again = pd.read_csv(tmp_path / "again.csv")
    assert again["prediction"].tolist() == out["prediction"].tolist()
    assert not list(tmp_path.glob("**/*.tmp"))  # no temporary file is left behind


def test_bad_files(tmp_path: Path, package: ModelPackage) -> None:
    with pytest.raises(DataError, match="does not exist"):
        predict_file(package, tmp_path / "none.csv", tmp_path / "o.parquet")
    with pytest.raises(DataError, match="is a directory"):
        predict_file(package, tmp_path, tmp_path / "o.parquet")
    (tmp_path / "in.json").write_text("{}")
    with pytest.raises(DataError, match=r"\.csv, \.tsv or \.parquet"):
        predict_file(package, tmp_path / "in.json", tmp_path / "o.parquet")
    load_penguins().head(3).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(DataError, match=r"\.parquet or \.csv"):
        predict_file(package, tmp_path / "in.csv", tmp_path / "o.xlsx")
    load_penguins().head(3).drop(columns=["island"]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(PredictionError, match="island"):
        predict_file(package, tmp_path / "short.csv", tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_quickstart_project_files(tmp_path: Path) -> None:
    path = create_quickstart_project(tmp_path)
    assert path.read_text() == QUICKSTART_SPEC
    assert len(pd.read_csv(tmp_path / "data" / "penguins.csv")) == 344
    assert load_spec(path).model_name == "penguins"
    assert create_quickstart_project(tmp_path) == path  # the same file again is fine
    path.write_text("name: mine\n")
    with pytest.raises(SpecError, match="already exists"):
        create_quickstart_project(tmp_path)
    create_quickstart_project(tmp_path, overwrite=True)
    assert path.read_text() == QUICKSTART_SPEC


def _penguins(n: int) -> pd.DataFrame:
    """``n`` penguins (the 344 repeated), with missing values, as a file would hold them."""
    data = load_penguins().drop(columns=["species"])
    return pd.concat([data] * (n // len(data) + 1), ignore_index=True).head(n)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("out_suffix", [".parquet", ".csv"])
def test_chunks_give_the_whole_file_answer(
    tmp_path: Path, package: ModelPackage, suffix: str, out_suffix: str
) -> None:
    data = _penguins(100)
    data.insert(0, "id", np.arange(100))
    data.loc[60, "id"] = None  # an integer column that has a missing value in a later chunk
    data.loc[:49, "sex"] = None  # a text column with nothing in the first chunks
    source = tmp_path / f"in{suffix}"
    data.to_csv(source, index=False) if suffix == ".csv" else data.to_parquet(source)
    whole, chunked = tmp_path / f"whole{out_suffix}", tmp_path / f"chunked{out_suffix}"
    seen: list[tuple[int, int | None]] = []

    assert predict_file(package, source, whole) == 100
    n = predict_file(package, source, chunked, chunk_rows=7, on_progress=lambda *a: seen.append(a))

    assert n == 100
    read = pd.read_csv if out_suffix == ".csv" else pd.read_parquet
    pd.testing.assert_frame_equal(read(chunked), read(whole))
    assert [done for done, _ in seen] == [*range(7, 100, 7), 100]
    assert {total for _, total in seen} == ({100} if suffix == ".parquet" else {None})
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_bad_value_midway_leaves_no_output(tmp_path: Path, package: ModelPackage) -> None:
    data = _penguins(50).astype({"bill_length_mm": object})
    data.loc[36, "bill_length_mm"] = "long"  # file row 37, in the sixth chunk of 7
    data.to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "out.parquet").write_text("the previous output")

    with pytest.raises(PredictionError, match=r"'bill_length_mm'.*row 37: 'long'"):
        predict_file(package, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=7)

    assert (tmp_path / "out.parquet").read_text() == "the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.parquet"]


def test_interrupted_midway_leaves_no_output(tmp_path: Path, package: ModelPackage) -> None:
    _penguins(30).to_parquet(tmp_path / "in.parquet")

    def interrupt(done: int, total: int | None) -> None:
        if done >= 14:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_file(
            package,
            tmp_path / "in.parquet",
            tmp_path / "o.csv",
            chunk_rows=7,
            on_progress=interrupt,
        )
    assert [p.name for p in tmp_path.iterdir()] == ["in.parquet"]


def test_later_chunks_widen_the_first_chunks_types(tmp_path: Path, package: ModelPackage) -> None:
    data = _penguins(20)
    data["note"] = [str(i) for i in range(19)] + ["not a number"]  # CSV: int, then text
    data["size"] = [1] * 10 + [1.5] * 10  # int, then fractions
    data.to_csv(tmp_path / "in.csv", index=False)

    predict_file(package, tmp_path / "in.csv", tmp_path / "whole.parquet")
    predict_file(package, tmp_path / "in.csv", tmp_path / "chunked.parquet", chunk_rows=7)

    chunked = pd.read_parquet(tmp_path / "chunked.parquet")
    pd.testing.assert_frame_equal(chunked, pd.read_parquet(tmp_path / "whole.parquet"))
    assert chunked["note"].iloc[[0, -1]].tolist() == ["0", "not a number"]
    assert not list(tmp_path.glob(".*.tmp*"))


def test_an_empty_input_gives_an_empty_output(tmp_path: Path, package: ModelPackage) -> None:
    _penguins(3).head(0).to_csv(tmp_path / "in.csv", index=False)
    _penguins(3).head(0).to_parquet(tmp_path / "in.parquet")

    assert predict_file(package, tmp_path / "in.csv", tmp_path / "o.parquet") == 0
    assert predict_file(package, tmp_path / "in.parquet", tmp_path / "o.csv") == 0

    for out in (pd.read_parquet(tmp_path / "o.parquet"), pd.read_csv(tmp_path / "o.csv")):
        assert len(out) == 0 and list(out.columns[-2:]) == ["proba_Chinstrap", "proba_Gentoo"]
    (tmp_path / "none.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        predict_file(package, tmp_path / "none.csv", tmp_path / "o2.parquet")
    with pytest.raises(DataError, match="at least 1"):
        predict_file(package, tmp_path / "in.csv", tmp_path / "o2.parquet", chunk_rows=0)


def test_cli_predict_in_chunks(
    tmp_path: Path,
    package: ModelPackage,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(tmp_path, "penguins", package)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.chdir(tmp_path)
    _penguins(40).to_parquet("in.parquet")

    code, out = cli(
        capsys, "predict", "models:/penguins/1", "in.parquet", "-o", "p.csv", "--chunk-rows", "9"
    )

    assert code == 0 and "Wrote 40 predictions to p.csv" in out
    assert len(pd.read_csv("p.csv")) == 40
    code, out = cli(capsys, "predict", "models:/penguins/1", "in.parquet", "--chunk-rows", "0")
    assert code != 0 and "--chunk-rows" in out
    code, out = cli(capsys, "predict", "models:/penguins/1", "in.parquet", "--address", "x:1")
    assert code != 0 and "--engine ray" in out
