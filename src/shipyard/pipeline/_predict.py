"""Batch prediction: a CSV or Parquet file in, predictions out (written atomically)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pandas as pd

from shipyard import data as sd
from shipyard.errors import DataError
from shipyard.model import RuntimeChoice
from shipyard.registry import ModelPackage
from shipyard.spec import CsvSource, ParquetSource

__all__ = ["predict_file", "read_table", "write_table"]

logger = logging.getLogger(__name__)

_PARQUET = (".parquet", ".pq")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, chosen by its extension.

    Raises:
        DataError: unknown extension, missing file or unreadable content.
    """
    p = Path(path)
    if not p.is_file():
        what = "is a directory" if p.is_dir() else "does not exist"
        msg = f"{p} {what}; give a .csv or .parquet file of records"
        raise DataError(msg)
    if p.suffix.lower() in _PARQUET:
        return sd.load_source(ParquetSource(type="parquet", path=str(p)), Path.cwd())
    if p.suffix.lower() in (".csv", ".txt", ".tsv"):
        delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
        return sd.load_source(CsvSource(type="csv", path=str(p), delimiter=delimiter), Path.cwd())
    msg = f"{p}: cannot tell the format from the extension; expected .csv, .tsv or .parquet"
    raise DataError(msg)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write CSV or Parquet to a temporary name in the same folder, then rename it."""
    p = Path(path)
    if p.suffix.lower() not in (*_PARQUET, ".csv"):
        msg = f"{p}: cannot tell the output format; expected a .parquet or .csv name"
        raise DataError(msg)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        if p.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        Path(tmp).replace(p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def predict_file(
    package: ModelPackage,
    input_path: str | Path,
    output_path: str | Path,
    *,
    runtime: RuntimeChoice = "auto",
) -> int:
    """Predict every row of ``input_path`` and write the input plus predictions.

    The output keeps the input's columns (personal-data columns the model's training declared
    are dropped or hashed, as its ``features.pii`` says) and adds ``prediction`` and, for
    classifiers, one ``proba_<class>`` column per class. The model runs as the server runs it
    (``auto``: the package's ONNX graph when it has one), so a file and the server give the
    same answers.

    Args:
        package: the model package.
        input_path: a CSV, TSV or Parquet file of records.
        output_path: where to write (``.parquet`` or ``.csv``), atomically.
        runtime: ``auto``, ``onnx`` or ``sklearn``.

    Returns:
        The number of rows predicted.

    Raises:
        DataError: the input cannot be read or the output written.
        PredictionError: the rows do not match the model's Signature.
    """
    pii = package.pii_policy()  # before reading: a wrong key fails fast
    frame = read_table(input_path)
    predictions = package.runtime(runtime).predict_frame(frame).to_frame()
    clash = [c for c in predictions.columns if c in frame.columns]
    out = frame.drop(columns=clash).reset_index(drop=True)
    if pii is not None:  # personal data leaves dropped or hashed, as the server logs it
        out = pii.protect_frame(out, where=f"model {package.metadata.get('name')!r}")
    out = pd.concat([out, predictions], axis=1)
    write_table(out, output_path)
    logger.info("wrote %d predictions to %s", len(out), output_path)
    return len(out)
