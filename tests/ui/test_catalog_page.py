"""The dataset catalog: `barecount catalog --json` lists every asset of the graph with the owner and code version
the Dagster UI shows, and `--html` writes one static page that chromium renders with its lineage graph."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions
from barecount.defs.translator import asset_ref
from tests.cli import barecount
from tests.ui.conftest import screenshot


def test_the_catalog_lists_every_asset_and_its_page_shows_the_lineage(
    built_project: ProjectPaths, tmp_path: Path, page: Page
) -> None:
    listed = barecount("catalog", "--json")
    assert listed.returncode == 0, listed.stderr
    datasets = {d["ref"]: d for d in json.loads(listed.stdout)["datasets"]}
    specs = build_definitions(load_settings(built_project)).resolve_all_asset_specs()
    graph = {asset_ref(s.key): s for s in specs}
    assert set(datasets) == set(graph)
    for ref, spec in graph.items():
        assert [datasets[ref]["owner"]] == list(spec.owners), ref
        assert datasets[ref]["code_version"] == spec.code_version, ref
        assert sorted(datasets[ref]["upstream"]) == sorted(asset_ref(d.asset_key) for d in spec.deps), ref
    orders = datasets["raw/orders"]
    assert orders["version"] == "erp.orders 1.0.0" and orders["last_period"] and orders["rows"] > 0
    assert "gdp/order_lines" in orders["downstream"]
    customers = {c["name"]: c for c in datasets["gdp/customers"]["columns"]}
    assert any(c["pii"] in ("hash", "redact") for c in customers.values()), customers
    assert datasets["published/net_revenue"]["version"] == "net_revenue 1.0.0"

    html = tmp_path / "catalog.html"
    written = barecount("catalog", "--html", str(html))
    assert written.returncode == 0, written.stderr
    page.goto(html.as_uri())
    graph_shown = page.locator("svg#lineage")
    graph_shown.wait_for(state="visible")
    assert graph_shown.bounding_box()["width"] > 600  # type: ignore[index]
    assert page.locator("svg#lineage g.node").count() == len(datasets)
    assert page.locator("svg#lineage path.edge").count() == sum(len(d["upstream"]) for d in datasets.values())
    assert page.locator("table#datasets tbody tr").count() == len(datasets)
    assert page.locator("svg#lineage g.node[data-ref='published/net_revenue']").is_visible()
    screenshot(page, "catalog-page", full_page=True)
