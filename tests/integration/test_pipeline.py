"""The asset graph on sample data: real DuckDB file, real Dagster instance, single-run ranges."""

from __future__ import annotations

import math
from pathlib import Path

import dagster as dg
import duckdb

from barecount.config.profiles import Settings
from barecount.defs.assembly import build_definitions
from barecount.defs.runner import run_partitions
from barecount.pipeline.periods import source_periods
from barecount.pipeline.tags import FORCE_TAG
from barecount.sql.relation import LINEAGE_COLUMNS

NET_REVENUE = dg.AssetKey(["acme", "kpi", "net_revenue"])
BUSINESS_ORDER_LINES = (
    "order_key, line_number, customer_key, part_key, supplier_key, order_date, ship_date, commit_date, receipt_date, "
    "quantity, extended_price, discount, tax, return_flag, line_status, ship_mode, supply_cost, customer_name, "
    "market_segment, nation, region, fiscal_period"
)


TPCH_Q1 = """
SELECT {flag}, {status}, sum({qty}), sum({price}), sum({price} * (1 - {disc})),
       sum({price} * (1 - {disc}) * (1 + {tax})), avg({qty}), avg({price}), avg({disc}), count(*)
FROM {lines} WHERE {ship} <= DATE '1998-12-01' - INTERVAL 90 DAY
GROUP BY ALL ORDER BY ALL
"""
TPCH_Q6 = """
SELECT sum({price} * {disc}) FROM {lines}
WHERE {ship} >= DATE '1994-01-01' AND {ship} < DATE '1995-01-01' AND {disc} BETWEEN 0.05 AND 0.07 AND {qty} < 24
"""
GDP_NAMES = {
    "flag": "return_flag",
    "status": "line_status",
    "qty": "quantity",
    "price": "extended_price",
    "disc": "discount",
    "tax": "tax",
    "ship": "ship_date",
}
SOURCE_NAMES = {
    "flag": "l_returnflag",
    "status": "l_linestatus",
    "qty": "l_quantity",
    "price": "l_extendedprice",
    "disc": "l_discount",
    "tax": "l_tax",
    "ship": "l_shipdate",
}


def _periods_with_data(settings: Settings) -> list[str]:
    return source_periods(settings)


def test_three_periods_materialize_in_one_run(settings: Settings, instance: dg.DagsterInstance) -> None:
    keys = _periods_with_data(settings)[10:13]
    outcome = run_partitions(build_definitions(settings), instance, keys)
    assert outcome.success, outcome.failure
    assert {o.status for o in outcome.assets.values()} == {"done"}
    assert len(outcome.assets) == len(build_definitions(settings).resolve_all_asset_specs())
    assert outcome.assets["raw/lineitem"].partitions == 3
    runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].tags["dagster/asset_partition_range_start"] == keys[0]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        periods = conn.execute("SELECT DISTINCT fiscal_period FROM gdp.order_lines ORDER BY 1").fetchall()
        assert [p for (p,) in periods] == keys
        assert conn.execute("SELECT DISTINCT x_contract_version FROM raw.orders").fetchall() == [("1.0.0",)]
        kpi = conn.execute("SELECT fiscal_period, value, kpi_version FROM kpi.net_revenue ORDER BY 1").fetchall()
        assert [k for k, _, _ in kpi] == keys and {v for _, _, v in kpi} == {"1.0.0"}
        raw_lineage = (*LINEAGE_COLUMNS, "x_contract_version", "x_schema_hash")
        for table in (
            "raw.orders",
            "raw.lineitem",
            "raw.customer",
            "raw.crm_customers",
            "gdp.order_lines",
            "kpi.net_revenue",
        ):
            lineage = raw_lineage if table.startswith("raw.") else LINEAGE_COLUMNS
            nulls = " + ".join(f"count(*) FILTER (WHERE {c} IS NULL)" for c in lineage)
            assert conn.execute(f"SELECT {nulls} FROM {table}").fetchone() == (0,), table
        columns = conn.execute(
            "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) FROM information_schema.columns "
            "WHERE table_schema = 'gdp' AND table_name = 'order_lines' AND column_name NOT LIKE 'x\\_%' ESCAPE '\\'"
        ).fetchone()
        assert columns == (BUSINESS_ORDER_LINES,)
    materialized = instance.fetch_materializations(dg.AssetKey(["acme", "raw", "lineitem"]), limit=10).records
    assert sorted(r.partition_key for r in materialized) == keys
    row_counts = {r.partition_key: r.asset_materialization.metadata["dagster/row_count"].value for r in materialized}
    assert all(int(v) > 0 for v in row_counts.values())
    # a KPI partition's metadata: its version, SQL hash, row count, the input partitions with their ledger hashes,
    # the data versions of its inputs (Dagster's provenance) and its gates' results
    (kpi_record, *_) = instance.fetch_materializations(NET_REVENUE, limit=1).records
    event = kpi_record.asset_materialization
    assert event is not None
    metadata = event.metadata
    assert metadata["kpi_version"].value == "1.0.0" and len(str(metadata["sql_hash"].value)) == 16
    assert metadata["dagster/row_count"].value == 1
    inputs = str(metadata["inputs"].value)  # a table: input, period, the ledger hash of its build
    assert inputs.startswith("| input | period |") and "| gdp/order_lines | FY" in inputs
    assert event.tags is not None and "dagster/input_data_version/acme/gdp/order_lines" in event.tags
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(NET_REVENUE, gate) for gate in ("thresholds", "reconciliation")]
    )
    assert {record.status.value for record in checks.values()} == {"SUCCEEDED"} and len(checks) == 2


def test_the_same_work_twice_is_a_recorded_no_op_and_forced_changes_nothing_but_run_ids(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    keys = _periods_with_data(settings)[20:22]
    defs = build_definitions(settings)
    business = "SELECT * EXCLUDE (x_run_id, x_ingested_at) FROM gdp.order_lines ORDER BY ALL"

    def snapshot(sql: str = business) -> list[tuple[object, ...]]:
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    first_run = run_partitions(defs, instance, keys)
    assert first_run.success
    first = snapshot("SELECT * FROM gdp.order_lines ORDER BY ALL")
    first_business = snapshot()
    again = run_partitions(defs, instance, keys[:1])
    assert again.success and again.assets["gdp/order_lines"].unchanged == 1
    assert snapshot("SELECT * FROM gdp.order_lines ORDER BY ALL") == first  # not even the run stamps moved
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        done = conn.execute(
            "SELECT DISTINCT kind FROM evidence.ledger WHERE run_id = ? AND kind NOT IN ('check')", [again.run_id]
        ).fetchall()
        assert done == [("noop",)]
        (reason,) = conn.execute(
            "SELECT facts->>'reason' FROM evidence.ledger WHERE run_id = ? AND asset = 'kpi/net_revenue'",
            [again.run_id],
        ).fetchone()  # type: ignore[misc]
        assert reason.startswith(f"unchanged since run {first_run.run_id}")

    forced = run_partitions(defs, instance, keys[:1], tags={FORCE_TAG: "true"})
    assert forced.success and forced.assets["gdp/order_lines"].partitions == 1
    assert snapshot() == first_business
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        assert conn.execute("SELECT count(DISTINCT x_run_id) FROM gdp.order_lines").fetchone() == (2,)


def test_every_period_reconciles_with_plain_sql_on_the_sources(
    settings: Settings, instance: dg.DagsterInstance, sample_sources: Path
) -> None:
    keys = _periods_with_data(settings)
    outcome = run_partitions(build_definitions(settings), instance, keys)
    assert outcome.success, outcome.failure
    lineitem = f"read_parquet('{sample_sources}/erp/lineitem/*.parquet')"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        source_lines, source_revenue = conn.execute(
            f"SELECT count(*), sum(l_extendedprice * (1 - l_discount)) FROM {lineitem}"
        ).fetchone()
        assert conn.execute("SELECT count(*) FROM gdp.order_lines").fetchone() == (source_lines,)
        assert conn.execute("SELECT sum(value) FROM kpi.net_revenue").fetchone() == (source_revenue,)
        assert conn.execute("SELECT count(*) FROM kpi.net_revenue").fetchone() == (len(keys),)
        # the other KPIs, summed or counted over all periods, against the same measures on the source files
        orders = f"read_parquet('{sample_sources}/erp/orders/*.parquet')"
        assert (
            conn.execute("SELECT sum(value) FROM kpi.order_count").fetchone()
            == conn.execute(f"SELECT count(DISTINCT l_orderkey) FROM {lineitem}").fetchone()
        )
        assert (
            conn.execute("SELECT sum(value) FROM kpi.discount_revenue").fetchone()
            == conn.execute(
                f"SELECT sum(l_extendedprice * l_discount) FROM {lineitem} "
                "WHERE l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24"
            ).fetchone()
        )
        returned, on_time = conn.execute(
            "SELECT sum(r.value * n.value), sum(t.value * n.value) FROM kpi.return_rate r "
            "JOIN kpi.on_time_delivery_rate t USING (fiscal_period) JOIN (SELECT fiscal_period, count(*) AS value "
            "FROM gdp.order_lines GROUP BY 1) n USING (fiscal_period)"
        ).fetchone()  # type: ignore[misc]
        assert (round(returned), round(on_time)) == conn.execute(
            f"SELECT count(*) FILTER (WHERE l_returnflag = 'R'), count(*) FILTER (WHERE l_receiptdate <= "
            f"l_commitdate) FROM {lineitem}"
        ).fetchone()
        aov = conn.execute(
            "SELECT a.value = r.value / c.value FROM kpi.average_order_value a JOIN kpi.net_revenue r "
            "USING (fiscal_period) JOIN kpi.order_count c USING (fiscal_period)"
        ).fetchall()
        assert aov and all(ok for (ok,) in aov)
        assert (
            conn.execute(f"SELECT count(*) FROM {orders}").fetchone()
            == conn.execute("SELECT sum(value) FROM kpi.order_count").fetchone()
        )
        # TPC-H Q1 and Q6 on the conformed lines give the source's answers: sums and counts exactly (money stays
        # DECIMAL); Q1's three averages are DOUBLE in DuckDB, summed in parallel in no fixed order, so the same
        # query can differ in the 17th digit from one execution to the next
        for query in (TPCH_Q1, TPCH_Q6):
            conformed = conn.execute(query.format(lines="gdp.order_lines", **GDP_NAMES)).fetchall()
            source = conn.execute(query.format(lines=lineitem, **SOURCE_NAMES)).fetchall()
            assert conformed and conformed[0][-1] is not None and len(conformed) == len(source)
            for ours, theirs in zip(conformed, source, strict=True):
                exact = [i for i, v in enumerate(ours) if not isinstance(v, float)]
                assert [ours[i] for i in exact] == [theirs[i] for i in exact]
                assert all(
                    math.isclose(a, b, rel_tol=1e-12) for a, b in zip(ours, theirs, strict=True) if isinstance(a, float)
                )
        # the Q1 measures and the gross profit, summed over all periods, equal the same sums on the sources
        assert (
            conn.execute(
                "SELECT return_flag, line_status, sum(sum_qty), sum(sum_base_price), sum(sum_disc_price), "
                "sum(sum_charge), sum(count_order) FROM kpi.pricing_summary GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            == conn.execute(
                "SELECT l_returnflag, l_linestatus, sum(l_quantity), sum(l_extendedprice), "
                "sum(l_extendedprice * (1 - l_discount)), sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)), "
                f"count(*) FROM {lineitem} GROUP BY ALL ORDER BY ALL"
            ).fetchall()
        )
        partsupp = f"read_parquet('{sample_sources}/erp/partsupp.parquet')"
        assert (
            conn.execute("SELECT sum(value) FROM kpi.gross_profit").fetchone()
            == conn.execute(
                f"SELECT sum(l_extendedprice * (1 - l_discount) - ps_supplycost * l_quantity) FROM {lineitem} "
                f"JOIN {partsupp} ON ps_partkey = l_partkey AND ps_suppkey = l_suppkey"
            ).fetchone()
        )
        # and every reconciliation against the system of record said so, period by period
        verdicts = conn.execute(
            "SELECT asset, count(*), count(*) FILTER (WHERE passed) FROM evidence.gate_results "
            "WHERE gate = 'reconciliation' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        reconciled = ["discount_revenue", "gross_profit", "net_revenue", "order_count", "pricing_summary"]
        assert verdicts == [(f"kpi/{kpi}", len(keys), len(keys)) for kpi in reconciled]
