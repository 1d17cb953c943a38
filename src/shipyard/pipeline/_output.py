"""An output table written chunk by chunk to a temporary file, renamed into place at the end.

A reader never sees half a file at the output path: the chunks go to a temporary file in the
output's folder (so the final rename stays on one file system and is atomic), which is renamed
only when every chunk is written and the file is closed, and removed on any failure, Ctrl-C
included.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import pandas as pd

from shipyard.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["OUTPUT_SUFFIXES", "TableWriter"]

logger = logging.getLogger(__name__)

OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv")


class TableWriter:
    """Write DataFrames one after the other as one CSV or Parquet file, atomically.

    Use it as a context manager: the file appears at ``path`` when the block ends normally,
    and never otherwise.

    Parquet: the first chunk fixes the schema; later chunks are cast to it (an ``int64``
    column whose later rows have a missing value is written as ``int64`` with nulls, which
    pandas reads back as ``float64``, as it would have read the whole file). CSV: the header is
    written once, each chunk's values as pandas writes them.

    Args:
        path: the output file, ``.parquet`` (or ``.pq``) or ``.csv``.

    Raises:
        DataError: the extension is neither, or the folder cannot be created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._suffix = self.path.suffix.lower()
        if self._suffix not in OUTPUT_SUFFIXES:
            msg = f"{self.path}: cannot tell the output format; expected a .parquet or .csv name"
            raise DataError(msg)
        self.n_rows = 0
        self._tmp: Path | None = None
        self._parquet: Any = None  # pyarrow.parquet.ParquetWriter, made by the first chunk
        self._schema: pa.Schema | None = None
        self._csv: IO[str] | None = None
        self._columns: list[str] = []
        self._unseen: set[str] = set()  # Parquet columns with no value yet: any type fits

    def __enter__(self) -> TableWriter:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
            )
        except OSError as exc:
            msg = f"cannot write {self.path}: {exc.strerror or exc}; check the folder"
            raise DataError(msg) from exc
        os.close(fd)
        self._tmp = Path(tmp)
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame``; every chunk must have the first one's columns.

        Raises:
            DataError: the columns differ from the first chunk's, or (Parquet) a column's
                values do not fit the type the first chunk gave it.
        """
        if self._tmp is None:
            msg = "TableWriter.write outside its `with` block"
            raise RuntimeError(msg)
        if self._suffix == ".csv":
            self._write_csv(frame)
        else:
            self._write_parquet(frame)
        self.n_rows += len(frame)

    def _write_csv(self, frame: pd.DataFrame) -> None:
        assert self._tmp is not None
        if self._csv is None:
            self._csv = self._tmp.open("w", encoding="utf-8", newline="")
            self._columns = list(frame.columns)
            frame.to_csv(self._csv, index=False)
            return
        self._check_columns(list(frame.columns))
        frame.to_csv(self._csv, index=False, header=False)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._schema = table.schema
            self._columns = list(frame.columns)
            self._unseen = set(self._columns)
            self._parquet = pq.ParquetWriter(self._tmp, table.schema)
        else:
            self._check_columns(list(frame.columns))
            table = self._conform(table)
        names = zip(table.column_names, table.columns, strict=True)
        self._unseen -= {name for name, column in names if column.null_count < len(column)}
        self._parquet.write_table(table)

    def _check_columns(self, columns: list[str]) -> None:
        if columns != self._columns:
            msg = (
                f"the rows from {self.n_rows + 1:,} of the output {self.path} have the columns "
                f"{columns}, but the first rows had {self._columns}"
            )
            raise DataError(msg)

    def _conform(self, table: pa.Table) -> pa.Table:
        """Cast ``table`` to the file's schema, first widening the file's types (and rewriting
        what is written) where this chunk needs it: a column with no value so far takes this
        chunk's type; integers meet fractions as ``double``, anything else meets text as text,
        as pandas types a CSV column it reads whole."""
        import pyarrow as pa

        assert self._schema is not None
        if table.schema.equals(self._schema, check_metadata=False):
            return table
        schema = self._schema
        for i, (field, column) in enumerate(zip(schema, table.columns, strict=True)):
            if column.type != field.type and not _casts(column, field.type):
                schema = schema.set(i, field.with_type(self._wider(field, column.type)))
        if not schema.equals(self._schema):
            self._rewrite(schema)
        columns = []
        for field, column in zip(self._schema, table.columns, strict=True):
            try:
                columns.append(column if column.type == field.type else column.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                first, last = self.n_rows + 1, self.n_rows + len(table)
                msg = (
                    f"column {field.name!r} holds {column.type} values in rows {first:,} to "
                    f"{last:,} that do not fit the {field.type} type its first rows gave it in "
                    f"{self.path.name} ({exc}); write a .csv output, or make the column's "
                    "values one type"
                )
                raise DataError(msg) from exc
        return pa.Table.from_arrays(columns, schema=self._schema)

    def _wider(self, field: pa.Field, new: pa.DataType) -> pa.DataType:
        import pyarrow as pa

        old = field.type
        if field.name in self._unseen or pa.types.is_null(old):
            return new
        if _numeric(old) and _numeric(new):
            return pa.float64()
        return pa.large_string() if pa.types.is_large_string(new) else pa.string()

    def _rewrite(self, schema: pa.Schema) -> None:
        """Write the rows so far again with ``schema`` (a chunk at a time: bounded memory)."""
        import pyarrow.parquet as pq

        assert self._tmp is not None and self._schema is not None
        logger.info("%s: widening the output's types to %s; rewriting", self.path, schema)
        self._parquet.close()
        old = self._tmp.with_name(self._tmp.name + ".old")
        self._tmp.replace(old)
        try:
            self._parquet = pq.ParquetWriter(self._tmp, schema)
            with pq.ParquetFile(old, pre_buffer=False) as written:  # bounded memory
                for batch in written.iter_batches(batch_size=65_536):
                    self._parquet.write_batch(batch.cast(schema))
        finally:
            old.unlink(missing_ok=True)
        self._schema = schema

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tmp is not None
        tmp, self._tmp = self._tmp, None
        try:
            self._close()
            if exc is None:
                if self.n_rows == 0 and self._parquet is None and self._csv is None:
                    msg = f"nothing was written to {self.path}: not even its columns"
                    raise DataError(msg)
                tmp.replace(self.path)
                return
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.unlink(missing_ok=True)
        logger.debug("removed the partial output %s after %s", tmp, exc_type)

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()


def _casts(column: pa.ChunkedArray, to: pa.DataType) -> bool:
    """Whether every value of ``column`` converts to ``to`` without loss."""
    import pyarrow as pa

    try:
        column.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _numeric(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))
