"""Cross-file rules of the project's specs, on a copy of the real project."""

from __future__ import annotations

import pytest

from barecount.errors import SpecErrors
from barecount.project import ProjectPaths
from barecount.specs import load_project_specs


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
        "kpi/net_revenue",
        "kpi/on_time_delivery_rate",
        "kpi/order_count",
        "kpi/return_rate",
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
    assert all(e in found for e in named)
    # and each of the five other KPIs built on the model that failed to load says so, twice
    rest = [e for e in found if e not in named]
    assert len(rest) == 2 * 5 and all("gdp/order_lines" in e or "gdp.order_lines" in e for e in rest)
    assert "kpis/order_count/1.0.0.yaml:10:14: depends_on[0]: unknown asset 'gdp/order_lines'" in " ".join(found)


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
