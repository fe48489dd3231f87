"""The contract as pandera schemas: the one-query schema (the gate's pass path) fails exactly where the schema
with a check per column and rule does, so a landing that passes it conforms."""

from __future__ import annotations

import duckdb
import ibis
import pytest

from barecount.config.project import ProjectPaths
from barecount.contracts import ContractRegistry
from barecount.contracts.pandera_schema import contract_schema
from barecount.pipeline.gates.contract import _violations

GOOD_ROW = (
    "SELECT 1::BIGINT AS c_custkey, 'Customer#1' AS c_name, 'street' AS c_address, 3::BIGINT AS c_nationkey, "
    "'25-989-741-2988' AS c_phone, 711.56::DECIMAL(15, 2) AS c_acctbal, 'BUILDING' AS c_mktsegment, "
    "'note' AS c_comment, 'acme' AS x_org_slug, 'erp.customer' AS x_pipeline_id, 'erp-reader' AS x_credential_id, "
    "DATE '1995-01-28' AS x_pipeline_run_date, 'run' AS x_run_id, TIMESTAMP '1995-01-29 10:00' AS x_ingested_at, "
    "DATE '1995-01-29' AS x_ingestion_date, '1.0.0' AS x_contract_version, 'hash' AS x_schema_hash"
)
BROKEN = {
    "nothing": "SELECT 1 WHERE false",
    "a value not allowed": "UPDATE t SET c_mktsegment = 'NOPE'",
    "a pattern not matched": "UPDATE t SET c_phone = '12'",
    "a required value missing": "UPDATE t SET c_name = NULL",
    "a lineage value missing": "UPDATE t SET x_run_id = NULL",
    "a duplicate key": "INSERT INTO t SELECT * FROM t",
    "an optional value missing": "UPDATE t SET c_phone = NULL, c_address = NULL",
}


@pytest.mark.parametrize("change", BROKEN, ids=list(BROKEN))
def test_the_one_query_schema_fails_where_the_schema_per_rule_fails(change: str) -> None:
    registry = ContractRegistry.load(ProjectPaths.discover())
    contract = registry.version("erp.customer", "1.0.0")
    with duckdb.connect() as conn:
        conn.execute(f"CREATE TABLE t AS {GOOD_ROW}")
        conn.execute(BROKEN[change])
        table = ibis.duckdb.from_connection(conn).table("t")
        per_rule = _violations(contract_schema(contract, partitioned=False), table)
        one_query = _violations(contract_schema(contract, partitioned=False, one_query=True), table)
    assert (one_query is None) == (per_rule is None)
    assert (per_rule is None) == (change in ("nothing", "an optional value missing")), per_rule


@pytest.mark.parametrize(("second_period", "conforms"), [("FY1995-P02", True), ("FY1995-P01", False)])
def test_a_key_is_unique_within_its_period_in_both_schemas(second_period: str, conforms: bool) -> None:
    registry = ContractRegistry.load(ProjectPaths.discover())
    contract = registry.version("erp.customer", "1.0.0")
    with duckdb.connect() as conn:
        conn.execute(f"CREATE TABLE t AS SELECT *, 'FY1995-P01' AS fiscal_period FROM ({GOOD_ROW})")
        conn.execute(f"INSERT INTO t SELECT * REPLACE ('{second_period}' AS fiscal_period) FROM t")
        table = ibis.duckdb.from_connection(conn).table("t")
        for one_query in (False, True):
            found = _violations(contract_schema(contract, partitioned=True, one_query=one_query), table)
            assert (found is None) == conforms, (one_query, found)
