"""`barecount kpi test`: every KPI's SQL against its fixtures, in an in-memory DuckDB."""

from __future__ import annotations

import json

from barecount.config.project import ProjectPaths
from tests.cli import barecount


def test_every_shipped_kpi_passes_its_fixtures(repo_paths: ProjectPaths) -> None:
    result = barecount("kpi", "test", "--json", cwd=repo_paths.root)
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = json.loads(result.stdout)
    kpis = sorted(p.name for p in repo_paths.kpis.iterdir() if p.is_dir())
    assert sorted(o["kpi"] for o in outcomes) == kpis  # every KPI has at least one fixture
    assert all(o["passed"] and not o["problems"] for o in outcomes)


def test_a_wrong_number_fails_its_fixture_and_the_command(project_copy: ProjectPaths) -> None:
    fixture = project_copy.kpis / "pricing_summary" / "tests" / "q1_measures.yaml"
    fixture.write_text(fixture.read_text().replace("sum_charge: 294.50", "sum_charge: 294.51"))
    result = barecount("kpi", "test", "--json", cwd=project_copy.root)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [o for o in json.loads(result.stdout) if not o["passed"]]
    assert [(o["kpi"], o["problems"]) for o in failed] == [
        ("pricing_summary", ["FY2024-P01, R, F: sum_charge is 294.500000, expected 294.51"])
    ]
    assert "1 KPI fixture(s) failed: kpis/pricing_summary/tests/q1_measures.yaml" in result.stderr


def test_missing_and_unexpected_rows_and_sql_errors_are_named(project_copy: ProjectPaths) -> None:
    fixture = project_copy.kpis / "net_revenue" / "tests" / "discounts.yaml"
    fixture.write_text(fixture.read_text().replace("FY2024-P02, value", "FY2024-P03, value"))
    # the KPI's SQL is sound (the project loads); this fixture's table lacks a column it reads
    other = project_copy.kpis / "order_count" / "tests" / "distinct_orders.yaml"
    other.write_text(other.read_text().replace("order_key: BIGINT", "order_id: BIGINT"))
    result = barecount("kpi", "test", "net_revenue", "order_count", "--json", cwd=project_copy.root)
    assert result.returncode == 1
    problems = {o["kpi"]: o["problems"] for o in json.loads(result.stdout)}
    assert problems["net_revenue"] == [
        "missing row fiscal_period=FY2024-P03, value=18.9905",
        "unexpected row fiscal_period=FY2024-P02, value=18.9905",
    ]
    assert len(problems["order_count"]) == 1 and problems["order_count"][0].startswith(
        'the SQL failed: Binder Error: Referenced column "order_key" not found'
    )


def test_a_malformed_fixture_names_file_field_and_reason(project_copy: ProjectPaths) -> None:
    fixture = project_copy.kpis / "order_count" / "tests" / "distinct_orders.yaml"
    fixture.write_text(fixture.read_text().replace("      - [FY2024-P02, 3]", "      - [FY2024-P02, 3, 4]"))
    other = project_copy.kpis / "net_revenue" / "tests" / "discounts.yaml"
    other.write_text(other.read_text().replace("gdp/order_lines:", "gdp/orders:"))
    result = barecount("kpi", "test", cwd=project_copy.root)
    assert result.returncode == 2
    assert (
        "kpis/order_count/tests/distinct_orders.yaml:3:3: inputs.gdp/order_lines: row 3 has 3 values for 2 columns"
        in result.stderr
    )
    assert (
        "kpis/net_revenue/tests/discounts.yaml: inputs: the KPI reads gdp/order_lines but the fixture gives no rows"
        in result.stderr
    )
    assert barecount("kpi", "test", "no_such_kpi", cwd=project_copy.root).returncode == 2
