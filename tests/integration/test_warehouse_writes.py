"""Partition writes on a real DuckDB file: lineage, idempotence, atomicity."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from barecount.config.profiles import Settings
from barecount.errors import RefusedError
from barecount.sql.relation import LINEAGE_COLUMNS, SqlRelation
from barecount.warehouse.writes import replace_partitions

RUN_DATES = {"FY1995-P01": date(1995, 3, 4), "FY1995-P02": date(1995, 4, 8)}


def _orders(periods: dict[str, int], fail_after: int | None = None) -> SqlRelation:
    """`n` rows per period; with `fail_after`, the SELECT raises an error at that row."""
    selects = []
    for key, n in periods.items():
        value = "i" if fail_after is None else f"CASE WHEN i >= {fail_after} THEN error('boom') ELSE i END"
        selects.append(
            f"SELECT {value} AS o_orderkey, 10.5::DECIMAL(15,2) AS amount, '{key}' AS fiscal_period "
            f"FROM range({n}) t(i)"
        )
    return SqlRelation(sql=" UNION ALL ".join(selects), pipeline_id="erp.orders", credential_id="erp-reader")


def _write(conn: duckdb.DuckDBPyConnection, relation: SqlRelation, run_id: str, keys: list[str]) -> object:
    return replace_partitions(
        conn,
        "raw",
        "orders",
        relation,
        org_slug="acme",
        run_id=run_id,
        run_dates={k: RUN_DATES[k] for k in keys},
    )


def _rows(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT fiscal_period, o_orderkey, amount, x_pipeline_run_date FROM raw.orders ORDER BY ALL"
    ).fetchall()


@pytest.fixture
def conn(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def test_lineage_is_stamped_on_every_row_and_never_null(conn: duckdb.DuckDBPyConnection) -> None:
    result = _write(conn, _orders({"FY1995-P01": 3, "FY1995-P02": 2}), "run-1", list(RUN_DATES))
    assert result.rows_by_partition == {"FY1995-P01": 3, "FY1995-P02": 2}
    nulls = " + ".join(f"count(*) FILTER (WHERE {c} IS NULL)" for c in LINEAGE_COLUMNS)
    assert conn.execute(f"SELECT {nulls} FROM raw.orders").fetchone() == (0,)
    assert conn.execute(
        "SELECT DISTINCT fiscal_period, x_pipeline_run_date, x_org_slug, x_pipeline_id, x_credential_id, x_run_id "
        "FROM raw.orders ORDER BY 1"
    ).fetchall() == [
        ("FY1995-P01", date(1995, 3, 4), "acme", "erp.orders", "erp-reader", "run-1"),
        ("FY1995-P02", date(1995, 4, 8), "acme", "erp.orders", "erp-reader", "run-1"),
    ]
    assert conn.execute("SELECT data_type FROM information_schema.columns WHERE column_name = 'amount'").fetchone() == (
        "DECIMAL(15,2)",
    )


def test_rewriting_a_partition_replaces_it_without_duplicates(conn: duckdb.DuckDBPyConnection) -> None:
    _write(conn, _orders({"FY1995-P01": 3, "FY1995-P02": 2}), "run-1", list(RUN_DATES))
    before = _rows(conn)
    _write(conn, _orders({"FY1995-P01": 3}), "run-2", ["FY1995-P01"])
    assert _rows(conn) == before
    assert conn.execute("SELECT x_run_id, count(*) FROM raw.orders GROUP BY 1 ORDER BY 1").fetchall() == [
        ("run-1", 2),
        ("run-2", 3),
    ]


def test_a_failure_mid_write_leaves_the_previous_rows(conn: duckdb.DuckDBPyConnection) -> None:
    _write(conn, _orders({"FY1995-P01": 3, "FY1995-P02": 2}), "run-1", list(RUN_DATES))
    before = _rows(conn)
    with pytest.raises(duckdb.Error, match="boom"):
        _write(conn, _orders({"FY1995-P01": 5000, "FY1995-P02": 5000}, fail_after=4000), "run-2", list(RUN_DATES))
    assert _rows(conn) == before
    assert {r[0] for r in conn.execute("SELECT DISTINCT x_run_id FROM raw.orders").fetchall()} == {"run-1"}


def test_rows_outside_the_written_periods_are_refused(conn: duckdb.DuckDBPyConnection) -> None:
    _write(conn, _orders({"FY1995-P01": 3}), "run-1", ["FY1995-P01"])
    with pytest.raises(RefusedError, match="outside the ones being written"):
        _write(conn, _orders({"FY1995-P01": 1, "FY1995-P02": 1}), "run-2", ["FY1995-P01"])
    assert conn.execute("SELECT count(*), min(x_run_id) FROM raw.orders").fetchone() == (3, "run-1")


def test_a_changed_shape_is_refused_unless_every_period_is_rebuilt(conn: duckdb.DuckDBPyConnection) -> None:
    _write(conn, _orders({"FY1995-P01": 3, "FY1995-P02": 2}), "run-1", list(RUN_DATES))
    wider = SqlRelation(
        sql="SELECT i AS o_orderkey, 1.0::DECIMAL(15,2) AS amount, 'x' AS note, 'FY1995-P01' AS fiscal_period "
        "FROM range(2) t(i)",
        pipeline_id="erp.orders",
        credential_id="erp-reader",
    )
    with pytest.raises(RefusedError, match=r"columns changed \(\+note\)"):
        _write(conn, wider, "run-2", ["FY1995-P01"])
    both = SqlRelation(
        sql=wider.sql + " UNION ALL SELECT 9, 1.0, 'y', 'FY1995-P02'",
        pipeline_id="erp.orders",
        credential_id="erp-reader",
    )
    _write(conn, both, "run-3", list(RUN_DATES))
    assert conn.execute("SELECT count(*), count(note) FROM raw.orders").fetchone() == (3, 3)


def test_unpartitioned_snapshot_is_replaced_whole(conn: duckdb.DuckDBPyConnection) -> None:
    for run_id, n in (("run-1", 4), ("run-2", 2)):
        replace_partitions(
            conn,
            "raw",
            "nation",
            SqlRelation(f"SELECT i AS n_nationkey FROM range({n}) t(i)", "erp.nation", "erp-reader", date(1998, 1, 1)),
            org_slug="acme",
            run_id=run_id,
            run_dates=None,
        )
    assert conn.execute("SELECT count(*), min(x_run_id), min(x_pipeline_run_date) FROM raw.nation").fetchone() == (
        2,
        "run-2",
        date(1998, 1, 1),
    )


def test_every_connection_of_a_profile_holds_at_most_its_memory_limit(settings: Settings) -> None:
    """DuckDB's own default takes 80% of the machine's memory for its cache; the profile's limit holds in
    runs, outside them and in the query console."""
    from barecount.defs.resources import build_warehouse
    from barecount.warehouse.connection import warehouse_file

    limit = settings.duckdb.memory_limit
    with duckdb.connect(config={"memory_limit": limit}) as plain:
        expected = plain.execute("SELECT current_setting('memory_limit')").fetchone()
    with duckdb.connect() as plain:
        assert plain.execute("SELECT current_setting('memory_limit')").fetchone() != expected
    run_warehouse = build_warehouse(settings)
    for connection in (
        run_warehouse.get_connection(),
        warehouse_file(settings).get_connection(),
        warehouse_file(settings, sealed=True).get_connection(),
    ):
        with connection as conn:
            assert conn.execute("SELECT current_setting('memory_limit')").fetchone() == expected
