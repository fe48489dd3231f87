"""Open the Dagster UI and see the same graph the demo materializes."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import ARTIFACTS, DagsterServer

pytestmark = pytest.mark.ui

ASSET_NODES = "{ assetNodes { assetKey { path } groupName isPartitioned partitionKeys } }"


def test_graph_is_served_with_fiscal_partitions(dagster_server: DagsterServer) -> None:
    nodes = dagster_server.graphql(ASSET_NODES)["assetNodes"]
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}  # type: ignore[union-attr,index]
    assert set(by_key) == {
        "raw/orders",
        "raw/lineitem",
        "raw/customer",
        "raw/nation",
        "raw/region",
        "raw/part",
        "raw/supplier",
        "raw/partsupp",
        "raw/crm_customers",
        "gdp/order_lines",
        "kpi/net_revenue",
    }
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
