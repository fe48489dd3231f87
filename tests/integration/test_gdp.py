"""GDP models: survivorship across sources, and personal data masked on its way out of Raw."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from barecount.config.profiles import Settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions
from barecount.defs.runner import run_partitions
from barecount.pipeline.periods import source_periods
from barecount.specs.model import SurvivorshipSpec
from barecount.sql.pii import PII_KEY_ENV, REDACTED
from barecount.sql.survivorship import survivorship_sql
from tests.cli import barecount

RULES = SurvivorshipSpec.model_validate(
    {
        "key": "customer_key",
        "sources": {
            "erp": {"asset": "raw/customer", "key": "c_custkey"},
            "crm": {"asset": "raw/crm_customers", "key": "customer_id", "updated_at": "updated_at"},
        },
        "attributes": {
            "name": {
                "rule": "source_priority",
                "priority": ["erp", "crm"],
                "columns": {"erp": "c_name", "crm": "name"},
            },
            "phone": {
                "rule": "most_recent_non_null",
                "priority": ["crm", "erp"],
                "columns": {"crm": "phone", "erp": "c_phone"},
            },
            "balance": {"rule": "fixed", "source": "erp", "columns": {"erp": "c_acctbal"}},
        },
    }
)


def test_each_attribute_survives_by_its_rule_and_names_its_source() -> None:
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw")
    conn.execute(
        "CREATE TABLE raw.customer AS SELECT * FROM (VALUES (1, 'Ann ERP', '111', 10.00), (2, NULL, NULL, 20.00), "
        "(3, 'Cid ERP', '333', NULL)) t(c_custkey, c_name, c_phone, c_acctbal)"
    )
    conn.execute(
        "CREATE TABLE raw.crm_customers AS SELECT * FROM (VALUES (1, 'Ann CRM', '999', TIMESTAMP '1998-01-01'), "
        "(2, 'Bob CRM', '888', TIMESTAMP '1998-01-01'), (3, 'Cid CRM', NULL, TIMESTAMP '1998-01-01'), "
        "(4, 'Dan CRM', '777', NULL)) t(customer_id, name, phone, updated_at)"
    )
    rows = conn.execute(f"SELECT * FROM ({survivorship_sql(RULES)}) ORDER BY customer_key").fetchall()
    assert rows == [
        # ERP first for names; the dated CRM phone is newer than the undated ERP one
        (1, "Ann ERP", "erp", "999", "crm", 10.00, "erp"),
        # no ERP name: the CRM fills in
        (2, "Bob CRM", "crm", "888", "crm", 20.00, "erp"),
        # no CRM phone: the ERP one survives; a fixed source with no value gives NULL, no winner
        (3, "Cid ERP", "erp", "333", "erp", None, None),
        # a key only one source knows is kept
        (4, "Dan CRM", "crm", "777", "crm", None, None),
    ]


def test_two_sources_with_no_change_time_fall_back_to_priority() -> None:
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw")
    conn.execute("CREATE TABLE raw.customer AS SELECT 1 AS c_custkey, 'a' AS c_name, '1' AS c_phone, 1 AS c_acctbal")
    conn.execute(
        "CREATE TABLE raw.crm_customers AS SELECT 1 AS customer_id, 'b' AS name, '2' AS phone, NULL AS updated_at"
    )
    assert conn.execute(f"SELECT phone, phone_source FROM ({survivorship_sql(RULES)})").fetchall() == [("2", "crm")]


def test_personal_data_never_leaves_raw(built_once: ProjectPaths) -> None:
    with duckdb.connect(str(built_once.root / "data" / "acme" / "warehouse.duckdb"), read_only=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE personal AS SELECT DISTINCT v FROM (SELECT unnest([c_name, c_phone, c_address]) AS v "
            "FROM raw.customer UNION ALL SELECT unnest([name, phone, address]) FROM raw.crm_customers) "
            "WHERE v IS NOT NULL"
        )
        text_columns = conn.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_schema IN ('gdp', 'kpi', 'published') AND data_type = 'VARCHAR'"
        ).fetchall()
        assert len(text_columns) > 20
        for schema, table, column in text_columns:
            leaked = conn.execute(
                f'SELECT count(*) FROM {schema}.{table} WHERE "{column}" IN (SELECT v FROM personal)'
            ).fetchone()
            assert leaked == (0,), f"{schema}.{table}.{column}"
        # the name is a keyed hash: stable, so it still joins and counts
        name, hashed = conn.execute(
            "SELECT c.c_name, g.customer_name FROM raw.customer c JOIN gdp.customers g ON g.customer_key = c.c_custkey "
            "WHERE g.customer_name_source = 'erp' LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        assert hashed == hashlib.sha256(f"{os.environ[PII_KEY_ENV]}:{name}".encode()).hexdigest()
        assert conn.execute("SELECT DISTINCT phone FROM gdp.customers WHERE phone IS NOT NULL").fetchall() == [
            (REDACTED,)
        ]
        lines = conn.execute("SELECT count(*), count(customer_name) FROM gdp.order_lines").fetchone()
        assert lines is not None and lines[0] == lines[1] > 0


def test_a_run_without_the_masking_key_is_refused(
    settings: Settings, instance: dg.DagsterInstance, warehouse_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PII_KEY_ENV)
    outcome = run_partitions(build_definitions(settings), instance, source_periods(settings)[20:21])
    assert not outcome.success
    assert outcome.failure is not None and "BARECOUNT_PII_KEY is not set" in outcome.failure
    assert "gdp/customers" in outcome.failure


def test_check_and_run_name_a_missing_masking_key_before_any_work(
    project: ProjectPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PII_KEY_ENV)
    for command in (["check"], ["run", "--period", "FY1995-P01"]):
        done = barecount(*command)
        said = " ".join(done.stderr.split())
        assert done.returncode == 2 and "BARECOUNT_PII_KEY is not set: model gdp/customers" in said, command
        assert "export BARECOUNT_PII_KEY=" in said
    assert not (project.root / "data" / "acme" / "warehouse.duckdb").exists()  # nothing ran


def test_a_model_test_that_fails_holds_its_period_back_from_the_kpis(project: ProjectPaths) -> None:
    model = project.assets / "erp" / "gdp" / "order_lines.yaml"
    model.write_text(model.read_text().replace("return_flag: [A, N, R]", "return_flag: [A, N]"))
    ran = barecount("run", "--period", "FY1995-P02")
    said = " ".join((ran.stdout + ran.stderr).split())
    assert ran.returncode == 1, said
    assert "gdp/order_lines FY1995-P02 (model_tests)" in said
    verdict = barecount(
        "query",
        "SELECT passed, detail FROM evidence.gate_results WHERE gate = 'model_tests' AND asset = 'gdp/order_lines'",
        "--json",
    )
    (row,) = json.loads(verdict.stdout)
    assert row["passed"] is False and "row(s): return_flag not in ['A', 'N']" in row["detail"]
    assert "duplicate primary key" not in row["detail"]
    kpis = barecount("query", "SELECT count(*) AS n FROM kpi.net_revenue", "--json")
    assert kpis.returncode != 0 or json.loads(kpis.stdout) == [{"n": 0}]  # nothing built on the failed period
    passed = barecount(
        "query", "SELECT count(*) AS n FROM evidence.gate_results WHERE gate = 'model_tests' AND passed", "--json"
    )
    assert json.loads(passed.stdout) == [{"n": 4}]  # orders, customers, parts, suppliers
