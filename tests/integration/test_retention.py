"""Retention deletes exactly the periods its rules no longer keep, from the apply_retention job or the CLI, each
deletion on the ledger; the ledger and the data still verify; other layers are untouched."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from barecount.config.instance import open_instance
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions
from barecount.defs.retention_job import RETENTION_JOB
from tests.cli import barecount

pytestmark = pytest.mark.long

PERIODS = ["FY1995-P01", "FY1995-P02", "FY1995-P03", "FY1995-P04"]


def _periods(paths: ProjectPaths, table: str) -> dict[str, int]:
    with duckdb.connect(str(paths.root / "data" / "acme" / "warehouse.duckdb"), read_only=True) as conn:
        return dict(conn.execute(f"SELECT fiscal_period, count(*) FROM {table} GROUP BY 1 ORDER BY 1").fetchall())


def _keep(paths: ProjectPaths, periods: int) -> None:
    tenant = paths.root / "resources" / "tenants" / "acme.yaml"
    kept = tenant.read_text().split("\nretention:")[0]
    tenant.write_text(kept + f"\nretention:\n  - {{layer: raw, keep_periods: {periods}}}\n"
                      "  - {layer: quarantine, keep_days: 30}\n")  # fmt: skip


def test_retention_deletes_exactly_the_declared_periods_and_records_each(built_project: ProjectPaths) -> None:
    paths = built_project
    before = {t: _periods(paths, t) for t in ("raw.orders", "raw.lineitem", "gdp.order_lines")}
    assert list(before["raw.orders"]) == PERIODS

    _keep(paths, 3)  # the job, as the UI launches it: the oldest period goes
    defs = build_definitions(load_settings(paths))
    with open_instance(paths) as instance:
        ran = defs.resolve_job_def(RETENTION_JOB).execute_in_process(instance=instance)
    assert ran.success
    (output,) = [e for e in ran.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    assert output.event_specific_data.metadata["periods_deleted"].value == 2  # type: ignore[union-attr]
    assert list(_periods(paths, "raw.orders")) == PERIODS[1:]

    _keep(paths, 2)  # the CLI: first what would go, then it goes
    planned = barecount("retention", "--json")
    assert planned.returncode == 0, planned.stderr
    wanted = [(d["table"], d["period"], d["rows"]) for d in json.loads(planned.stdout)["deletions"]]
    assert wanted == [("raw.orders", PERIODS[1], before["raw.orders"][PERIODS[1]]),
                      ("raw.lineitem", PERIODS[1], before["raw.lineitem"][PERIODS[1]])]  # fmt: skip
    assert list(_periods(paths, "raw.orders")) == PERIODS[1:], "listing deletes nothing"
    applied = barecount("retention", "--apply", "--json")
    assert (
        applied.returncode == 0 and json.loads(applied.stdout)["deletions"] == json.loads(planned.stdout)["deletions"]
    )

    for table in ("raw.orders", "raw.lineitem"):
        assert _periods(paths, table) == {k: v for k, v in before[table].items() if k in PERIODS[2:]}
    assert _periods(paths, "gdp.order_lines") == before["gdp.order_lines"], "only raw and quarantine are trimmed"
    again = barecount("retention", "--json")
    assert json.loads(again.stdout)["deletions"] == []

    with duckdb.connect(str(paths.root / "data" / "acme" / "warehouse.duckdb"), read_only=True) as conn:
        recorded = conn.execute(
            "SELECT asset, partition, json_extract(facts, '$.rows_deleted')::BIGINT, run_id FROM evidence.ledger "
            "WHERE kind = 'retention' ORDER BY seq"
        ).fetchall()
    assert [(a, p, n) for a, p, n, _ in recorded] == [
        ("raw/orders", PERIODS[0], before["raw.orders"][PERIODS[0]]),
        ("raw/lineitem", PERIODS[0], before["raw.lineitem"][PERIODS[0]]),
        ("raw/orders", PERIODS[1], before["raw.orders"][PERIODS[1]]),
        ("raw/lineitem", PERIODS[1], before["raw.lineitem"][PERIODS[1]]),
    ]
    assert recorded[0][3] == ran.run_id
    verified = barecount("ledger", "verify", "--data")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_retention_rule_takes_one_limit(project_copy: ProjectPaths, tmp_path: Path) -> None:
    tenant = project_copy.root / "resources" / "tenants" / "acme.yaml"
    tenant.write_text(tenant.read_text() + "retention:\n  - {layer: raw, keep_periods: 2, keep_days: 30}\n")
    checked = barecount("check")
    assert checked.returncode == 2
    assert "acme.yaml" in checked.stderr and "give keep_periods or keep_days (one of them)" in checked.stderr


def test_a_contract_s_retention_sla_trims_its_stream_s_raw_periods(built_project: ProjectPaths) -> None:
    """ODCS slaProperties retention on erp.lineitem: its raw periods older than that go; other streams stay."""
    paths = built_project
    contract = paths.root / "contracts" / "erp" / "lineitem" / "1.0.0.yaml"
    text = contract.read_text()
    assert "- property: latency\n  value: 1\n  unit: d\n" in text
    contract.write_text(
        text.replace(
            "- property: latency\n  value: 1\n  unit: d\n",
            "- property: latency\n  value: 1\n  unit: d\n- property: retention\n  value: 20\n  unit: y\n",
        )
    )
    planned = barecount("retention", "--json")
    assert planned.returncode == 0, planned.stderr
    deletions = json.loads(planned.stdout)["deletions"]
    # twenty years before today is long after FY1995: every built period of raw.lineitem, and nothing else
    assert [(d["table"], d["period"]) for d in deletions] == [("raw.lineitem", p) for p in PERIODS]
    assert all(d["rule"] == "raw: keep 7300 days (erp.lineitem 1.0.0 slaProperties retention)" for d in deletions)
    shown = barecount("retention")
    assert "slaProperties retention" in shown.stdout and "Would delete 4 period(s)" in " ".join(shown.stdout.split())
