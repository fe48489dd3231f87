"""Open the Dagster UI and see the same graph the demo materializes."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Page, expect

from barecount.assembly import build_definitions
from barecount.periods import source_periods
from barecount.project import DAGSTER_HOME_ENV, WAREHOUSE_ENV
from barecount.runner import run_partitions
from tests.conftest import REPO, settings_for
from tests.dagster_server import DagsterServer
from tests.definitions.test_definitions import EXPECTED
from tests.ui.conftest import ARTIFACTS

pytestmark = pytest.mark.ui

ASSET_NODES = "{ assetNodes { assetKey { path } groupName isPartitioned partitionKeys } }"


def test_graph_is_served_with_fiscal_partitions(dagster_server: DagsterServer) -> None:
    nodes = dagster_server.graphql(ASSET_NODES)["assetNodes"]
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}  # type: ignore[union-attr,index]
    assert set(by_key) == set(EXPECTED)  # the same graph the Definitions declare
    keys = by_key["raw/orders"]["partitionKeys"]
    assert keys[0] == "FY1991-P01" and "FY1995-P03" in keys and keys == sorted(keys)
    assert by_key["raw/customer"]["isPartitioned"] is False


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot.resolve()}")


def test_lineage_shows_the_layers_in_order(dagster_server: DagsterServer, page: Page) -> None:
    page.goto(f"{dagster_server.url}/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=60_000)
    for group in ("raw", "gdp", "kpi"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    _screenshot(page, "asset-lineage")


def test_asset_page_shows_the_model_and_its_fiscal_partitions(dagster_server: DagsterServer, page: Page) -> None:
    page.goto(f"{dagster_server.url}/assets/gdp/order_lines")
    expect(page.get_by_text("One row per sales order line").first).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="Partitions").click()
    expect(page.get_by_text("444 Partitions Selected")).to_be_visible()
    expect(page.get_by_text("FY1991-P01", exact=True).first).to_be_visible()
    page.get_by_placeholder("Filter by name").fill("FY1995")
    expect(page.get_by_text("FY1995-P03", exact=True).first).to_be_visible()
    _screenshot(page, "order-lines-partitions")


def test_the_gates_of_a_raw_asset_show_their_results(
    dagster_server: DagsterServer, page: Page, sample_sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a run in the server's own instance and warehouse, as `barecount run` would make it
    monkeypatch.setenv(WAREHOUSE_ENV, str(dagster_server.warehouse))
    monkeypatch.setenv(DAGSTER_HOME_ENV, str(dagster_server.home))  # the project's dagster.yaml stores under it
    settings = settings_for(REPO, sample_sources)
    with dg.DagsterInstance.from_config(str(dagster_server.home)) as instance:
        outcome = run_partitions(build_definitions(settings), instance, source_periods(settings)[10:12])
    assert outcome.success, outcome.failure
    page.goto(f"{dagster_server.url}/assets/raw/orders?view=checks")
    for gate in ("rows_accounted", "conforms_to_contract"):
        expect(page.get_by_text(gate, exact=True).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Passed").first).to_be_visible()
    _screenshot(page, "raw-orders-checks")
    page.get_by_text("rows_accounted", exact=True).first.click()
    expect(page.get_by_text("2 of 2 period(s) fully accounted for").first).to_be_visible()
    _screenshot(page, "raw-orders-rows-accounted")
