"""Late data: orders delivered in the next period's extract restate their own period, up to the KPIs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from barecount.config.profiles import load_settings
from barecount.devtools.sample_data import generate_sample_data
from tests.cli import barecount
from tests.conftest import TEST_SCALE, copy_project, use_project
from tests.dagster_server import ORG, DagsterServer, serve_dagster

pytestmark = pytest.mark.long

STALE_STATUS = """
query Stale($key: AssetKeyInput!, $partitions: [String!]) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      staleStatusByPartition(partitions: $partitions)
      staleCausesByPartition(partitions: $partitions) { reason key { path } partitionKey }
    }
  }
}
"""

KPIS = ("net_revenue", "gross_profit", "order_count", "pricing_summary", "revenue_per_working_day")


def _kpi_rows(warehouse: Path, periods: list[str]) -> dict[str, list[tuple[object, ...]]]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return {
            kpi: conn.execute(
                f"SELECT * EXCLUDE (x_org_slug, x_pipeline_id, x_credential_id, x_pipeline_run_date, x_run_id, "
                f"x_ingested_at, x_ingestion_date) FROM kpi.{kpi} WHERE fiscal_period IN (SELECT unnest(?)) "
                "ORDER BY ALL",
                [periods],
            ).fetchall()
            for kpi in KPIS
        }


def test_late_rows_restate_their_period_and_the_kpis_equal_an_on_time_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = copy_project(tmp_path / "late", tmp_path / "late-sources")
    calendar = load_settings(late).calendar
    manifest = generate_sample_data(tmp_path / "late-sources", TEST_SCALE, 0, calendar, late_fraction=0.02)
    moved = sorted(
        (m for m in manifest.scenarios.late if m.orders), key=lambda m: calendar.period(m.order_period).start
    )
    assert len(moved) >= 2
    start = calendar.previous(moved[0].order_period).key
    use_project(late, monkeypatch)

    # the first late period, built before its late orders arrive: the system of record already has them
    first = barecount("run", "--from", start, "--to", moved[0].order_period)
    said = " ".join(first.stderr.split())
    assert first.returncode == 1 and f"kpi/net_revenue {moved[0].order_period} (reconciliation)" in said

    # the next extract lands on its own: Dagster shows the GDP period it carries late rows for as stale
    barecount("run", "--period", moved[0].extract_period, "--select", "raw/orders", "--select", "raw/lineitem")
    first_late = [start, moved[0].order_period]

    def stale(server: DagsterServer, asset: str) -> tuple[list[str], list[set[tuple[str, str]]]]:
        key = {"path": [ORG, *asset.split("/")]}
        found = server.graphql(STALE_STATUS, {"key": key, "partitions": first_late})["assetNodeOrError"]
        by_partition = found["staleCausesByPartition"]  # type: ignore[index]
        causes = [{("/".join(c["key"]["path"][1:]), c["partitionKey"]) for c in p} for p in by_partition]
        return found["staleStatusByPartition"], causes

    with serve_dagster(late.root, late.dagster_home().resolve(), {}, daemon=False) as server:
        status, causes = stale(server, "gdp/order_lines")
        assert status == ["FRESH", "STALE"]
        assert causes[1] == {("raw/lineitem", moved[0].extract_period), ("raw/orders", moved[0].extract_period)}
        # Dagster passes staleness on one materialization at a time: rebuilt, the GDP period makes its KPIs stale
        barecount("run", "--period", moved[0].order_period, "--select", "gdp/order_lines")
        status, causes = stale(server, "kpi/net_revenue")
        assert status == ["FRESH", "STALE"] and causes[1] == {("gdp/order_lines", moved[0].order_period)}

    # each later run rebuilds the period before it, whose late rows it brings
    for step in moved:
        ran = barecount("run", "--from", start, "--to", step.extract_period)
        assert ran.returncode == (0 if step is moved[-1] else 1), ran.stdout + ran.stderr
    entries = json.loads(barecount("ledger", "show", "--limit", "0", "--json").stdout)
    restated = {(e["asset"], e["partition"]): e["facts"] for e in entries if e["kind"] == "restatement"}
    for step in moved:
        orders = restated[("gdp/orders", step.order_period)]
        assert orders["rows_after"] - orders["rows_before"] == step.orders
        assert orders["late_extracts"] == [step.extract_period] and step.extract_period in orders["reason"]
        lines = restated[("gdp/order_lines", step.order_period)]
        assert lines["rows_after"] > lines["rows_before"]
        assert restated[("kpi/net_revenue", step.order_period)]["reason"].endswith(
            "its inputs changed since the last build"
        )
    # a rebuilt period that did not change is no restatement
    assert ("gdp/orders", start) not in restated and ("raw/orders", moved[0].extract_period) not in restated
    published = json.loads(barecount("query", "SELECT fiscal_period FROM published.net_revenue", "--json").stdout)
    assert {m.order_period for m in moved} <= {p["fiscal_period"] for p in published}

    # the same periods with every order on time give the same KPIs
    on_time = copy_project(tmp_path / "on-time", tmp_path / "on-time-sources")
    generate_sample_data(tmp_path / "on-time-sources", TEST_SCALE, 0, calendar)
    use_project(on_time, monkeypatch)
    last = moved[-1].extract_period
    assert barecount("run", "--from", start, "--to", last).returncode == 0
    periods = [p.key for p in calendar.periods_between(calendar.period(start).start, calendar.period(last).end)]
    late_kpis = _kpi_rows(load_settings(late).warehouse_path, periods)
    assert late_kpis == _kpi_rows(load_settings(on_time).warehouse_path, periods)
    assert all(len(rows) >= len(periods) for rows in late_kpis.values())
