"""The approval sensor reads the warehouse, so a run holding the DuckDB file must only postpone its tick."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from barecount.config.profiles import Settings
from barecount.defs.sensors import build_approval_sensor

HOLD = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()  # holds the file until told to let go (its stdin closes) or killed
"""


def test_a_busy_warehouse_postpones_the_tick_and_keeps_the_cursor(
    settings: Settings, warehouse_file: Path, instance: dg.DagsterInstance
) -> None:
    with duckdb.connect(str(warehouse_file)) as conn:
        conn.execute("CREATE SCHEMA evidence")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(warehouse_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        approvals = build_approval_sensor(settings, "all_assets")
        began = time.monotonic()
        result = approvals(dg.build_sensor_context(instance=instance, cursor="2026-01-01 00:00:00"))
        assert isinstance(result, dg.SkipReason) and "busy" in (result.skip_message or "")
        assert time.monotonic() - began < 30  # a bounded wait, not the runs' long one
    finally:
        holder.kill()
        holder.communicate()
    # once the file is free, the tick reads it: no decision yet
    result = approvals(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason) and result.skip_message == "no new contract decision"
