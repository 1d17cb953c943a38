"""Read a project's data source (CSV, Parquet, SQL) into a DataFrame, with precise errors."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.errors import DataError
from shipyard.spec._models import CsvSource, ParquetSource, SqlSource

__all__ = ["load_source", "redact_url"]

logger = logging.getLogger(__name__)

_PASSWORD = re.compile(r"(?P<head>://[^/:@]*:)(?P<password>[^@/]*)(?P<tail>@)")


def load_source(source: CsvSource | ParquetSource | SqlSource, base_dir: Path) -> pd.DataFrame:
    """Load a data source.

    Args:
        source: the ``data.source`` of the project spec.
        base_dir: the directory relative file paths resolve against (the project's folder).

    Returns:
        The data, with at least one row.

    Raises:
        DataError: naming the file or URL (password redacted) and the reason: a missing file,
            a parse error (with the line when the parser gives one), a CSV header that names
            a column twice (with both positions), an empty file or result, an unknown table
            or a failed query.
    """
    if isinstance(source, SqlSource):
        df = _read_sql(source)
        where = redact_url(source.url)
    else:
        path = Path(source.path)
        path = path if path.is_absolute() else base_dir / path
        df = _read_csv(source, path) if isinstance(source, CsvSource) else _read_parquet(path)
        where = str(path)
    if df.empty:
        msg = f"the data source {where} holds no rows (columns: {list(df.columns)}); add data"
        raise DataError(msg)
    logger.info("loaded %d rows x %d columns from %s", len(df), df.shape[1], where)
    return df


def check_file(path: Path, kind: str) -> None:
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        msg = f"the {kind} file {path} {what}; check data.source.path in the project file"
        raise DataError(msg)


def _read_csv(source: CsvSource, path: Path) -> pd.DataFrame:
    check_file(path, "CSV")
    with csv_errors(source, path):
        frame = pd.read_csv(path, sep=source.delimiter, encoding=source.encoding)
        check_header(source, path)
    return frame


@contextmanager
def csv_errors(source: CsvSource, path: Path) -> Iterator[None]:
    """Turn pandas' CSV errors inside the block into a :class:`DataError` naming the file (and
    the line, when the parser gives one) and what to do."""
    try:
        yield
    except pd.errors.EmptyDataError as exc:
        msg = f"the CSV file {path} is empty (no header row); add a header and data rows"
        raise DataError(msg) from exc
    except pd.errors.ParserError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{path}:{line.group(1)}" if line else str(path)
        msg = (
            f"cannot parse the CSV file {where}: {str(exc).strip()}; check the delimiter "
            f"({source.delimiter!r}) and quoting on that line"
        )
        raise DataError(msg) from exc
    except UnicodeDecodeError as exc:
        msg = (
            f"cannot decode the CSV file {path} as {source.encoding!r} (byte {exc.start}); "
            "set data.source.encoding (e.g. 'latin-1')"
        )
        raise DataError(msg) from exc


def check_header(source: CsvSource, path: Path) -> None:
    """Refuse a header that names a column twice.

    pandas renames repeats (``alcohol``, ``alcohol.1``) before anything else sees them, so the
    header is read again as a data row, by the same parser with the same delimiter, encoding
    and quoting, to see the names as written.
    """
    header = pd.read_csv(
        path,
        sep=source.delimiter,
        encoding=source.encoding,
        header=None,
        nrows=1,
        dtype=str,
        keep_default_na=False,
    )
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(header.iloc[0].tolist(), start=1):
        if name:  # pandas names blank headers by position ("Unnamed: 3"): never a repeat
            positions.setdefault(name, []).append(position)
    repeats = {name: where for name, where in positions.items() if len(where) > 1}
    if repeats:
        shown = ", ".join(f"{name!r} at columns {_and(where)}" for name, where in repeats.items())
        extra = sum(len(where) - 1 for where in repeats.values())
        advice = "rename one" if extra == 1 else "rename them so that every column name is unique"
        msg = f"the CSV file {path} has duplicate column names: {shown}; {advice}"
        raise DataError(msg)


def _and(numbers: list[int]) -> str:
    """``[2, 14]`` -> ``"2 and 14"``; ``[1, 3, 5]`` -> ``"1, 3 and 5"``."""
    head = ", ".join(map(str, numbers[:-1]))
    return f"{head} and {numbers[-1]}"


def _read_parquet(path: Path) -> pd.DataFrame:
    check_file(path, "Parquet")
    with parquet_errors(path):
        return pd.read_parquet(path)


@contextmanager
def parquet_errors(path: Path) -> Iterator[None]:
    """Turn pyarrow's read errors inside the block into a :class:`DataError` naming the file."""
    try:
        yield
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        msg = f"cannot read the Parquet file {path}: {exc}; is it a Parquet file?"
        raise DataError(msg) from exc


def _read_sql(source: SqlSource) -> pd.DataFrame:
    # Imported on use: only SQL sources need the toolkit, and the server imports this layer.
    import sqlalchemy as sa

    where = redact_url(source.url)
    try:
        engine = sa.create_engine(source.url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        msg = f"cannot connect to {where}: {exc}; check data.source.url (and its driver)"
        raise DataError(msg) from exc
    try:
        return _query(sa, engine, source)
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError, ValueError) as exc:
        what = f"table {source.table!r}" if source.table else "the query"
        reason = str(exc).splitlines()[0]
        msg = f"cannot read {what} from {where}: {reason}; check data.source in the project file"
        raise DataError(msg) from exc
    finally:
        engine.dispose()


def _query(sa: Any, engine: Any, source: SqlSource) -> pd.DataFrame:
    with engine.connect() as conn:
        if source.table is None:
            return pd.read_sql_query(sa.text(source.query), conn)
        schema, table = _split_table(source.table)
        inspector = sa.inspect(conn)
        if schema is not None and schema not in (schemas := inspector.get_schema_names()):
            msg = f"no such schema {schema!r}; the database has {sorted(schemas)}"
            raise ValueError(msg)
        if not inspector.has_table(table, schema=schema):
            tables = inspector.get_table_names(schema=schema)
            where = f" in schema {schema!r}" if schema is not None else ""
            msg = f"no such table {table!r}{where}; the {_schema_or_db(schema)} has {tables}"
            raise ValueError(msg)
        return pd.read_sql_table(table, conn, schema=schema)


def _split_table(name: str) -> tuple[str | None, str]:
    """``"sales.orders"`` -> ``("sales", "orders")``; ``"orders"`` -> ``(None, "orders")``."""
    schema, dot, table = name.rpartition(".")
    return (schema, table) if dot and schema else (None, name)


def _schema_or_db(schema: str | None) -> str:
    return "database" if schema is None else "schema"


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)
