"""Model SQL names its inputs; binding swaps them for partition-filtered relations."""

from __future__ import annotations

import duckdb
import pytest

from barecount.sql.binding import SqlInputError, bind_inputs, referenced_tables
from barecount.sql.relation import TableRef

SQL = """
WITH big AS (SELECT * FROM raw.orders WHERE o_total > 10)
SELECT l.k, big.o_total, n.name FROM raw.lineitem AS l
JOIN big ON big.k = l.k
LEFT JOIN raw.nation n ON n.id = l.nation_id
"""


def test_referenced_tables_are_the_qualified_ones() -> None:
    assert referenced_tables(SQL) == {"raw.orders", "raw.lineitem", "raw.nation"}


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM lineitem", "table 'lineitem' has no schema"),
        ("SELECT * FROM raw.x WHERE", "SQL does not parse"),
        ("INSERT INTO raw.x VALUES (1)", "not a SELECT but INSERT"),
        ("DELETE FROM raw.x", "not a SELECT but DELETE"),
        ("COPY raw.x TO 'x.csv'", "not a SELECT but COPY"),
        ("ATTACH 'other.duckdb' AS other", "not a SELECT but ATTACH"),
        ("SELECT 1 AS a; DROP TABLE raw.x", "holds 2 statements"),
        ("SELECT getvariable('barecount_pii_key') AS k FROM raw.x", r"the function getvariable\(\)"),
        ("SELECT * FROM read_csv('data/sources/crm/customers.csv')", r"the table function read_csv\(\)"),
        ("SELECT * FROM query_table('raw.x')", r"the table function query_table\(\)"),
        ("SELECT * FROM other.raw.x", "the database name in other.raw.x"),
    ],
)
def test_bad_sql_is_explained(sql: str, message: str) -> None:
    with pytest.raises(SqlInputError, match=message):
        referenced_tables(sql)


def test_bound_sql_reads_only_the_requested_periods() -> None:
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw")
    conn.execute(
        "CREATE TABLE raw.lineitem AS SELECT i AS k, i % 3 AS nation_id, 'FY1995-P0' || (1 + i % 2) AS fiscal_period,"
        " 'acme' AS x_org_slug FROM range(10) t(i)"
    )
    conn.execute("CREATE TABLE raw.orders AS SELECT k, k * 5 AS o_total, fiscal_period, x_org_slug FROM raw.lineitem")
    conn.execute("CREATE TABLE raw.nation AS SELECT i AS id, 'n' || i AS name, 'acme' AS x_org_slug FROM range(3) t(i)")
    refs = {
        "raw.lineitem": TableRef("raw", "lineitem", "acme", ("FY1995-P01",)).select_sql(),
        "raw.orders": TableRef("raw", "orders", "acme", ("FY1995-P01",)).select_sql(),
        "raw.nation": TableRef("raw", "nation", "acme").select_sql(),
    }
    rows = conn.execute(f"SELECT k FROM ({bind_inputs(SQL, refs)}) ORDER BY k").fetchall()
    assert rows == [(4,), (6,), (8,)]  # even keys are P01; o_total = 5k > 10 drops k = 0, 2
