"""Batch prediction: a CSV or Parquet file in, predictions out, streamed in chunks of rows
(bounded memory) and written atomically."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from shipyard import data as sd
from shipyard.data import PiiPolicy
from shipyard.errors import DataError, PredictionError
from shipyard.model import Runtime, RuntimeChoice
from shipyard.pipeline._output import TableWriter
from shipyard.registry import ModelPackage
from shipyard.spec import CsvSource, ParquetSource

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "ProgressCallback",
    "open_table",
    "predict_file",
    "read_table",
    "write_table",
]

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 100_000
"""Rows per chunk of :func:`predict_file`: a few hundred MB at most for a dozen columns, and
near the throughput of one call on the whole file."""

ProgressCallback = Callable[[int, "int | None"], None]
"""Called after each chunk with the rows done so far and the total (``None`` when the input
does not tell it without being read: CSV)."""

_PARQUET = (".parquet", ".pq")
_ROW = re.compile(r"\brow (\d+):")  # how shipyard.data's coercion errors cite a row


def _source(path: str | Path) -> tuple[CsvSource | ParquetSource, Path]:
    p = Path(path)
    if not p.is_file():
        what = "is a directory" if p.is_dir() else "does not exist"
        msg = f"{p} {what}; give a .csv or .parquet file of records"
        raise DataError(msg)
    if p.suffix.lower() in _PARQUET:
        return ParquetSource(type="parquet", path=str(p)), p
    if p.suffix.lower() in (".csv", ".txt", ".tsv"):
        delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
        return CsvSource(type="csv", path=str(p), delimiter=delimiter), p
    msg = f"{p}: cannot tell the format from the extension; expected .csv, .tsv or .parquet"
    raise DataError(msg)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, chosen by its extension.

    Raises:
        DataError: unknown extension, missing file or unreadable content.
    """
    source, _ = _source(path)
    return sd.load_source(source, Path.cwd())


def open_table(path: str | Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> sd.SourceChunks:
    """Open a CSV or Parquet file (chosen by its extension) to read ``chunk_rows`` at a time,
    each chunk typed as :func:`read_table` would type it.

    Raises:
        DataError: unknown extension, missing file, unreadable header or metadata.
    """
    source, p = _source(path)
    return sd.open_chunks(source, p, chunk_rows=chunk_rows)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write CSV or Parquet to a temporary name in the same folder, then rename it.

    Raises:
        DataError: the extension is neither ``.csv`` nor ``.parquet``.
    """
    with TableWriter(path) as writer:
        writer.write(frame)


def predict_file(
    package: ModelPackage,
    input_path: str | Path,
    output_path: str | Path,
    *,
    runtime: RuntimeChoice = "auto",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: ProgressCallback | None = None,
) -> int:
    """Predict every row of ``input_path`` and write the input plus predictions.

    The output keeps the input's columns (personal-data columns the model's training declared
    are dropped or hashed, as its ``features.pii`` says) and adds ``prediction`` and, for
    classifiers, one ``proba_<class>`` column per class. The model runs as the server runs it
    (``auto``: the package's ONNX graph when it has one), so a file and the server give the
    same answers.

    The file is read, predicted and written ``chunk_rows`` rows at a time, so memory stays
    bounded whatever its size; the output goes to a temporary file beside ``output_path``,
    renamed into place only when every row is written (on an error or Ctrl-C it is removed
    and ``output_path`` is untouched). An input with a header but no rows gives an output with
    the columns and no rows.

    Args:
        package: the model package.
        input_path: a CSV, TSV or Parquet file of records.
        output_path: where to write (``.parquet`` or ``.csv``), atomically.
        runtime: ``auto``, ``onnx`` or ``sklearn``.
        chunk_rows: rows per chunk: memory grows with it; below about 50,000 the per-chunk
            costs start to show in the throughput.
        on_progress: called after each chunk with the rows done and the total (``None`` for
            CSV, whose row count is unknown until it is read).

    Returns:
        The number of rows predicted.

    Raises:
        DataError: the input cannot be read or the output written, or (Parquet output) a
            later chunk's column has values no type of the earlier rows can hold.
        PredictionError: the rows do not match the model's Signature (naming the column and
            the row numbers in the file, counted from 1 without the header).

    Example:
        >>> predict_file(package, "big.parquet", "scored.parquet", chunk_rows=50_000)
        10000000
    """
    writer = TableWriter(output_path)  # a wrong extension fails before anything is read
    pii = package.pii_policy()  # before reading: a wrong key fails fast
    chunks = open_table(input_path, chunk_rows=chunk_rows)
    model = package.runtime(runtime)
    with writer:
        for chunk in chunks:
            predictions = _predict_chunk(package, model, chunk, chunks.path)
            writer.write(scored_rows(package, chunk, predictions, pii))
            if on_progress is not None:
                on_progress(writer.n_rows, chunks.total_rows)
    logger.info("wrote %d predictions to %s", writer.n_rows, output_path)
    return writer.n_rows


def scored_rows(
    package: ModelPackage, rows: pd.DataFrame, predictions: pd.DataFrame, pii: PiiPolicy | None
) -> pd.DataFrame:
    """What a batch prediction writes for ``rows``: their columns (personal data dropped or
    hashed as the model's ``features.pii`` says, as the server logs it), then the predictions
    (which replace input columns of the same name)."""
    out = rows.drop(columns=[c for c in predictions.columns if c in rows.columns])
    if pii is not None:
        out = pii.protect_frame(out, where=f"model {package.metadata.get('name')!r}")
    return pd.concat([out.reset_index(drop=True), predictions], axis=1)


def _predict_chunk(
    package: ModelPackage, model: Runtime, chunk: pd.DataFrame, path: Path
) -> pd.DataFrame:
    """The predictions frame of one chunk; its errors cite rows by their number in the file."""
    if chunk.empty:
        sd.coerce_frame(chunk, package.signature)  # a missing column is still an error
        return _no_predictions(package)
    try:
        return model.predict_frame(chunk).to_frame()
    except PredictionError as exc:
        first = int(chunk.index[0])  # the chunk's rows continue the file's (0-based)
        message = _ROW.sub(lambda m: f"row {int(m.group(1)) + first}:", str(exc))
        msg = f"{path}: {message}"
        raise PredictionError(msg) from exc


def _no_predictions(package: ModelPackage) -> pd.DataFrame:
    """The columns :meth:`Predictions.to_frame` gives, with no rows."""
    if package.classes is None:
        return pd.DataFrame({"prediction": pd.Series(dtype=float)})
    columns = {"prediction": pd.Series(dtype=str)}
    columns.update({f"proba_{c}": pd.Series(dtype=float) for c in package.classes})
    return pd.DataFrame(columns)
