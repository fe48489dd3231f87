"""Organisations: each tenant file is checked, each has a code location, its own warehouse and datasets."""

from __future__ import annotations

import pytest

from barecount.config.orgs import check_orgs
from barecount.config.profiles import BigQueryWarehouseSpec, load_settings
from barecount.config.project import ProjectPaths
from barecount.errors import SpecErrors, UsageError
from tests.conftest import copy_project


def test_each_organisation_has_its_own_calendar_warehouse_sources_and_plan(repo_paths: ProjectPaths) -> None:
    assert check_orgs(repo_paths) == ["acme", "globex"]
    acme, globex = (load_settings(repo_paths, "local", org=org) for org in ("acme", "globex"))
    assert (acme.calendar.name, globex.calendar.name) == ("nrf-4-5-4", "4-4-5")
    assert acme.warehouse_path == repo_paths.root / "data" / "acme" / "warehouse.duckdb"
    assert globex.warehouse_path == repo_paths.root / "data" / "globex" / "warehouse.duckdb"
    assert globex.sources_dir == repo_paths.root / "data" / "globex" / "sources"
    assert globex.tenant.subscription.status == "TRIAL" and globex.tenant.sample_data.seed != 0
    # the same key names another window in each calendar
    assert acme.calendar.period("FY2024-P01").start != globex.calendar.period("FY2024-P01").start


def test_an_unknown_organisation_is_refused_with_the_known_ones(repo_paths: ProjectPaths) -> None:
    with pytest.raises(UsageError, match="unknown organisation 'initech'; known: acme, globex"):
        load_settings(repo_paths, "local", org="initech")


def test_bigquery_datasets_are_per_organisation() -> None:
    templated = BigQueryWarehouseSpec(kind="bigquery", project="my-project", dataset_prefix="bc_{org}")
    assert templated.resolve("p.yaml", "globex").dataset_prefix == "bc_globex"
    shared = BigQueryWarehouseSpec(kind="bigquery", project="my-project", dataset_prefix="finance")
    assert shared.resolve("p.yaml", "acme").dataset_prefix == "finance_acme"  # never one dataset for two orgs


def test_a_duckdb_path_without_the_org_is_refused(tmp_path: object, repo_paths: ProjectPaths) -> None:
    from pathlib import Path

    paths = copy_project(Path(str(tmp_path)) / "project")
    profile = paths.profiles / "local.yaml"
    profile.write_text(profile.read_text().replace("data/{org}/warehouse.duckdb", "data/warehouse.duckdb"))
    with pytest.raises(SpecErrors) as raised:
        load_settings(paths, "local")
    assert "resources/profiles/local.yaml:7:3: warehouse.path: put {org} in the path" in str(raised.value)
    assert "each organisation has a DuckDB file of its own" in str(raised.value)


def test_tenants_and_workspace_are_checked_together(tmp_path: object) -> None:
    from pathlib import Path

    paths = copy_project(Path(str(tmp_path)) / "project")
    tenant = paths.tenants / "globex.yaml"
    tenant.write_text(tenant.read_text().replace("domains: [finance]", "domains: [finance, payroll]"))
    (paths.tenants / "initech.yaml").write_text(
        "slug: initech\nname: Initech\ncalendar: 5-4-4\nfiscal_years: {first: 2020, last: 2030}\n"
    )
    with pytest.raises(SpecErrors) as raised:
        check_orgs(paths)
    said = str(raised.value)
    assert "resources/tenants/globex.yaml:10:20: domains[1]: no pipelines of domain 'payroll'" in said, said
    assert "resources/tenants/initech.yaml:3:1: calendar: no calendar '5-4-4'" in said, said
    assert "workspace.yaml: load_from: no code location for organisation 'initech'" in said, said
