"""The accounting gate: a blocking check per raw asset, with its result kept per partition."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from barecount.assembly import build_definitions
from barecount.periods import source_periods
from barecount.profiles import Settings
from barecount.runner import run_partitions


def test_accounting_check_passes_per_partition_and_is_recorded(
    settings: Settings, instance: dg.DagsterInstance, warehouse_file: Path
) -> None:
    keys = source_periods(settings)[30:33]
    defs = build_definitions(settings)
    check_keys = {c.to_user_string() for c in defs.resolve_asset_graph().asset_check_keys}
    assert "raw/lineitem:rows_accounted" in check_keys and len(check_keys) == 9
    outcome = run_partitions(defs, instance, keys)
    assert outcome.success, outcome.failure
    assert outcome.assets["raw/lineitem"].checks_passed == 1 and outcome.assets["raw/lineitem"].checks_failed == 0
    evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key(  # public storage API
        [dg.AssetCheckKey(dg.AssetKey(["raw", "lineitem"]), "rows_accounted")]
    )
    record = next(iter(evaluation.values()))
    assert record.status.value == "SUCCEEDED"
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        gates = conn.execute(
            "SELECT partition, passed FROM evidence.gate_results WHERE asset = 'raw/lineitem' ORDER BY 1"
        ).fetchall()
        assert gates == [(k, True) for k in keys]
        checks = conn.execute("SELECT count(*) FROM evidence.ledger WHERE kind = 'check'").fetchone()
        assert checks == (2 * 3 + 7,)  # two partitioned streams x 3 periods + seven snapshots
