"""load_source: CSV, Parquet and SQL (SQLite) sources and their errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from shipyard.data import load_source
from shipyard.errors import DataError
from shipyard.spec._models import CsvSource, ParquetSource, SqlSource

FRAME = pd.DataFrame({"x": [1.5, 2.5, None], "label": ["a", "b", "a"], "n": [1, 2, 3]})


def test_csv_relative_to_base_dir(tmp_path: Path) -> None:
    FRAME.to_csv(tmp_path / "data.csv", index=False)
    df = load_source(CsvSource(type="csv", path="data.csv"), tmp_path)
    pd.testing.assert_frame_equal(df, FRAME, check_dtype=False)


def test_csv_delimiter_and_encoding(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes("a;b\ncafé;2\n".encode("latin-1"))
    src = CsvSource(type="csv", path=str(tmp_path / "d.csv"), delimiter=";", encoding="latin-1")
    assert load_source(src, Path("/elsewhere")).iloc[0].tolist() == ["café", 2]
    with pytest.raises(DataError, match=r"cannot decode.*'utf-8'.*encoding"):
        load_source(CsvSource(type="csv", path="d.csv", delimiter=";"), tmp_path)


def test_csv_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope.csv does not exist; check data.source.path"):
        load_source(CsvSource(type="csv", path="nope.csv"), tmp_path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty\.csv is empty"):
        load_source(CsvSource(type="csv", path="empty.csv"), tmp_path)
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="holds no rows"):
        load_source(CsvSource(type="csv", path="header.csv"), tmp_path)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=r"bad.csv:3.*delimiter"):
        load_source(CsvSource(type="csv", path="bad.csv"), tmp_path)


def test_parquet(tmp_path: Path) -> None:
    FRAME.to_parquet(tmp_path / "d.parquet")
    df = load_source(ParquetSource(type="parquet", path="d.parquet"), tmp_path)
    pd.testing.assert_frame_equal(df, FRAME)
    (tmp_path / "not.parquet").write_text("hello")
    with pytest.raises(DataError, match=r"not\.parquet.*is it a Parquet file"):
        load_source(ParquetSource(type="parquet", path="not.parquet"), tmp_path)
    with pytest.raises(DataError, match="is a directory"):
        load_source(ParquetSource(type="parquet", path="."), tmp_path)


def _sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    FRAME.to_sql("items", engine, index=False)
    engine.dispose()
    return url


def test_sql_table_and_query(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    by_table = load_source(SqlSource(type="sql", url=url, table="items"), tmp_path)
    pd.testing.assert_frame_equal(by_table, FRAME, check_dtype=False)
    query = "SELECT x, n FROM items WHERE label = 'a'"
    by_query = load_source(SqlSource(type="sql", url=url, query=query), tmp_path)
    assert by_query["n"].tolist() == [1, 3]


def test_sql_errors(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    with pytest.raises(DataError, match=r"no such table 'itms'; the database has \['items'\]"):
        load_source(SqlSource(type="sql", url=url, table="itms"), tmp_path)
    with pytest.raises(DataError, match="cannot read the query"):
        load_source(SqlSource(type="sql", url=url, query="SELECT nope FROM items"), tmp_path)
    with pytest.raises(DataError, match="holds no rows"):
        load_source(SqlSource(type="sql", url=url, query="SELECT * FROM items WHERE 0"), tmp_path)
    with pytest.raises(DataError, match="cannot connect to notaurl"):
        load_source(SqlSource(type="sql", url="notaurl", table="t"), tmp_path)


def test_password_is_redacted() -> None:
    url = "postgresql+psycopg://bob:s3cret@127.0.0.1:1/db"
    with pytest.raises(DataError) as info:
        load_source(SqlSource(type="sql", url=url, table="t"), Path())
    assert "s3cret" not in str(info.value)
    assert "bob:***@127.0.0.1" in str(info.value)


def test_csv_duplicate_column_names_name_the_file_and_positions(tmp_path: Path) -> None:
    (tmp_path / "wine.csv").write_text(
        "quality,alcohol,ash,alcohol\n5,9.4,2.1,9.4\n6,9.8,2.3,9.8\n"
    )
    with pytest.raises(
        DataError,
        match=r"the CSV file \S*wine\.csv has duplicate column names: 'alcohol' at columns 2 "
        r"and 4; rename one",
    ):
        load_source(CsvSource(type="csv", path="wine.csv"), tmp_path)
    # the target's name twice, with another delimiter and encoding: still caught, all positions
    (tmp_path / "t.csv").write_bytes("y;x;y;z;y;x\n1;2;3;4;5;6\n".encode("latin-1"))
    src = CsvSource(type="csv", path="t.csv", delimiter=";", encoding="latin-1")
    with pytest.raises(DataError, match=r"'y' at columns 1, 3 and 5, 'x' at columns 2 and 6"):
        load_source(src, tmp_path)


def test_csv_names_that_only_look_mangled_are_fine(tmp_path: Path) -> None:
    (tmp_path / "ok.csv").write_text('alcohol,alcohol.1,"a,b",,\n1,2,3,4,5\n')
    df = load_source(CsvSource(type="csv", path="ok.csv"), tmp_path)
    assert list(df.columns)[:3] == ["alcohol", "alcohol.1", "a,b"]


def test_sql_schema_qualified_table_on_sqlite(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    by_table = load_source(SqlSource(type="sql", url=url, table="main.items"), tmp_path)
    pd.testing.assert_frame_equal(by_table, FRAME, check_dtype=False)
    with pytest.raises(DataError, match=r"no such schema 'mian'; the database has \['main'\]"):
        load_source(SqlSource(type="sql", url=url, table="mian.items"), tmp_path)
