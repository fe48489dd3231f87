"""The flows of a day in the UI, driven in chromium against `dagster dev` with its daemon.

They run in the order a person would do them on a new warehouse: backfill recent periods of the whole
graph, materialize one more period of a raw asset from its page, read that asset's checks and evidence,
launch a run while a CLI run killed mid-way is still STARTED, then meet schema drift in the newest period
and approve it from the launchpad. Each flow saves a screenshot per step under test-artifacts/ui/ (the
paths are printed) and one on failure.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Locator, Page, expect

from barecount.config.dead_runs import PROCESS_TAG
from barecount.config.project import DAGSTER_HOME_ENV, PROJECT_ROOT_ENV, WAREHOUSE_ENV
from barecount.devtools.sample_data import generate_sample_data
from barecount.warehouse.connection import WarehouseFile
from tests.cli import BARECOUNT
from tests.conftest import TEST_SCALE
from tests.dagster_server import ORG, DagsterServer, wait_until
from tests.ui.conftest import ServedProject, screenshot

pytestmark = [pytest.mark.ui, pytest.mark.long]

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill {
      status
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed
          }
          ... on UnpartitionedAssetStatus { assetKey { path } materialized failed }
        }
      }
    }
  }
}
"""
APPROVAL = "erp.orders 2.0.0"
LONG = 60_000  # ms: the first load of a page compiles the UI and reads the code location


def _backfilled_periods(project: ServedProject) -> list[str]:
    """The two periods before the newest: the drift flow needs the period before it built."""
    before = project.calendar.previous(project.newest).key
    return [project.calendar.previous(before).key, before]


def _one_more_period(project: ServedProject) -> str:
    return project.calendar.previous(_backfilled_periods(project)[0]).key


def _old_periods(project: ServedProject) -> list[str]:
    """The first forty periods of the sample (keys sort in calendar order): no other flow rebuilds them."""
    return project.periods[:40]


def _anomaly_period(project: ServedProject) -> str:
    """A period no other flow touches: past the first forty, before the backfilled ones."""
    return project.periods[60]


def _cli_env(server: DagsterServer, project: ServedProject) -> dict[str, str]:
    """`barecount` on the served project's warehouse and Dagster instance."""
    return {
        **os.environ,
        DAGSTER_HOME_ENV: str(server.home),
        WAREHOUSE_ENV: str(server.warehouse),
        PROJECT_ROOT_ENV: str(project.paths.root),
    }


def _launch_dialog(page: Page, title: str) -> Locator:
    dialog = page.locator(".dagster-dialog")
    expect(dialog.get_by_text(title)).to_be_visible(timeout=LONG)
    return dialog


def _choose_periods(page: Page, dialog: Locator, periods: list[str]) -> None:
    """Pick fiscal periods in the launch dialog's partition selector, as a person does: filter, tick."""
    dialog.get_by_text("Select a partition or create one").click()
    popover = page.locator(".dagster-popover")
    for period in periods:
        popover.locator("input:not([type=checkbox])").first.fill(period)
        popover.get_by_text(period, exact=True).first.click()
    page.keyboard.press("Escape")
    expect(dialog.get_by_text(f"{len(periods)} partition{'s' if len(periods) > 1 else ''}", exact=True)).to_be_visible()


def _launched_run(page: Page, server: DagsterServer) -> str:
    """The run a launch button started, from the toast that says so (it shows the id's first 8 characters)."""
    toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
    expect(toast).to_be_visible()
    short = re.search(r"Launched run ([0-9a-f]{8})", toast.inner_text()).group(1)  # type: ignore[union-attr]
    (run_id,) = [str(r["runId"]) for r in server.runs() if str(r["runId"]).startswith(short)]
    return run_id


def _materialize_from_asset_page(page: Page, server: DagsterServer, asset: str, period: str, shot: str) -> str:
    page.goto(f"{server.url}/assets/{ORG}/{asset}")
    page.get_by_role("button", name="Materialize…").click()
    dialog = _launch_dialog(page, f"Launch runs to materialize {ORG} / {asset.replace('/', ' / ')}")
    _choose_periods(page, dialog, [period])
    screenshot(page, shot)
    dialog.get_by_role("button", name="Launch 1 run").click()
    return _launched_run(page, server)


def _partition_page(page: Page, url: str, asset: str, period: str) -> None:
    """The asset's Partitions tab with `period` picked through the filter (the list shows a window of periods)."""
    page.goto(f"{url}/assets/{ORG}/{asset}?view=partitions")
    page.get_by_placeholder("Filter by name…").fill(period, timeout=LONG)
    page.get_by_text(period, exact=True).first.click()


def _partitions_built_or_failed(page: Page, url: str, period: str, failed: str, events: int) -> None:
    """raw/orders' partitions tab with `period` selected: `failed` is the Failed filter's label (with its
    count), `events` the number of materializations the period shows."""
    _partition_page(page, url, "raw/orders", period)
    expect(page.get_by_text(failed, exact=True)).to_be_visible(timeout=LONG)
    expect(page.get_by_text(f"View all historical events ({events})")).to_be_visible()
    page.wait_for_timeout(1000)  # the period's details load after its list entry


def test_a_complete_demo_shows_every_period_of_every_asset_materialized(
    dagster_server: DagsterServer, served_project: ServedProject, page: Page
) -> None:
    """The partitions are the periods the sources cover, not every period of the calendar's years."""
    periods = set(served_project.periods)
    for asset in ("raw/orders", "raw/lineitem", "gdp/orders", "gdp/order_lines", "kpi/net_revenue"):
        assert dagster_server.partition_statuses(asset) == (periods, set()), asset
    page.goto(f"{dagster_server.url}/assets/{ORG}/kpi/net_revenue?view=partitions")
    expect(page.get_by_text(f"Materialized ({len(periods)})", exact=True)).to_be_visible(timeout=LONG)
    expect(page.get_by_text("Missing (0)", exact=True)).to_be_visible()
    expect(page.get_by_text("Failed (0)", exact=True)).to_be_visible()
    screenshot(page, "demo-1-every-partition-materialized")


def test_a_kpi_s_value_is_charted_over_the_fiscal_periods(
    dagster_server: DagsterServer, served_project: ServedProject, page: Page
) -> None:
    newest = served_project.periods[-2]
    page.goto(f"{dagster_server.url}/assets/{ORG}/kpi/net_revenue?view=events&partition={newest}")
    expect(page.get_by_text("Net revenue (USD)", exact=True).first).to_be_visible(timeout=LONG)
    expect(page.get_by_text("thresholds", exact=True).first).to_be_visible()
    screenshot(page, "kpi-1-value-in-metadata")
    # the overview's metadata, as plots by partition: the value's series over the periods
    page.goto(f"{dagster_server.url}/assets/{ORG}/kpi/net_revenue")
    page.get_by_role("button", name="Plots").first.click(timeout=LONG)
    page.get_by_role("button", name="Partitions").first.click()
    expect(page.get_by_text("Net revenue (USD)", exact=True).first).to_be_visible(timeout=LONG)
    expect(page.locator("canvas").first).to_be_visible()  # the chart of the series
    page.wait_for_timeout(1000)  # the chart draws after its frame
    screenshot(page, "kpi-2-plots", full_page=True)


def test_a_backfill_of_a_range_from_the_ui_succeeds_for_every_partition(
    dagster_server: DagsterServer, served_project: ServedProject, page: Page
) -> None:
    periods = _backfilled_periods(served_project)
    page.goto(f"{dagster_server.url}/asset-groups")
    page.locator(".CodeMirror").first.click()  # the selection input: the organisation's code location, its graph
    page.keyboard.type(f"code_location:{ORG}")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Materialize all…").click()
    dialog = _launch_dialog(page, "Launch runs to materialize 34 assets")
    _choose_periods(page, dialog, periods)
    screenshot(page, "backfill-1-launch-dialog")
    dialog.get_by_role("button", name="Launch backfill").click()
    toast = page.get_by_text(re.compile(r"Created backfill \w+"))
    expect(toast).to_be_visible()
    backfill_id = toast.inner_text().split()[-1]

    def finished() -> dict[str, object] | None:
        found = dagster_server.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        return found if found["status"] not in ("REQUESTED", "CANCELING") else None  # type: ignore[index,return-value]

    backfill = wait_until(f"backfill {backfill_id}", finished, timeout=600)
    page.goto(f"{dagster_server.url}/runs/b/{backfill_id}")
    expect(page.get_by_text("Succeeded").first).to_be_visible(timeout=LONG)
    for period in periods:
        expect(page.get_by_text(period, exact=True).first).to_be_visible()
    screenshot(page, "backfill-2-succeeded", full_page=True)

    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    statuses = backfill["assetBackfillData"]["assetBackfillStatuses"]  # type: ignore[index]
    assert len(statuses) == 34
    for status in statuses:  # every asset of the graph, every partition it was asked for
        asset = "/".join(status["assetKey"]["path"][1:])
        if "numPartitionsTargeted" in status:
            assert status["numPartitionsTargeted"] >= len(periods), asset
            assert status["numPartitionsMaterialized"] == status["numPartitionsTargeted"], asset
            assert status["numPartitionsFailed"] == 0, asset
            materialized, failed = dagster_server.partition_statuses(asset)
            assert set(periods) <= materialized and not failed, asset
        else:
            assert status["materialized"] and not status["failed"], asset


def test_materialize_one_fiscal_period_of_a_raw_asset_from_its_page(
    dagster_server: DagsterServer, served_project: ServedProject, page: Page
) -> None:
    period = _one_more_period(served_project)
    run_id = _materialize_from_asset_page(page, dagster_server, "raw/orders", period, "materialize-1-dialog")
    assert dagster_server.finished(run_id) == "SUCCESS"
    page.goto(f"{dagster_server.url}/runs/{run_id}")
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=LONG)
    expect(page.get_by_text(period).first).to_be_visible()
    expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()  # the event log has loaded
    screenshot(page, "materialize-2-run-succeeded")
    assert period in dagster_server.partition_statuses("raw/orders")[0]


def test_a_cli_run_killed_mid_way_does_not_hold_the_queue_for_a_run_from_the_ui(
    dagster_server: DagsterServer, served_project: ServedProject, page: Page
) -> None:
    """One run at a time (QueuedRunCoordinator): the killed run must not stay STARTED, or the UI's run waits
    behind it for good. Nobody cancels anything: the daemon's dead_runs_sensor fails the dead run."""
    periods = _old_periods(served_project)
    cli = subprocess.Popen(
        # raw/lineitem: the periods of the killed run show as failed, and the drift flow counts raw/orders';
        # forced, as the demo built them: the run has work to be killed in
        [BARECOUNT, "run", "--force", "--select", "raw/lineitem", "--from", periods[0], "--to", periods[-1]],
        env=_cli_env(dagster_server, served_project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def started_by_cli() -> str | None:
        for run in dagster_server.runs():
            tags = {t["key"]: t["value"] for t in run["tags"]}  # type: ignore[union-attr]
            if run["status"] == "STARTED" and tags.get(PROCESS_TAG, "").split()[1:2] == [str(cli.pid)]:
                return str(run["runId"])
        return None

    try:
        deadline = time.monotonic() + 120
        while (killed := started_by_cli()) is None and cli.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait()
    assert killed is not None, "the CLI run ended before it was seen STARTED"
    assert dagster_server.runs(run_ids=[killed])[0]["status"] == "STARTED"  # as the kill left it

    period = served_project.calendar.previous(_one_more_period(served_project)).key
    launched = _materialize_from_asset_page(page, dagster_server, "raw/orders", period, "killed-1-dialog")
    assert dagster_server.finished(launched) == "SUCCESS"
    assert dagster_server.runs(run_ids=[killed])[0]["status"] == "FAILURE"
    page.goto(f"{dagster_server.url}/runs/{killed}")
    expect(page.get_by_text(re.compile("process gone")).first).to_be_visible(timeout=LONG)
    screenshot(page, "killed-2-run-failed-process-gone")


def test_an_anomalous_period_is_not_shown_as_published(
    dagster_server: DagsterServer, served_project: ServedProject, page: Page
) -> None:
    """Prices tripled in one period: its KPIs fail their thresholds and the published period is shown as failed,
    inside a run of three periods, while the periods around it stay materialized. Its line items came decades
    late: raw/lineitem's freshness check says so for that period; and net revenue's anomaly check flags it."""
    anomaly = _anomaly_period(served_project)
    around = [served_project.calendar.previous(anomaly).key, anomaly, served_project.calendar.next(anomaly).key]
    generate_sample_data(
        served_project.sources, TEST_SCALE, seed=0, calendar=served_project.calendar, anomalies=[anomaly]
    )
    os.utime(served_project.sources / "erp" / "lineitem" / f"{anomaly}.parquet")  # delivered now
    try:
        ran = subprocess.run(
            [BARECOUNT, "run", "--from", around[0], "--to", around[-1]],
            env=_cli_env(dagster_server, served_project),
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:  # the flows after this one read clean data
        generate_sample_data(served_project.sources, TEST_SCALE, seed=0, calendar=served_project.calendar)
    assert ran.returncode == 1 and "not published" in ran.stdout + ran.stderr, ran.stdout + ran.stderr
    materialized, failed = dagster_server.partition_statuses("published/net_revenue")
    assert anomaly in failed and anomaly not in materialized
    assert {around[0], around[-1]} <= materialized
    assert anomaly in dagster_server.partition_statuses("kpi/net_revenue")[0]  # computed, judged, not published

    _partition_page(page, dagster_server.url, "published/net_revenue", anomaly)
    expect(page.get_by_text("Failed (1)", exact=True)).to_be_visible(timeout=LONG)
    expect(page.get_by_text(f"Materialized ({len(served_project.periods) - 1})", exact=True)).to_be_visible()
    # the period's page: the run failed and did not materialize it, and why (the observation's held_back)
    expect(page.get_by_text(re.compile("failed, and did not materialize this asset")).first).to_be_visible(timeout=LONG)
    expect(page.get_by_text("held_back", exact=True).first).to_be_visible()
    expect(page.get_by_text(re.compile("kpi/net_revenue failed thresholds")).first).to_be_visible()
    screenshot(page, "anomaly-1-published-period-failed", full_page=True)

    # the warnings: a late extract (the run built and published its neighbours all the same) and an anomaly
    page.goto(f"{dagster_server.url}/assets/{ORG}/raw/lineitem?view=checks")
    page.get_by_text("freshness", exact=True).first.click(timeout=LONG)
    expect(page.get_by_text(f"0 of 1 period(s) landed within the latency SLA; not {anomaly}")).to_be_visible(
        timeout=LONG
    )
    screenshot(page, "anomaly-2-freshness-late", full_page=True)
    page.goto(f"{dagster_server.url}/assets/{ORG}/kpi/net_revenue?view=checks")
    page.get_by_text("anomaly", exact=True).first.click(timeout=LONG)
    expect(
        page.get_by_text(re.compile(f"of [23] period.s. within .5 robust deviations .*; not {anomaly}"))
    ).to_be_visible(timeout=LONG)
    page.get_by_text("[Show Markdown]").first.click()  # failing_partitions: the period and its narrative
    expect(page.get_by_text(re.compile(f"Net revenue in {anomaly} is .* robust deviations above")).first).to_be_visible(
        timeout=LONG
    )
    screenshot(page, "anomaly-3-kpi-scored", full_page=True)


def test_an_asset_page_shows_its_checks_and_evidence(
    dagster_server: DagsterServer, served_project: ServedProject, page: Page
) -> None:
    """After the flows above: the UI's materialization of one period found it unchanged, and the anomaly flow
    rebuilt its period from a changed extract."""
    period, rebuilt = _one_more_period(served_project), _anomaly_period(served_project)
    assert dagster_server.warehouse is not None
    # the daemon's sensors open the file too: read it as the product does, waiting while it is busy
    with WarehouseFile(str(dagster_server.warehouse)).get_connection(read_only=True) as conn:
        latest = (
            "SELECT entry_hash, facts->>'rows_landed' FROM evidence.ledger WHERE asset = ? AND partition = ? "
            "AND kind = 'materialization' ORDER BY seq DESC LIMIT 1"
        )
        ledger_hash, rows = conn.execute(latest, ["raw/orders", period]).fetchone()  # type: ignore[misc]
        rebuilt_hash, _ = conn.execute(latest, ["raw/lineitem", rebuilt]).fetchone()  # type: ignore[misc]

    # the UI's materialization found the period done by the demo: its rows, and the build that wrote them
    _partition_page(page, dagster_server.url, "raw/orders", period)
    for shown in ("dagster/row_count", "unchanged_since_run", "same_as_ledger_hash"):
        expect(page.get_by_text(shown, exact=True).first).to_be_visible(timeout=LONG)
    expect(page.get_by_text(ledger_hash, exact=True).first).to_be_visible()
    expect(page.get_by_text(f"{int(rows):,}", exact=True).first).to_be_visible()
    screenshot(page, "evidence-1-unchanged", full_page=True)
    # a period built in its latest run (its prices changed): row counts, the contract version it was read under,
    # its ledger entry
    _partition_page(page, dagster_server.url, "raw/lineitem", rebuilt)
    for shown in ("rows_in", "rows_quarantined", "contract_version", "ledger_hash"):
        expect(page.get_by_text(shown, exact=True).first).to_be_visible(timeout=LONG)
    expect(page.get_by_text("erp.lineitem 1.0.0", exact=True).first).to_be_visible()
    expect(page.get_by_text(rebuilt_hash, exact=True).first).to_be_visible()
    screenshot(page, "evidence-2-materialization", full_page=True)

    # its three gates, each saying what it checks
    page.goto(f"{dagster_server.url}/assets/{ORG}/raw/orders?view=checks")
    for gate in ("schema_approved", "rows_accounted", "conforms_to_contract"):
        expect(page.get_by_text(gate, exact=True).first).to_be_visible(timeout=LONG)
    page.get_by_text("conforms_to_contract", exact=True).first.click()
    expect(page.get_by_text("Version 1.0.0: key (o_orderkey) unique").first).to_be_visible()
    expect(page.get_by_text("Passed").first).to_be_visible()
    screenshot(page, "evidence-3-contract-check")
    # rows in = landed + quarantined, judged on the period the anomaly's run landed anew
    page.goto(f"{dagster_server.url}/assets/{ORG}/raw/lineitem?view=checks")
    page.get_by_text("rows_accounted", exact=True).first.click(timeout=LONG)
    expect(page.get_by_text("1 of 1 period(s) fully accounted for").first).to_be_visible(timeout=LONG)
    screenshot(page, "evidence-4-rows-accounted")


def test_drift_blocks_a_period_until_an_approval_from_the_launchpad_resumes_it(
    dagster_server: DagsterServer, served_project: ServedProject, page: Page
) -> None:
    newest, url = served_project.newest, dagster_server.url
    drifted = generate_sample_data(
        served_project.sources, TEST_SCALE, seed=0, calendar=served_project.calendar, drift=True
    )
    assert drifted.scenarios.drift is not None and drifted.scenarios.drift.period == newest

    # the newest period, materialized from the asset's page, is blocked: the run fails and says why
    blocked_run = _materialize_from_asset_page(page, dagster_server, "raw/orders", newest, "drift-1-dialog")
    assert dagster_server.finished(blocked_run) == "FAILURE"
    page.goto(f"{url}/runs/{blocked_run}")
    expect(page.get_by_text("Failure", exact=True).first).to_be_visible(timeout=LONG)
    expect(page.get_by_text(re.compile("erp.orders 1.0.0 blocked by schema drift")).first).to_be_visible()
    screenshot(page, "drift-2-run-failed")
    assert newest in dagster_server.partition_statuses("raw/orders")[1]  # shown as failed, not as materialized

    # the asset's page: the failed partition, and the schema gate naming it and the change
    _partitions_built_or_failed(page, url, newest, "Failed (1)", events=1)  # the demo's build
    screenshot(page, "drift-3-blocked-partition")
    # the schema gate's verdict on the run names the period and what changed (read from the instance: the Checks
    # tab shows "Not evaluated" after a run that landed nothing of the asset, a known gap)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(DAGSTER_HOME_ENV, str(dagster_server.home))  # the project's dagster.yaml reads it
        with dg.DagsterInstance.from_config(str(dagster_server.home)) as instance:
            logs = instance.all_logs(blocked_run, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        (gate,) = [
            e.dagster_event.event_specific_data
            for e in logs
            if e.dagster_event and e.dagster_event.event_specific_data.check_name == "schema_approved"  # type: ignore[union-attr]
        ]
    assert not gate.passed and f"1 of 1 period(s) blocked by schema drift: {newest}" in str(gate.description)  # type: ignore[union-attr]
    assert "o_orderpriority" in str(gate.metadata["drift"].value)  # type: ignore[union-attr]

    # the data owner approves the proposed version from the approval job's launchpad
    page.goto(f"{url}/locations/{ORG}/jobs/approve_contract/playground")
    editor = page.locator(".CodeMirror")
    expect(editor).to_be_visible(timeout=LONG)
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(
        "ops: {decide_on_contract: {config: {contract: erp.orders, version: 2.0.0, decision: approve, "
        "decided_by: dana.owner, note: renamed at the source}}}"
    )
    expect(page.get_by_text("No errors")).to_be_visible()
    page.keyboard.press("Home")  # the line's start in view
    screenshot(page, "drift-6-launchpad")
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"), timeout=LONG)
    approval_run = page.url.rstrip("/").split("/")[-1]
    assert dagster_server.finished(approval_run) == "SUCCESS"

    # the sensor sees the approval and runs exactly the blocked period, Raw to published: it turns green
    (resumed,) = wait_until("the sensor's run", lambda: dagster_server.runs({"barecount/approval": APPROVAL}))
    assert dagster_server.finished(str(resumed["runId"]), timeout=400) == "SUCCESS"
    assert {t["key"]: t["value"] for t in resumed["tags"]}["dagster/partition"] == newest  # type: ignore[attr-defined,index]
    for asset in ("raw/orders", "raw/lineitem", "gdp/order_lines", "kpi/net_revenue", "published/net_revenue"):
        materialized, failed = dagster_server.partition_statuses(asset)
        assert newest in materialized and newest not in failed, asset
    _partitions_built_or_failed(page, url, newest, "Failed (0)", events=2)
    screenshot(page, "drift-7-resumed-partition")
    page.goto(f"{url}/locations/{ORG}/sensors/contract_approval_sensor")
    expect(page.get_by_text(str(resumed["runId"])[:8]).first).to_be_visible(timeout=LONG)
    screenshot(page, "drift-8-sensor-run")
    assert Path(served_project.paths.contracts / "erp" / "orders" / "2.0.0.yaml").is_file()
