"""The pipeline on the emulator profile, over a copy of the session's sample data (TPC-H SF 0.01, the periods the
local profile's session build ran):

- `barecount run --profile bigquery-emulator` publishes the same numbers as the local profile;
- then the newest period's orders extract drifts and one of its line items loses its order: the period is blocked
  with its previous rows kept, the orphan line is quarantined (rows in = landed + quarantined), and the re-landed
  line items are not added twice;
- a data owner approves the proposal and the approval sensor's run resumes exactly that period;
- the ledger verifies, nothing secret is written, and tables are partitioned by period and clustered.

One emulator is held for the whole test, as `barecount ui` holds it: every command shares it."""

from __future__ import annotations

import json
import math
import os
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from barecount.config.instance import open_instance
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import ALL_ASSETS_JOB, build_definitions
from barecount.defs.bigquery_resource import build_bigquery_warehouse
from barecount.defs.sensors import APPROVAL_SENSOR
from barecount.devtools.scenarios import change_shape
from tests.bigquery.conftest import PII_KEY
from tests.cli import barecount
from tests.conftest import BUILT_PERIODS
from tests.published_values import differences, published_values

pytestmark = pytest.mark.long

ORPHAN_KEY = 999_999_999
"""An order key no order has: the line item carrying it breaks its reference to orders."""


def _number(value: object) -> object:
    """Numbers as numbers: DuckDB gives DECIMAL(18,2) 1.50 where BigQuery's NUMERIC gives 1.5."""
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    return value


def _same(local: object, emulated: object) -> bool:
    """Equal; doubles (averages summed in no fixed order) to 1e-12. The emulator does not round a CAST to
    NUMERIC(p, s) to its scale (real BigQuery does), so an emulated decimal with more digits than the local one
    agrees with it to within one unit of the local value's last digit."""
    a, b = _number(local), _number(emulated)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (float, Decimal)) and isinstance(b, (float, Decimal)) and math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, Decimal) and isinstance(b, Decimal) and b.as_tuple().exponent < a.as_tuple().exponent:  # type: ignore[operator]
        return abs(a - b) <= Decimal(1).scaleb(a.as_tuple().exponent)  # type: ignore[arg-type]
    return a == b


def _drift_and_orphan(sources: Path, period: str) -> int:
    """Rename and widen columns of the period's orders extract; point one of its line items at no order. Returns
    the rows of its line item extract."""
    with duckdb.connect() as scratch:
        change_shape(scratch, str(sources / "erp" / "orders" / f"{period}.parquet"), "orders", period)
        lines = str(sources / "erp" / "lineitem" / f"{period}.parquet")
        scratch.execute(
            f"COPY (SELECT * REPLACE (CASE WHEN row_number() OVER () = 1 THEN {ORPHAN_KEY} ELSE l_orderkey END "
            f"AS l_orderkey) FROM read_parquet('{lines}')) TO '{lines}.orphan' (FORMAT parquet)"
        )
        os.replace(f"{lines}.orphan", lines)
        (rows,) = scratch.execute(f"SELECT count(*) FROM read_parquet('{lines}')").fetchone()  # type: ignore[misc]
    return int(rows)


def _resume_by_sensor(paths: ProjectPaths, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """One tick of the approval sensor, and the run it requests, as the daemon would launch it."""
    defs = build_definitions(load_settings(paths))
    tick = defs.resolve_sensor_def(APPROVAL_SENSOR)(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(tick, dg.SensorResult), tick
    (request,) = tick.run_requests or []
    return defs.resolve_job_def(ALL_ASSETS_JOB).execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        asset_selection=request.asset_selection,
    )


def _rows(paths: ProjectPaths, sql: str) -> list[tuple[object, ...]]:
    with build_bigquery_warehouse(load_settings(paths)).get_connection(read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_the_emulator_publishes_what_the_local_profile_does_and_governs_drift_bad_rows_and_approval_alike(
    emulated_project: ProjectPaths, built_once: ProjectPaths
) -> None:
    paths = emulated_project
    ran = barecount("run", "--from", BUILT_PERIODS[0], "--to", BUILT_PERIODS[1])
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with open_instance(paths) as instance:
        (run,) = instance.get_runs(limit=1)
        logged = " ".join(str(entry) for entry in instance.all_logs(run.run_id))
        event = instance.get_latest_materialization_event(dg.AssetKey(["acme", "kpi", "net_revenue"]))
    assert event is not None and event.asset_materialization is not None
    costs = event.asset_materialization.metadata
    assert costs["bigquery_queries"].value > 0 and "bigquery_bytes_billed" in costs, "what BigQuery's jobs cost"
    said = logged + ran.stdout + ran.stderr

    local = published_values(built_once.root / "data" / "acme" / "warehouse.duckdb")
    net_revenue = "select * from published.net_revenue order by fiscal_period"
    emulated = barecount("query", "--json", net_revenue)
    assert emulated.returncode == 0, emulated.stderr
    columns, rows = local["net_revenue"]["columns"], local["net_revenue"]["rows"]
    queried = [[row[c] for c in columns] for row in json.loads(emulated.stdout)]
    assert rows and len(queried) == len(rows)
    assert all(_same(a, b) for x, y in zip(rows, queried, strict=True) for a, b in zip(x, y, strict=True))
    settings = load_settings(paths)
    warehouse = build_bigquery_warehouse(settings)
    with warehouse.get_connection() as conn:
        found = differences(published_values(conn), local, agree=lambda emulated, kept: _same(kept, emulated))
    assert not found, "\n".join(found)

    # exports and the catalog read BigQuery as they read DuckDB: the same rows, the same bytes again
    exported = []
    for out in ("one", "two"):
        done = barecount("export", "net_revenue", "--out", str(paths.root / out), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        exported.append({p.name: p.read_bytes() for p in (paths.root / out / "published.net_revenue").iterdir()})
    assert exported[0] == exported[1] and len(exported[0]) == len(rows) + 1  # a file per period, and the manifest
    manifest = json.loads(exported[0]["manifest.json"])
    assert [f["rows"] for f in manifest["files"]] == [1] * len(rows)
    listed = barecount("catalog", "--json")
    assert listed.returncode == 0, listed.stderr
    catalog = {d["ref"]: d for d in json.loads(listed.stdout)["datasets"]}
    assert catalog["published/net_revenue"]["rows"] == len(rows) and catalog["raw/orders"]["columns"]

    # the plan reads the emulator's evidence: the periods just built are done, nothing is left to build
    planned = barecount("plan", "--from", BUILT_PERIODS[0], "--to", BUILT_PERIODS[1], "--json")
    assert planned.returncode == 0, planned.stderr
    assert [p["asset"] for p in json.loads(planned.stdout) if p["build"] or p["held"]] == []

    # the newest period drifts, and one of its line items points at no order
    period = BUILT_PERIODS[1]
    where = f"WHERE fiscal_period = '{period}'"
    kept = {
        table: sorted(_rows(paths, f"SELECT * FROM {table} {where}"), key=str)
        for table in ("raw.orders", "published.net_revenue")
    }
    lines_in = _drift_and_orphan(load_settings(paths).sources_dir, period)
    # the streams alone: what a drift holds back downstream is the local profile's test; here, BigQuery's writes
    blocked = barecount("run", "--period", period, "--select", "raw/orders", "--select", "raw/lineitem")
    assert blocked.returncode == 1 and f"erp.orders {period}" in " ".join(blocked.stderr.split()), blocked.stderr
    said += blocked.stdout + blocked.stderr
    for table, before in kept.items():
        assert sorted(_rows(paths, f"SELECT * FROM {table} {where}"), key=str) == before, f"{table} kept its rows"
    quarantined = _rows(paths, f"SELECT quarantine_rule, count(*) FROM quarantine.lineitem {where} GROUP BY 1")
    assert quarantined == [("references__l_orderkey", 1)]
    (landed,) = _rows(paths, f"SELECT count(*) FROM raw.lineitem {where}")
    assert landed[0] + 1 == lines_in, "rows in = rows landed + rows quarantined"
    lines = "SELECT fiscal_period, l_orderkey, l_linenumber FROM raw.lineitem"
    repeated = _rows(paths, f"{lines} GROUP BY ALL HAVING count(*) > 1")
    assert repeated == [], "the re-landed period replaced its line items instead of adding them again"

    # a data owner approves the drafted version; the sensor's run resumes exactly the blocked period
    approved = barecount("contracts", "approve", "erp.orders", "2.0.0", "--by", "dana.owner")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    others = f"SELECT fiscal_period, x_run_id FROM raw.orders WHERE fiscal_period <> '{period}' GROUP BY ALL ORDER BY 1"
    untouched = _rows(paths, others)
    with open_instance(paths) as instance:
        resumed = _resume_by_sensor(paths, instance)
        said += " ".join(str(entry) for entry in instance.all_logs(resumed.run_id))
    assert resumed.success
    still = barecount("contracts", "blocked", "--json")
    assert still.returncode == 0 and json.loads(still.stdout) == [], still.stderr
    for table in ("raw.orders", "published.net_revenue"):
        stamps = _rows(paths, f"SELECT DISTINCT x_run_id FROM {table} {where}")
        assert stamps == [(resumed.run_id,)], f"{table} was rebuilt by the sensor's run"
    assert _rows(paths, f"SELECT DISTINCT x_contract_version FROM raw.orders {where}") == [("2.0.0",)]
    assert _rows(paths, others) == untouched

    verified = barecount("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with warehouse.get_client() as client, warehouse.get_connection() as conn:
        layout = client.get_table(f"{settings.bigquery.project}.acme_raw.lineitem")
        recorded = conn.execute(
            "SELECT json_extract_string(facts, '$.bigquery_jobs.queries') FROM evidence.ledger "
            "WHERE kind = 'materialization' AND asset = 'kpi/net_revenue'"
        ).fetchall()
        ledger = conn.execute("SELECT * FROM evidence.ledger").fetchall()
    assert layout.time_partitioning.field == "x_pipeline_run_date", "a partition per period (its last day)"
    assert layout.clustering_fields == ["x_org_slug", "fiscal_period"]
    assert recorded and all(int(queries) > 0 for (queries,) in recorded), "each write's job costs are on the record"
    assert PII_KEY not in said + str(ledger), "the key is bound as a parameter, never written"
