"""Batch prediction files and the quickstart project, in process."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from palmerpenguins import load_penguins

from shipyard.data import build_signature, coerce_frame, to_text
from shipyard.errors import DataError, PredictionError, SpecError
from shipyard.pipeline import QUICKSTART_SPEC, create_quickstart_project, predict_file
from shipyard.registry import ModelPackage
from shipyard.spec import load_spec, parse_spec
from shipyard.train import default_catalogue, make_pipeline, refit


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    frame = load_penguins().dropna(subset=["species"]).drop(columns=["year"]).reset_index(drop=True)
    spec = parse_spec("name: p\ndata: {source: {type: csv, path: x}, target: species}\n")
    signature = build_signature(frame, spec, "multiclass")
    estimator = default_catalogue().create("linear", "multiclass", seed=0, params={})
    y = pd.Series(to_text(frame["species"]), dtype=object)
    model = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), y)
    return ModelPackage(model, signature, "multiclass", {})


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
