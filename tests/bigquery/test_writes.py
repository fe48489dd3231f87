"""BareCount's one writer on BigQuery (through `warehouse.bigquery.BigQueryConnection`): a partition replaced in
one multi-statement transaction with its lineage stamped in SQL; a refused write leaves the previous rows; personal
data masked in SQL as on DuckDB."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from barecount.errors import RefusedError
from barecount.sql.bigquery import to_bigquery
from barecount.sql.pii import PII_KEY_VARIABLE, mask_sql
from barecount.sql.relation import SqlRelation
from barecount.warehouse import writes
from barecount.warehouse.bigquery import BigQueryConnection

PERIODS = {"FY1995-P01": date(1995, 1, 28), "FY1995-P02": date(1995, 2, 25)}


def _amounts(first: str, second: str) -> SqlRelation:
    sql = (
        f"SELECT 'FY1995-P01' AS fiscal_period, CAST({first} AS DECIMAL(15,2)) AS amount "
        f"UNION ALL SELECT 'FY1995-P02', CAST({second} AS DECIMAL(15,2))"
    )
    return SqlRelation(sql=sql, pipeline_id="erp", credential_id="barecount")


def _write(
    conn: BigQueryConnection, relation: SqlRelation, run_id: str, periods: dict[str, date]
) -> writes.WriteResult:
    return writes.replace_partitions(
        conn, "gdp", "amounts", relation, org_slug="acme", run_id=run_id, run_dates=periods
    )


def test_a_partition_is_replaced_with_its_lineage_and_a_changed_one_is_a_restatement(conn: BigQueryConnection) -> None:
    first = _write(conn, _amounts("1.255", "2.5"), "run-1", PERIODS)
    assert first.rows_by_partition == {"FY1995-P01": 1, "FY1995-P02": 1}
    assert first.replaced == {}
    again = _write(conn, _amounts("1.255", "2.5"), "run-2", PERIODS)
    assert again.restated() == {}, "the same rows again are not a restatement"
    changed = _write(conn, _amounts("1.255", "3.5"), "run-3", PERIODS)
    assert changed.restated() == {"FY1995-P02": (1, 1)}
    rows = conn.execute(
        "SELECT fiscal_period, amount, x_org_slug, x_pipeline_run_date, x_run_id FROM gdp.amounts ORDER BY ALL"
    ).fetchall()
    assert rows == [
        ("FY1995-P01", Decimal("1.26"), "acme", date(1995, 1, 28), "run-3"),  # rounded to the cast's scale
        ("FY1995-P02", Decimal("3.50"), "acme", date(1995, 2, 25), "run-3"),
    ]
    assert conn.costs.queries > 0


def test_a_refused_write_leaves_every_partition_as_it_was(conn: BigQueryConnection) -> None:
    _write(conn, _amounts("1", "2"), "run-1", PERIODS)
    with pytest.raises(RefusedError, match="outside the ones being written"):
        _write(conn, _amounts("7", "8"), "run-2", {"FY1995-P01": PERIODS["FY1995-P01"]})
    rows = conn.execute("SELECT fiscal_period, amount, x_run_id FROM gdp.amounts ORDER BY ALL").fetchall()
    assert rows == [("FY1995-P01", Decimal("1.00"), "run-1"), ("FY1995-P02", Decimal("2.00"), "run-1")]


def test_masked_personal_data_hashes_to_the_same_text_as_on_duckdb_with_the_key_bound_not_written(
    conn: BigQueryConnection,
) -> None:
    masked = mask_sql("SELECT 'Customer#000000001' AS name, NULL AS phone", {"name": "hash", "phone": "hash"})
    expected = duckdb.connect()
    for c in (conn, expected):
        c.execute(f"SET VARIABLE {PII_KEY_VARIABLE} = ?", ["the-key"])
    assert conn.execute(masked).fetchall() == expected.execute(masked).fetchall()
    assert "the-key" not in to_bigquery(masked, conn.project, conn.dataset_prefix).sql
