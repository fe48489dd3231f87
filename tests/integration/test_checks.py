"""The gates on every raw asset (accounting, contract conformance): blocking checks, results kept per partition."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from barecount.catalog.loader import load_project_specs
from barecount.config.profiles import Settings
from barecount.contracts import ContractRegistry
from barecount.defs.assembly import build_definitions
from barecount.defs.runner import run_partitions
from barecount.pipeline.gates.contract import contract_conformance
from barecount.pipeline.periods import source_periods
from barecount.pipeline.scope import RunScope


def test_accounting_check_passes_per_partition_and_is_recorded(
    settings: Settings, instance: dg.DagsterInstance, warehouse_file: Path
) -> None:
    keys = source_periods(settings)[30:33]
    defs = build_definitions(settings)
    check_keys = {c.to_user_string() for c in defs.resolve_asset_graph().asset_check_keys}
    gates = ("schema_approved", "rows_accounted", "conforms_to_contract")
    assert {f"acme/raw/lineitem:{gate}" for gate in gates} <= check_keys
    # three gates per raw asset, data tests on the 5 models, thresholds on the 9 KPIs, 5 reconciliations, 5 scores
    assert len(check_keys) == 3 * 9 + 2 + 5 + 9 + 5 + 5  # freshness on the two period streams (latency SLA)
    outcome = run_partitions(defs, instance, keys)
    assert outcome.success, outcome.failure
    assert outcome.assets["raw/lineitem"].checks_passed == 4 and outcome.assets["raw/lineitem"].checks_failed == 0
    evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key(  # public storage API
        [dg.AssetCheckKey(dg.AssetKey(["acme", "raw", "lineitem"]), "rows_accounted")]
    )
    record = next(iter(evaluation.values()))
    assert record.status.value == "SUCCEEDED"
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        gates = conn.execute(
            "SELECT gate, partition, passed FROM evidence.gate_results WHERE asset = 'raw/lineitem' ORDER BY ALL"
        ).fetchall()
        assert gates == [(g, k, True) for g in ("conforms_to_contract", "freshness", "rows_accounted") for k in keys]
        checks = conn.execute("SELECT count(*) FROM evidence.ledger WHERE kind = 'check'").fetchone()
        # two raw gates x (two partitioned streams x 3 periods + seven snapshots), freshness of the partitioned
        # streams, the data tests of two partitioned models x 3 periods and three snapshot models, 19 KPI gates x 3
        # (14 that block, 5 anomaly scores)
        assert checks == (2 * (2 * 3 + 7) + 2 * 3 + (2 * 3 + 3) + 19 * 3,)


def _scope(conn: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> RunScope:
    years = settings.tenant.fiscal_years
    return RunScope(conn, run_id, settings.tenant.slug, settings.calendar, (years.first, years.last))


def test_the_contract_gate_names_the_period_and_rule_a_landed_row_breaks(
    settings: Settings, instance: dg.DagsterInstance, warehouse_file: Path
) -> None:
    keys = source_periods(settings)[40:44]
    outcome = run_partitions(
        build_definitions(settings),
        instance,
        keys,
        selection=["raw/region", "raw/nation", "raw/customer", "raw/orders"],
    )
    assert outcome.success, outcome.failure
    orders = next(s for s in load_project_specs(settings.paths).streams if s.spec.name == "orders")
    registry = ContractRegistry.load(settings.paths)
    with duckdb.connect(str(warehouse_file)) as conn:
        assert all(ok for _, ok, _ in contract_conformance(_scope(conn, settings, outcome.run_id), registry, orders))
        # Raw edited behind BareCount's back: a status the contract does not allow, a negative price, a duplicate
        conn.execute(
            "UPDATE raw.orders SET o_orderstatus = 'Z' WHERE o_orderkey = "
            f"(SELECT min(o_orderkey) FROM raw.orders WHERE fiscal_period = '{keys[1]}')"
        )
        conn.execute(f"UPDATE raw.orders SET o_totalprice = -1 WHERE fiscal_period = '{keys[2]}'")
        conn.execute(f"INSERT INTO raw.orders (SELECT * FROM raw.orders WHERE fiscal_period = '{keys[3]}' LIMIT 1)")
        results = {
            p: (ok, detail)
            for p, ok, detail in contract_conformance(_scope(conn, settings, outcome.run_id), registry, orders)
        }
    assert results[keys[0]][0] is True
    assert results[keys[1]][0] is False and "o_orderstatus: isin" in results[keys[1]][1]
    assert "(1 row(s))" in results[keys[1]][1]
    assert results[keys[2]][0] is False and "o_totalprice: greater_than_or_equal_to(0)" in results[keys[2]][1]
    assert results[keys[3]] == (False, "key (fiscal_period, o_orderkey): multiple_fields_uniqueness")
