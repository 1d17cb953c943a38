"""Read a CSV or Parquet file in chunks of rows, typed as :func:`load_source` types it.

A chunk is what ``load_source`` would have returned for those rows: Parquet batches convert
as ``pandas.read_parquet`` converts the file, CSV chunks go through the same ``read_csv``
call with the same delimiter, encoding and errors. pandas infers a CSV column's dtype per
chunk (``int64`` in one, ``float64`` in the next when a value is missing), as it already
does per internal block when it reads a large file whole; whoever writes chunks out must
reconcile them (:func:`shipyard.pipeline.predict_file` casts them to its first chunk's types).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shipyard.data._sources import check_file, check_header, csv_errors, parquet_errors
from shipyard.errors import DataError
from shipyard.spec._models import CsvSource, ParquetSource

__all__ = ["SourceChunks", "open_chunks"]

logger = logging.getLogger(__name__)

_READ_BUFFER = 1 << 20  # bytes read from a Parquet file at a time


@dataclass(frozen=True)
class SourceChunks:
    """A file read ``chunk_rows`` rows at a time; iterate it for DataFrames.

    Attributes:
        source: the CSV or Parquet source.
        path: the file.
        chunk_rows: rows per chunk (the last one may be shorter).
        total_rows: the file's row count when it is known without reading the file (Parquet
            metadata), else ``None``.
    """

    source: CsvSource | ParquetSource
    path: Path
    chunk_rows: int
    total_rows: int | None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        """The chunks, in file order; at least one, empty when the file has no rows, so that
        its columns are known. Their indexes continue from chunk to chunk (0-based rows)."""
        chunks = self._csv() if isinstance(self.source, CsvSource) else self._parquet()
        start = 0
        for chunk in chunks:
            if start and len(chunk) == 0:
                continue
            yield chunk.set_axis(pd.RangeIndex(start, start + len(chunk)), axis=0)
            start += len(chunk)

    def _csv(self) -> Iterator[pd.DataFrame]:
        assert isinstance(self.source, CsvSource)
        with csv_errors(self.source, self.path):
            reader = pd.read_csv(
                self.path,
                sep=self.source.delimiter,
                encoding=self.source.encoding,
                chunksize=self.chunk_rows,
            )
            with reader:
                yield from reader  # a header-only file gives one empty chunk

    def _parquet(self) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        # pre_buffer would cache every row group read until the file closes (memory growing
        # with the file); a buffered stream reads a column chunk's pages as they are decoded
        options = {"pre_buffer": False, "buffer_size": _READ_BUFFER}
        with parquet_errors(self.path), pq.ParquetFile(self.path, **options) as file:
            yielded = False
            for batch in file.iter_batches(batch_size=self.chunk_rows):
                yielded = True
                yield batch.to_pandas()
            if not yielded:
                yield file.schema_arrow.empty_table().to_pandas()


def open_chunks(source: CsvSource | ParquetSource, path: Path, *, chunk_rows: int) -> SourceChunks:
    """Open a file to read in chunks; its header (CSV) or metadata (Parquet) is checked now.

    Args:
        source: the CSV (delimiter, encoding) or Parquet source.
        path: the file to read (``source.path`` is not used).
        chunk_rows: rows per chunk, at least 1.

    Returns:
        The chunks, to iterate (each iteration reads the file again).

    Raises:
        DataError: the file is missing or unreadable, its CSV header names a column twice,
            or ``chunk_rows`` is below 1.
    """
    if chunk_rows < 1:
        msg = f"chunk_rows is {chunk_rows}; give at least 1 row per chunk"
        raise DataError(msg)
    if isinstance(source, CsvSource):
        check_file(path, "CSV")
        with csv_errors(source, path):
            check_header(source, path)
        return SourceChunks(source, path, chunk_rows, None)
    import pyarrow.parquet as pq

    check_file(path, "Parquet")
    with parquet_errors(path), pq.ParquetFile(path) as file:
        total = file.metadata.num_rows
    logger.debug("%s: %d rows in %d row groups", path, total, file.metadata.num_row_groups)
    return SourceChunks(source, path, chunk_rows, total)
