"""Open the Dagster UI and see the graph the demo materializes, laid out for the people who use it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.dagster_server import ORG, DagsterServer
from tests.definitions.test_definitions import EXPECTED
from tests.ui.conftest import ServedProject, screenshot

pytestmark = pytest.mark.ui

ASSET_NODES = """{ assetNodes { assetKey { path } groupName isPartitioned partitionKeys
  owners { ... on TeamAssetOwner { team } } tags { key value } kinds opVersion description } }"""
SENSORS = """{ sensorsOrError(repositorySelector: {repositoryLocationName: "acme",
  repositoryName: "__repository__"}) { ... on Sensors { results { name description sensorState { status } } } } }"""


def test_graph_is_served_by_layer_with_fiscal_partitions(
    dagster_server: DagsterServer, served_project: ServedProject
) -> None:
    nodes = dagster_server.graphql(ASSET_NODES)["assetNodes"]
    by_org: dict[str, dict[str, dict[str, object]]] = {}
    for node in nodes:  # type: ignore[union-attr]
        org, *ref = node["assetKey"]["path"]  # type: ignore[index]
        by_org.setdefault(org, {})["/".join(ref)] = node  # type: ignore[index]
    assert set(by_org) == {"acme", "globex"}  # a code location per organisation, the same graph in each
    assert set(by_org["globex"]) == set(EXPECTED)
    by_key = by_org[ORG]
    assert set(by_key) == set(EXPECTED)  # the same graph the Definitions declare
    for key, node in by_key.items():
        layer = key.split("/")[0]
        assert node["groupName"] == layer, key  # type: ignore[index]
        assert node["owners"] and node["description"] and node["opVersion"], key  # type: ignore[index]
        assert "duckdb" in node["kinds"] and "domain" in {t["key"] for t in node["tags"]}, key  # type: ignore[index,union-attr]
    keys = by_key["raw/orders"]["partitionKeys"]
    assert keys == served_project.periods and "FY1995-P03" in keys
    assert by_key["raw/customer"]["isPartitioned"] is False
    sensors = dagster_server.graphql(SENSORS)["sensorsOrError"]["results"]  # type: ignore[index]
    assert {s["name"]: s["sensorState"]["status"] for s in sensors} == {  # type: ignore[index,union-attr]
        "contract_approval_sensor": "RUNNING",
        "backfill_ledger_sensor": "RUNNING",
        "dead_runs_sensor": "RUNNING",
        "alert_sensor": "RUNNING",
    }
    assert all(s["description"] for s in sensors)  # type: ignore[union-attr,index]


def test_lineage_shows_the_layers(dagster_server: DagsterServer, page: Page) -> None:
    page.goto(f"{dagster_server.url}/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=60_000)
    for group in ("raw", "gdp", "kpi", "published"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    screenshot(page, "asset-lineage")


def test_asset_page_shows_the_model_and_its_fiscal_partitions(
    dagster_server: DagsterServer, served_project: ServedProject, page: Page
) -> None:
    periods = served_project.periods
    page.goto(f"{dagster_server.url}/assets/{ORG}/gdp/order_lines")
    expect(page.get_by_text("One row per sales order line").first).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="Partitions").click()
    expect(page.get_by_text(f"{len(periods)} Partitions Selected")).to_be_visible()
    expect(page.get_by_text(periods[0], exact=True).first).to_be_visible()
    page.get_by_placeholder("Filter by name").fill("FY1995")
    expect(page.get_by_text("FY1995-P03", exact=True).first).to_be_visible()
    screenshot(page, "order-lines-partitions")


def test_the_sensor_is_listed_with_what_it_does(dagster_server: DagsterServer, page: Page) -> None:
    page.goto(f"{dagster_server.url}/locations/{ORG}/sensors/contract_approval_sensor")
    expect(page.get_by_text("Resumes what schema drift blocked").first).to_be_visible(timeout=60_000)
    screenshot(page, "approval-sensor")


def test_the_calendar_schedules_are_listed_with_their_rule_and_next_tick(
    dagster_server: DagsterServer, page: Page
) -> None:
    page.goto(f"{dagster_server.url}/locations/{ORG}/schedules/close_of_period")
    expect(page.get_by_text("working day 3 after a period ends").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Next tick").first).to_be_visible()
    expect(page.get_by_text("0 6 * * *").first).to_be_visible()
    screenshot(page, "close-of-period-schedule")
