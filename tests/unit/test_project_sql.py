"""Model and KPI SQL is checked by running it on empty tables, and personal data cannot leak through it."""

from __future__ import annotations

from pathlib import Path

import pytest

from barecount.catalog.loader import load_project_specs
from barecount.config.project import ProjectPaths
from barecount.errors import SpecErrors
from tests.cli import barecount

LEAK_SPEC = """name: leak
description: a model written to carry personal data out of Raw
owner: team:finance-data
grain: one row per customer
primary_key: [k]
partitioned: false
depends_on: [{depends_on}]
"""

# SQL over the CRM extract (name, phone and address are PII) that would pass personal data on unmasked
LEAKS = {
    "to-json-of-a-whole-row": "SELECT o.o_orderkey AS k, to_json(cu)::VARCHAR AS clerk "
    "FROM raw.orders AS o JOIN raw.crm_customers AS cu ON cu.customer_id = o.o_custkey",
    "whole-row-as-struct": "SELECT cu.customer_id AS k, cu AS whole FROM raw.crm_customers AS cu",
    "list-of-whole-rows": "SELECT customer_id AS k, list(cu) AS l FROM raw.crm_customers AS cu GROUP BY 1",
    "row-of-star": "SELECT customer_id AS k, row(cu.*) AS r FROM raw.crm_customers AS cu",
    "struct-pack": "SELECT customer_id AS k, struct_pack(n := name) AS s FROM raw.crm_customers",
    "struct-literal": "SELECT customer_id AS k, {'n': name} AS s FROM raw.crm_customers",
    "list-literal": "SELECT customer_id AS k, [phone] AS l FROM raw.crm_customers",
    "json-object": "SELECT customer_id AS k, json_object('n', name) AS j FROM raw.crm_customers",
    "columns-by-pattern": "SELECT customer_id AS k, COLUMNS('addr.*') FROM raw.crm_customers",
    "star": "SELECT customer_id AS k, * FROM raw.crm_customers",
    "star-exclude": "SELECT customer_id AS k, * EXCLUDE (customer_id, name) FROM raw.crm_customers",
    "qualified-star": "SELECT customer_id AS k, cu.* EXCLUDE (customer_id) FROM raw.crm_customers AS cu",
    "scalar-subquery": "SELECT o_orderkey AS k, (SELECT max(name) FROM raw.crm_customers) AS n FROM raw.orders",
    "through-a-cte": "WITH c AS (SELECT customer_id, address AS a FROM raw.crm_customers) "
    "SELECT customer_id AS k, a FROM c",
    "aggregate": "SELECT customer_id AS k, string_agg(name, ',') AS n FROM raw.crm_customers GROUP BY 1",
    "unkeyed-hash": "SELECT customer_id AS k, md5(phone) AS p FROM raw.crm_customers",
    "cast": "SELECT customer_id AS k, CAST(name AS BLOB) AS b FROM raw.crm_customers",
    "coalesce": "SELECT customer_id AS k, coalesce(NULL, address) AS a FROM raw.crm_customers",
    "unnest": "SELECT customer_id AS k, n FROM raw.crm_customers, unnest([name]) AS t(n)",
    "union": "SELECT o_orderkey AS k, o_clerk AS c FROM raw.orders "
    "UNION ALL SELECT customer_id, name FROM raw.crm_customers",
    "masking-key": "SELECT customer_id AS k, getvariable('barecount_pii_key') AS key FROM raw.crm_customers",
    "settings": "SELECT customer_id AS k, current_setting('home_directory') AS h FROM raw.crm_customers",
    "source-file": "SELECT * FROM read_csv('data/sources/crm/customers.csv'), raw.crm_customers",
    "query-table": "SELECT * FROM query_table('raw.crm_customers'), raw.crm_customers",
}


def _write_model(project: ProjectPaths, sql: str, depends_on: str, name: str = "leak") -> None:
    gdp = project.assets / "erp" / "gdp"
    (gdp / f"{name}.yaml").write_text(LEAK_SPEC.format(depends_on=depends_on).replace("name: leak", f"name: {name}"))
    (gdp / f"{name}.sql").write_text(sql + "\n")


def _errors(project: ProjectPaths) -> list[str]:
    with pytest.raises(SpecErrors) as caught:
        load_project_specs(project)
    return [str(e) for e in caught.value.errors]


@pytest.mark.parametrize("sql", LEAKS.values(), ids=LEAKS.keys())
def test_no_form_of_sql_carries_personal_data_out_unmasked(project_copy: ProjectPaths, sql: str) -> None:
    depends_on = "raw/orders, raw/crm_customers" if "raw.orders" in sql else "raw/crm_customers"
    _write_model(project_copy, sql, depends_on)
    errors = _errors(project_copy)
    assert errors and all(e.startswith("assets/erp/gdp/leak.") for e in errors), errors


def test_masked_or_impersonal_columns_of_personal_tables_pass(project_copy: ProjectPaths) -> None:
    _write_model(
        project_copy,
        "SELECT customer_id AS k, segment, count(*) AS n FROM raw.crm_customers GROUP BY ALL",
        "raw/crm_customers",
    )
    masked = "SELECT customer_id AS k, name, upper(address) AS address FROM raw.crm_customers"
    _write_model(project_copy, masked, "raw/crm_customers", name="masked")
    spec = project_copy.assets / "erp" / "gdp" / "masked.yaml"
    spec.write_text(spec.read_text() + "pii:\n  name: hash\n  address: redact\n")
    loaded = load_project_specs(project_copy)
    assert {"gdp/leak", "gdp/masked"} <= {m.asset_ref for m in loaded.models}


def test_the_masking_key_is_out_of_reach_of_any_kpi(project_copy: ProjectPaths) -> None:
    sql = project_copy.kpis / "order_count" / "1.0.0.sql"
    sql.write_text("SELECT fiscal_period, count(*) AS value, getvariable('barecount_pii_key') AS k\n"
                   "FROM gdp.order_lines GROUP BY ALL\n")  # fmt: skip
    assert _errors(project_copy) == [
        "kpis/order_count/1.0.0.sql: the function getvariable() reads outside the warehouse's tables: "
        "a model or KPI reads only the tables it declares in depends_on"
    ]


def _edit(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text, f"{old!r} not in {file}"
    file.write_text(text.replace(old, new))


def test_an_unknown_column_fails_at_load_with_its_file_and_line_and_nothing_after_it(
    project_copy: ProjectPaths,
) -> None:
    lines = project_copy.assets / "erp" / "gdp" / "order_lines.sql"
    at = next(i for i, line in enumerate(lines.read_text().splitlines(), 1) if "l.l_discount" in line)
    _edit(lines, "l.l_discount", "l.l_discont")
    errors = _errors(project_copy)
    # one error, where it is: the eight KPIs built on gdp/order_lines are not reported as broken too
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"assets/erp/gdp/order_lines.sql:{at}:0: the SQL does not run on the declared inputs")
    assert "l_discont" in errors[0]


def test_a_kpi_selecting_star_is_checked_on_the_columns_it_really_returns(project_copy: ProjectPaths) -> None:
    (project_copy.kpis / "order_count" / "1.0.0.sql").write_text("SELECT * FROM gdp.order_lines\n")
    errors = _errors(project_copy)
    assert any(
        e.startswith("kpis/order_count/1.0.0.yaml") and "'value' is not a column the KPI SQL returns" in e
        for e in errors
    ), errors


def test_a_text_measure_fails_at_load(project_copy: ProjectPaths) -> None:
    _edit(project_copy.kpis / "order_count" / "1.0.0.sql", "AS value", "::VARCHAR AS value")
    assert _errors(project_copy) == [
        "kpis/order_count/1.0.0.yaml: measures: measure 'value' is VARCHAR: a KPI measure is a number "
        "(cast it, e.g. CAST(... AS DECIMAL))"
    ]


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("DELETE FROM gdp.order_lines", "not a SELECT but DELETE"),
        ("SELECT 1 AS value; SELECT 2 AS value", "holds 2 statements"),
    ],
)
def test_sql_that_is_not_one_select_is_refused_by_check_with_exit_2(
    project_copy: ProjectPaths, sql: str, said: str
) -> None:
    (project_copy.kpis / "order_count" / "1.0.0.sql").write_text(sql + "\n")
    checked = barecount("check", cwd=project_copy.root)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "kpis/order_count/1.0.0.sql" in checked.stderr and said in checked.stderr
    assert "Traceback" not in checked.stderr


def test_a_broken_streams_file_is_listed_first_and_what_follows_from_it_is_folded(project_copy: ProjectPaths) -> None:
    _edit(project_copy.assets / "erp" / "streams.yaml", "contract:", "contrct:")
    with pytest.raises(SpecErrors) as caught:
        load_project_specs(project_copy)
    shown = str(caught.value).splitlines()
    assert shown[0].startswith("assets/erp/streams.yaml"), shown
    own = [line for line in shown if not line.startswith("  ... and ")]
    assert all(line.startswith("assets/erp/streams.yaml") for line in own), shown
    folded = [line for line in shown if line.startswith("  ... and ")]
    assert len(folded) == 1 and "follow from assets/erp/streams.yaml" in folded[0], shown
