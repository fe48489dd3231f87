"""The governance loop under `dagster dev` with its daemon: drift blocks a period, a data owner decides, and
the approval sensor resumes exactly what was blocked (or, after a rejection, nothing)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.sensors import APPROVAL_SENSOR
from barecount.devtools.sample_data import generate_sample_data
from tests.cli import barecount
from tests.conftest import TEST_SCALE, copy_project, use_project
from tests.dagster_server import DONE, LOCATION, ORG, DagsterServer, serve_dagster, wait_until

pytestmark = pytest.mark.long

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status runs(limit: 10) { runId status } } }
}
"""
TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { status ticks(limit: 20) { status skipReason runIds } } }
  }
}
"""


def _rows(warehouse: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _launch(server: DagsterServer, job: str, tags: dict[str, str], **params: object) -> str:
    launched = server.graphql(
        LAUNCH,
        {
            "params": {
                "selector": {**LOCATION, "pipelineName": job, **params.pop("selector", {})},  # type: ignore[dict-item]
                "mode": "default",
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
                **params,
            }
        },
    )["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched  # type: ignore[index]
    return str(launched["run"]["runId"])  # type: ignore[index]


def _ledger(asset: str, period: str) -> list[dict[str, object]]:
    shown = barecount("ledger", "show", "--asset", asset, "--partition", period, "--limit", "0", "--json")
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A project built clean for its newest periods, then blocked by drift in the newest: (root, period)."""
    base = tmp_path_factory.mktemp("governance")
    sources = base / "sources"
    paths = copy_project(base / "project", sources)
    calendar = load_settings(paths).calendar
    newest = generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar).last_period
    start = calendar.previous(newest).key
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_project(paths, monkeypatch)
        clean = barecount("run", "--from", start, "--to", newest)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar, drift=True)
        blocked = barecount("run", "--from", start, "--to", newest)
        assert blocked.returncode == 1 and f"erp.orders {newest}" in " ".join(blocked.stderr.split())
    yield paths.root, newest


@pytest.fixture
def loop(
    drifted: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DagsterServer, ProjectPaths, str]]:
    """A copy of the drifted project (warehouse and DAGSTER_HOME included) served by `dagster dev`."""
    root, period = drifted
    shutil.copytree(root, tmp_path / "project")
    paths = ProjectPaths(tmp_path / "project")
    use_project(paths, monkeypatch)
    with serve_dagster(paths.root, paths.dagster_home().resolve(), {}) as server:
        yield server, paths, period


def test_an_approval_from_the_launchpad_resumes_exactly_the_blocked_period(
    loop: tuple[DagsterServer, ProjectPaths, str],
) -> None:
    server, paths, period = loop
    warehouse = paths.root / "data" / "acme" / "warehouse.duckdb"
    before = {
        table: _rows(warehouse, f"SELECT fiscal_period, list(DISTINCT x_run_id) FROM {table} GROUP BY 1 ORDER BY 1")
        for table in ("raw.orders", "gdp.order_lines", "kpi.net_revenue", "published.net_revenue")
    }

    def decision(by: str) -> dict[str, object]:
        return {
            "runConfigData": {
                "ops": {
                    "decide_on_contract": {
                        "config": {"contract": "erp.orders", "version": "2.0.0", "decision": "approve",
                                   "decided_by": by, "note": "renamed at the source"}
                    }
                }
            }
        }  # fmt: skip

    # someone who is not an owner or steward is refused: the run fails with the reason, nothing changes
    refused = _launch(server, "approve_contract", {}, **decision("eve"))
    assert server.finished(refused) == "FAILURE"
    assert json.loads(barecount("contracts", "blocked", "--json").stdout)[0]["fiscal_period"] == period

    approved = _launch(server, "approve_contract", {}, **decision("dana.owner"))
    assert server.finished(approved) == "SUCCESS"
    approval = {"barecount/approval": "erp.orders 2.0.0"}
    (resumed,) = wait_until("the sensor's run", lambda: server.runs(approval))  # type: ignore[misc]
    assert server.finished(str(resumed["runId"])) == "SUCCESS"
    tags = {t["key"]: t["value"] for t in resumed["tags"]}  # type: ignore[attr-defined]
    assert tags["barecount/contract_version"] == "2.0.0" and tags["dagster/partition"] == period
    assert json.loads(barecount("contracts", "blocked", "--json").stdout) == []

    # exactly the blocked period was rebuilt, from Raw to published, by the sensor's run; the others are untouched
    for table, rows in before.items():
        after = dict(_rows(warehouse, f"SELECT fiscal_period, list(DISTINCT x_run_id) FROM {table} GROUP BY 1"))
        assert after[period] == [resumed["runId"]], table
        assert {p: r for p, r in rows if p != period} == {p: r for p, r in after.items() if p != period}, table
    assert _rows(warehouse, f"SELECT DISTINCT x_contract_version FROM raw.orders WHERE fiscal_period = '{period}'") == [
        ("2.0.0",)
    ]
    kinds = [e["kind"] for e in _ledger("raw/orders", period)]
    assert kinds.index("block") < kinds.index("approval") < kinds.index("resumption"), kinds
    (resumption,) = [e for e in _ledger("raw/orders", period) if e["kind"] == "resumption"]
    assert resumption["facts"]["approval"] == "erp.orders 2.0.0"  # type: ignore[index]
    assert resumption["facts"]["approved_by"] == "dana.owner"  # type: ignore[index]

    # the same materialization launched again from the UI finds the work done: a recorded no-op, nothing rewritten
    kept = _rows(warehouse, f"SELECT * FROM gdp.order_lines WHERE fiscal_period = '{period}' ORDER BY ALL")
    selection = {"assetSelection": [{"path": [ORG, "gdp", "order_lines"]}, {"path": [ORG, "kpi", "net_revenue"]}]}
    again = _launch(server, "all_assets", {"dagster/partition": period}, selector=selection)
    assert server.finished(again) == "SUCCESS"
    for asset in ("gdp/order_lines", "kpi/net_revenue"):
        (noop,) = [e for e in _ledger(asset, period) if e["run_id"] == again]
        assert noop["kind"] == "noop" and str(resumed["runId"]) in str(noop["facts"]["reason"])  # type: ignore[index]
    assert _rows(warehouse, f"SELECT * FROM gdp.order_lines WHERE fiscal_period = '{period}' ORDER BY ALL") == kept
    assert barecount("ledger", "verify").returncode == 0


def test_after_a_rejection_the_period_stays_blocked_on_every_launch_path(
    loop: tuple[DagsterServer, ProjectPaths, str],
) -> None:
    server, paths, period = loop
    warehouse = paths.root / "data" / "acme" / "warehouse.duckdb"
    gdp = f"SELECT * FROM gdp.order_lines WHERE fiscal_period = '{period}' ORDER BY ALL"
    kept = _rows(warehouse, gdp)
    assert kept

    rejected = barecount("contracts", "reject", "erp.orders", "2.0.0", "--by", "sam.steward", "--note", "no")
    assert rejected.returncode == 0, rejected.stderr

    def said_so() -> bool:
        state = server.graphql(TICKS, {"selector": {**LOCATION, "sensorName": APPROVAL_SENSOR}})
        ticks = state["sensorOrError"]["sensorState"]["ticks"]  # type: ignore[index]
        return any("rejected by sam.steward" in (t["skipReason"] or "") for t in ticks)

    wait_until("the sensor to see the rejection", said_so, timeout=90)
    assert server.runs({"barecount/approval": "erp.orders 2.0.0"}) == []

    # the CLI: the period is not built downstream of the blocked stream, and the run says which contract blocks it
    cli = barecount("run", "--period", period, "--select", "gdp/orders", "--select", "gdp/order_lines")
    said = " ".join(cli.stderr.split())
    assert (
        cli.returncode == 1 and f"gdp/order_lines {period}" in said and "blocked by contract erp.orders 1.0.0" in said
    )

    # the UI's materialization of one partition, and a backfill of a range that includes it: each run fails, so
    # that the held period shows as failed, not materialized
    selection = {"assetSelection": [{"path": [ORG, "gdp", "order_lines"]}]}
    ui_run = _launch(server, "all_assets", {"dagster/partition": period}, selector=selection)
    assert server.finished(ui_run) == "FAILURE"
    previous = load_settings(paths).calendar.previous(period).key
    backfill = server.graphql(
        BACKFILL,
        {
            "params": {
                "assetSelection": [{"path": [ORG, "gdp", "order_lines"]}],
                "partitionNames": [previous, period],
                "tags": [
                    {"key": "barecount/reason", "value": "is the gate holding?"},
                    {"key": "barecount/requested_by", "value": "ops.lead"},
                ],
            }
        },
    )["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill  # type: ignore[index]

    def backfill_done() -> list[dict[str, object]] | None:
        found = server.graphql(BACKFILL_STATUS, {"id": backfill["backfillId"]})["partitionBackfillOrError"]  # type: ignore[index]
        runs = found["runs"]  # type: ignore[index]
        return runs if found["status"] != "REQUESTED" and runs and all(r["status"] in DONE for r in runs) else None  # type: ignore[index]

    backfill_runs = wait_until("the backfill", backfill_done)
    assert {r["status"] for r in backfill_runs} == {"FAILURE"}  # type: ignore[union-attr]
    materialized, failed = server.partition_statuses("gdp/order_lines")
    assert period in failed and period not in materialized and previous in materialized
    for run_id in [ui_run, *(str(r["runId"]) for r in backfill_runs)]:  # type: ignore[union-attr]
        held = [e for e in _ledger("gdp/order_lines", period) if e["run_id"] == run_id]
        assert [e["kind"] for e in held] == ["hold"], run_id
        assert "blocked by contract erp.orders 1.0.0" in str(held[0]["facts"]["reason"])  # type: ignore[index]
    assert _rows(warehouse, gdp) == kept

    # the UI's backfill goes on the record once it has finished: who, the periods, why, its runs, the outcome
    def recorded() -> dict[str, object] | None:
        entries = json.loads(barecount("ledger", "show", "--limit", "0", "--json").stdout)
        found = [e for e in entries if e["kind"] == "backfill" and e["run_id"] == backfill["backfillId"]]  # type: ignore[index]
        return found[0]["facts"] if found else None  # type: ignore[no-any-return]

    facts = wait_until("the backfill on the record", recorded, timeout=90)
    assert facts["state"] == "failed" and facts["launched_from"] == "ui"  # type: ignore[index]
    assert (facts["requested_by"], facts["reason"]) == ("ops.lead", "is the gate holding?")  # type: ignore[index]
    assert (facts["first_period"], facts["last_period"], facts["periods"]) == (previous, period, 2)  # type: ignore[index]
    assert {r["run_id"] for r in facts["runs"]} == {r["runId"] for r in backfill_runs}  # type: ignore[index,union-attr]
    assert [b["fiscal_period"] for b in json.loads(barecount("contracts", "blocked", "--json").stdout)] == [period]
    assert barecount("ledger", "verify").returncode == 0
