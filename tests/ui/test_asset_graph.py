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
        "gdp/order_lines",
        "kpi/net_revenue",
    }
    keys = by_key["raw/orders"]["partitionKeys"]
    assert keys[0] == "FY1991-P01" and "FY1995-P03" in keys and keys == sorted(keys)
    assert by_key["raw/customer"]["isPartitioned"] is False


def test_asset_lineage_page_shows_every_layer(dagster_server: DagsterServer, page: Page) -> None:
    page.goto(f"{dagster_server.url}/asset-groups")
    for name in ("order_lines", "net_revenue", "lineitem", "orders"):
        expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=60_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "asset-graph.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot.resolve()}")
