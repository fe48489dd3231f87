"""The project's Definitions: what the UI shows, loadable by Dagster's own tooling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions
from barecount.defs.runner import resolve_selection
from barecount.defs.translator import asset_ref
from barecount.errors import UsageError

EXPECTED = {
    "raw/orders": ("raw", True, ["raw"]),
    "raw/lineitem": ("raw", True, []),
    "raw/customer": ("raw", False, []),
    "raw/nation": ("raw", False, []),
    "raw/region": ("raw", False, []),
    "raw/part": ("raw", False, []),
    "raw/supplier": ("raw", False, []),
    "raw/partsupp": ("raw", False, []),
    "raw/crm_customers": ("raw", False, []),
    "gdp/order_lines": ("gdp", True, []),
    "gdp/orders": ("gdp", True, []),
    "gdp/customers": ("gdp", False, []),
    "gdp/parts": ("gdp", False, []),
    "gdp/suppliers": ("gdp", False, []),
    "kpi/net_revenue": ("kpi", True, []),
    "published/net_revenue": ("published", True, []),
    "kpi/order_count": ("kpi", True, []),
    "published/order_count": ("published", True, []),
    "kpi/average_order_value": ("kpi", True, []),
    "published/average_order_value": ("published", True, []),
    "kpi/discount_revenue": ("kpi", True, []),
    "published/discount_revenue": ("published", True, []),
    "kpi/return_rate": ("kpi", True, []),
    "published/return_rate": ("published", True, []),
    "kpi/on_time_delivery_rate": ("kpi", True, []),
    "published/on_time_delivery_rate": ("published", True, []),
    "kpi/gross_profit": ("kpi", True, []),
    "published/gross_profit": ("published", True, []),
    "kpi/pricing_summary": ("kpi", True, []),
    "published/pricing_summary": ("published", True, []),
    "kpi/revenue_per_working_day": ("kpi", True, []),
    "published/revenue_per_working_day": ("published", True, []),
    "calendar/fiscal_periods": ("calendar", False, []),
    "calendar/fiscal_days": ("calendar", False, []),
}


def test_assets_groups_partitions_and_deps(repo_paths: ProjectPaths) -> None:
    settings = load_settings(repo_paths, "local")
    defs = build_definitions(settings)
    specs = {asset_ref(s.key): s for s in defs.resolve_all_asset_specs()}
    assert set(specs) == set(EXPECTED)
    assert {s.key.path[0] for s in defs.resolve_all_asset_specs()} == {"acme"}  # the organisation leads every key
    for ref, (group, partitioned, _) in EXPECTED.items():
        spec = specs[ref]
        assert spec.group_name == group, ref
        assert (spec.partitions_def is not None) == partitioned, ref
        assert spec.owners and spec.description and spec.code_version, ref
        assert spec.tags.get("domain"), ref
    assert {asset_ref(d.asset_key) for d in specs["gdp/order_lines"].deps} == {
        "raw/lineitem",
        "raw/orders",
        "raw/partsupp",
        "gdp/customers",
        "raw/nation",
        "raw/region",
        "calendar/fiscal_days",
    }
    assert {asset_ref(d.asset_key) for d in specs["kpi/net_revenue"].deps} == {"gdp/order_lines"}
    assert {asset_ref(d.asset_key) for d in specs["kpi/revenue_per_working_day"].deps} == {
        "gdp/order_lines",
        "calendar/fiscal_periods",
    }
    assert {asset_ref(d.asset_key) for d in specs["gdp/customers"].deps} == {"raw/customer", "raw/crm_customers"}
    keys = specs["raw/orders"].partitions_def.get_partition_keys()  # type: ignore[union-attr]
    assert keys == settings.partition_keys and keys[0] == "FY1991-P01" and keys[-1] == "FY2027-P12"
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey(["acme", "gdp", "order_lines"])).backfill_policy == dg.BackfillPolicy.single_run()


def test_dagster_validates_the_workspace(repo_paths: ProjectPaths, tmp_path: Path) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=repo_paths.root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_select_takes_globs_groups_and_upstream_or_downstream_markers(repo_paths: ProjectPaths) -> None:
    defs = build_definitions(load_settings(repo_paths))
    kpis = resolve_selection(defs, ["kpi/*"])
    assert len(kpis) == 9 and all(k.startswith("kpi/") for k in kpis)
    assert resolve_selection(defs, ["group:raw"]) == resolve_selection(defs, ["raw/*"])
    assert resolve_selection(defs, ["1+kpi/net_revenue"]) == ["gdp/order_lines", "kpi/net_revenue"]
    upstream = resolve_selection(defs, ["+kpi/net_revenue"])
    assert {"raw/orders", "raw/lineitem", "gdp/order_lines", "kpi/net_revenue"} <= set(upstream)
    assert "published/net_revenue" not in upstream
    downstream = resolve_selection(defs, ["kpi/net_revenue+"])
    assert downstream == ["kpi/net_revenue", "published/net_revenue"]
    assert resolve_selection(defs, ["raw/orders", "raw/orders"]) == ["raw/orders"]
    for wrong in ("kpi/nope*", "group:nope"):
        with pytest.raises(UsageError, match=f"--select {re.escape(wrong)}: matches no asset"):
            resolve_selection(defs, [wrong])
