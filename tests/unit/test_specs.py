"""Cross-file rules of the project's specs, on a copy of the real project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from barecount.catalog.loader import SPECS_CACHE, load_project_specs
from barecount.config.project import ProjectPaths
from barecount.errors import SpecErrors


def test_the_shipped_project_loads(repo_paths: ProjectPaths) -> None:
    specs = load_project_specs(repo_paths)
    assert [s.asset_ref for s in specs.streams] == [
        "raw/crm_customers",
        "raw/orders",
        "raw/lineitem",
        "raw/customer",
        "raw/nation",
        "raw/region",
        "raw/part",
        "raw/supplier",
        "raw/partsupp",
    ]
    assert [m.asset_ref for m in specs.models] == [
        "gdp/customers",
        "gdp/order_lines",
        "gdp/orders",
        "gdp/parts",
        "gdp/suppliers",
    ]
    assert [k.asset_ref for k in specs.kpis] == [
        "kpi/average_order_value",
        "kpi/discount_revenue",
        "kpi/gross_profit",
        "kpi/net_revenue",
        "kpi/on_time_delivery_rate",
        "kpi/order_count",
        "kpi/pricing_summary",
        "kpi/return_rate",
        "kpi/revenue_per_working_day",
    ]


def test_names_must_match_files_and_every_error_is_reported(project_copy: ProjectPaths) -> None:
    kpi = project_copy.kpis / "net_revenue" / "1.0.0.yaml"
    kpi.write_text(kpi.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    model = project_copy.assets / "erp" / "gdp" / "order_lines.yaml"
    model.write_text(model.read_text().replace("name: order_lines", "name: orderlines"))
    (project_copy.assets / "erp" / "gdp" / "order_lines.sql").unlink()
    with pytest.raises(SpecErrors) as caught:
        load_project_specs(project_copy)
    found = [str(e) for e in caught.value.errors]
    named = [
        "assets/erp/gdp/order_lines.yaml:1:1: name: 'orderlines' does not match its file or folder name 'order_lines'",
        "kpis/net_revenue/1.0.0.yaml:2:1: version: '1.0.1' does not match its file or folder name '1.0.0'",
    ]
    assert found[:2] == named  # the files' own errors first
    # each of the eight other KPIs built on the model that failed to load says so once, folded under it
    rest = caught.value.errors[2:]
    assert len(rest) == 8 and {e.follows_from for e in rest} == {"assets/erp/gdp/order_lines.yaml"}
    assert "kpis/order_count/1.0.0.yaml:10:14: depends_on[0]: unknown asset 'gdp/order_lines'" in " ".join(found)
    shown = str(caught.value).splitlines()
    assert shown[:2] == named and len(shown) == 3
    assert shown[2].startswith("  ... and 8 more that follow from assets/erp/gdp/order_lines.yaml, the first: ")


def test_two_active_kpi_versions_are_refused(project_copy: ProjectPaths) -> None:
    folder = project_copy.kpis / "net_revenue"
    (folder / "1.1.0.yaml").write_text((folder / "1.0.0.yaml").read_text().replace("1.0.0", "1.1.0"))
    (folder / "1.1.0.sql").write_text((folder / "1.0.0.sql").read_text())
    with pytest.raises(SpecErrors, match="kpis/net_revenue: status: more than one active version"):
        load_project_specs(project_copy)


def test_personal_data_must_be_masked_before_it_leaves_raw(project_copy: ProjectPaths) -> None:
    gdp = project_copy.assets / "erp" / "gdp"
    customers = gdp / "customers.yaml"
    customers.write_text(customers.read_text().replace("  phone: redact\n", ""))
    lines = gdp / "order_lines.sql"
    lines.write_text(
        lines.read_text()
        .replace("    c.customer_name,", "    rc.c_name AS customer_name, rc.c_phone AS phone,")
        .replace(
            "LEFT JOIN raw.nation", "LEFT JOIN raw.customer AS rc ON rc.c_custkey = o.o_custkey\nLEFT JOIN raw.nation"
        )
    )
    model = gdp / "order_lines.yaml"
    model.write_text(model.read_text().replace("gdp/customers,", "gdp/customers, raw/customer,"))
    with pytest.raises(SpecErrors) as caught:
        load_project_specs(project_copy)
    assert sorted(str(e) for e in caught.value.errors) == [
        "assets/erp/gdp/customers.yaml: pii: column phone carries personal data from raw.crm_customers.phone, "
        "raw.customer.c_phone (contract crm.customers); declare how to mask it under pii (hash or redact)",
        "assets/erp/gdp/order_lines.yaml: pii: column customer_name carries personal data from raw.customer.c_name "
        "(contract erp.customer); declare how to mask it under pii (hash or redact)",
        "assets/erp/gdp/order_lines.yaml: pii: column phone carries personal data from raw.customer.c_phone "
        "(contract erp.customer); declare how to mask it under pii (hash or redact)",
    ]


def _edit(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text, f"{old!r} not in {file}"
    file.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("kpi", "old", "new", "expected"),
    [
        (
            "pricing_summary/1.0.0.yaml",
            "dimensions: [return_flag, line_status]",
            "dimensions: [return_flag, line_state]",
            "kpis/pricing_summary/1.0.0.yaml:11:27: dimensions[1]: dimension 'line_state' is not a column the KPI SQL "
            "returns (it returns fiscal_period, return_flag, line_status, sum_qty,",
        ),
        (
            "pricing_summary/1.0.0.yaml",
            "    l.l_linestatus AS line_status,",
            "    l.l_linestatus AS status,",
            "kpis/pricing_summary/1.0.0.yaml:28:3: reconciliation.sql: dimension 'line_status' is not a column the "
            "reconciliation.sql SQL returns",
        ),
        (
            "net_revenue/1.0.0.sql",
            ") AS value",
            ") AS net",
            "kpis/net_revenue/1.0.0.yaml: measures: measure 'value' is not a column the KPI SQL returns "
            "(it returns fiscal_period, net)",
        ),
        (
            "net_revenue/1.0.0.sql",
            "GROUP BY fiscal_period",
            "GROUP BY fiscal_period HAVING (",
            "kpis/net_revenue/1.0.0.sql:5:31: SQL does not parse:",
        ),
        (
            "net_revenue/1.0.0.sql",
            "FROM gdp.order_lines",
            "FROM gdp.order_line",
            "kpis/net_revenue/1.0.0.yaml:12:1: depends_on: the SQL reads gdp.order_line but depends_on does not list "
            "gdp/order_line",
        ),
        (
            "net_revenue/1.0.0.yaml",
            "  min: 0\n",
            "  min: 0\n  max: -1\n",
            "kpis/net_revenue/1.0.0.yaml:16:1: thresholds: min (0) is greater than max (-1)",
        ),
        (
            "net_revenue/1.0.0.yaml",
            "FROM source.lineitem AS l",
            "FROM raw.lineitem AS l",
            "kpis/net_revenue/1.0.0.yaml: reconciliation.sql: reads raw.lineitem: a reconciliation reads the system "
            "of record as source.<stream>",
        ),
        (
            "pricing_summary/1.0.0.yaml",
            "  measure: avg_price",
            "  measure: charge",
            "kpis/pricing_summary/1.0.0.yaml:1:1: thresholds.measure must name one of the measures (sum_qty,",
        ),
        (
            "gross_profit/1.0.0.yaml",
            "unit: USD\n",
            "",
            "kpis/gross_profit/1.0.0.yaml:1:1: unit: required field is missing",
        ),
        (
            "order_count/1.0.0.yaml",
            "thresholds:\n  min: 0\n  max_change_vs_previous: 0.75\n  max_change_vs_last_year: 0.5\n",
            "",
            "kpis/order_count/1.0.0.yaml:1:1: thresholds: the active version is published, so it declares "
            "acceptance thresholds",
        ),
    ],
    ids=[
        "unknown-dimension",
        "reconciliation-lacks-dimension",
        "no-value-column",
        "sql-does-not-parse",
        "missing-table",
        "min-above-max",
        "reconciliation-reads-raw",
        "unknown-threshold-measure",
        "missing-field",
        "published-without-thresholds",
    ],
)
def test_a_broken_kpi_names_file_field_and_reason(
    project_copy: ProjectPaths, kpi: str, old: str, new: str, expected: str
) -> None:
    _edit(project_copy.kpis / kpi, old, new)
    with pytest.raises(SpecErrors) as caught:
        load_project_specs(project_copy)
    found = [str(e) for e in caught.value.errors]
    assert any(e.startswith(expected) for e in found), found


def test_model_tests_name_columns_the_model_returns(project_copy: ProjectPaths) -> None:
    _edit(project_copy.assets / "erp" / "gdp" / "orders.yaml", "not_null: [order_key,", "not_null: [order_id,")
    _edit(project_copy.assets / "erp" / "gdp" / "parts.yaml", "primary_key: [part_key]", "primary_key: [partkey]")
    with pytest.raises(SpecErrors) as caught:
        load_project_specs(project_copy)
    assert sorted(str(e) for e in caught.value.errors) == [
        "assets/erp/gdp/orders.yaml:14:14: tests.not_null[0]: 'order_id' is not a column the SQL returns "
        "(did you mean 'order_date'?)",
        "assets/erp/gdp/parts.yaml:5:15: primary_key[0]: 'partkey' is not a column the SQL returns "
        "(did you mean 'part_key'?)",
    ]


def test_the_specs_are_kept_for_the_next_process_until_a_file_changes(project_copy: ProjectPaths) -> None:
    def label_loaded() -> str:
        code = (
            "from barecount.catalog.loader import load_project_specs; from barecount.config.project import "
            "ProjectPaths; print(load_project_specs(ProjectPaths.discover()).kpis[0].spec.label)"
        )
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    kept = project_copy.data / SPECS_CACHE
    assert label_loaded() == "Average order value" and kept.is_file()
    written = kept.stat().st_mtime_ns
    assert label_loaded() == "Average order value"
    assert kept.stat().st_mtime_ns == written  # read back, not loaded from the files and written again
    kpi = project_copy.kpis / "average_order_value" / "1.0.0.yaml"
    kpi.write_text(kpi.read_text(encoding="utf-8").replace("label: Average order value", "label: AOV"), "utf-8")
    assert label_loaded() == "AOV"
