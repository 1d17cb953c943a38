"""load_source against the real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shipyard.data import load_source
from shipyard.errors import DataError
from shipyard.spec._models import SqlSource

pytestmark = pytest.mark.postgres

FRAME = pd.DataFrame({"x": [1.5, None, 3.0], "label": ["a", "b", "a"], "n": [1, 2, 3]})


def _write(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    FRAME.to_sql("penguins", engine, index=False)
    engine.dispose()


def test_table_and_query(pg_url: str) -> None:
    _write(pg_url)
    by_table = load_source(SqlSource(type="sql", url=pg_url, table="penguins"), Path())
    pd.testing.assert_frame_equal(by_table, FRAME, check_dtype=False)
    query = "SELECT label, n FROM penguins WHERE n >= 2 ORDER BY n"
    by_query = load_source(SqlSource(type="sql", url=pg_url, query=query), Path())
    assert by_query.to_dict("list") == {"label": ["b", "a"], "n": [2, 3]}


def test_errors_name_the_table(pg_url: str) -> None:
    _write(pg_url)
    with pytest.raises(DataError, match=r"no such table 'pengiuns'.*\['penguins'\]"):
        load_source(SqlSource(type="sql", url=pg_url, table="pengiuns"), Path())
    with pytest.raises(DataError, match="cannot read the query"):
        load_source(SqlSource(type="sql", url=pg_url, query="SELECT * FROM nowhere"), Path())


def test_a_schema_qualified_table(pg_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA sales"))
    FRAME.to_sql("orders", engine, schema="sales", index=False)
    engine.dispose()
    by_table = load_source(SqlSource(type="sql", url=pg_url, table="sales.orders"), Path())
    pd.testing.assert_frame_equal(by_table, FRAME, check_dtype=False)
    with pytest.raises(DataError, match=r"no such table 'ordrs' in schema 'sales'.*\['orders'\]"):
        load_source(SqlSource(type="sql", url=pg_url, table="sales.ordrs"), Path())
    with pytest.raises(DataError, match=r"no such schema 'sails'.*'sales'"):
        load_source(SqlSource(type="sql", url=pg_url, table="sails.orders"), Path())
