"""The contract gate's two forms: its rules counted in SQL (the pass path on every engine) fail exactly where the
contract's pandera schema fails, so a landing that passes the SQL conforms."""

from __future__ import annotations

import duckdb
import ibis
import pytest

from barecount.config.project import ProjectPaths
from barecount.contracts import Contract, ContractRegistry
from barecount.contracts.pandera_schema import contract_schema
from barecount.contracts.rules_sql import rule_breaks
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
    "a lineage value missing": "UPDATE t SET x_credential_id = NULL",
    "a duplicate key": "INSERT INTO t SELECT * FROM t",
    "an optional value missing": "UPDATE t SET c_phone = NULL, c_address = NULL",
}


def _customer() -> Contract:
    return ContractRegistry.load(ProjectPaths.discover()).version("erp.customer", "1.0.0")


def _sql_breaks(conn: duckdb.DuckDBPyConnection, contract: Contract, partitioned: bool) -> dict[str | None, int]:
    """Per period, how many rules the rows of `t` break and how many key values repeat, by the SQL counts."""
    breaks = rule_breaks(contract, partitioned, "t")
    found: dict[str | None, int] = {}
    for sql in (breaks.rules_sql, breaks.keys_sql or "SELECT ?, ?"):
        for row in conn.execute(sql, ["run", "1.0.0"]).fetchall():
            key, counts = (row[0], row[1:]) if partitioned else (None, row)
            found[key] = found.get(key, 0) + sum(1 for n in counts if n)
    return found


@pytest.mark.parametrize("change", BROKEN, ids=list(BROKEN))
def test_the_sql_rules_fail_where_the_pandera_schema_fails(change: str) -> None:
    contract = _customer()
    with duckdb.connect() as conn:
        conn.execute(f"CREATE TABLE t AS {GOOD_ROW}")
        conn.execute(BROKEN[change])
        pandera = _violations(
            contract_schema(contract, partitioned=False), ibis.duckdb.from_connection(conn).table("t")
        )
        in_sql = _sql_breaks(conn, contract, partitioned=False)
    assert (pandera is None) == (change in ("nothing", "an optional value missing")), pandera
    assert (pandera is None) == (not any(in_sql.values())), in_sql


@pytest.mark.parametrize(("second_period", "conforms"), [("FY1995-P02", True), ("FY1995-P01", False)])
def test_a_key_is_unique_within_its_period_in_both_forms(second_period: str, conforms: bool) -> None:
    contract = _customer()
    with duckdb.connect() as conn:
        conn.execute(f"CREATE TABLE t AS SELECT *, 'FY1995-P01' AS fiscal_period FROM ({GOOD_ROW})")
        conn.execute(f"INSERT INTO t SELECT * REPLACE ('{second_period}' AS fiscal_period) FROM t")
        pandera = _violations(contract_schema(contract, partitioned=True), ibis.duckdb.from_connection(conn).table("t"))
        assert (pandera is None) == conforms, pandera
        assert (not any(_sql_breaks(conn, contract, partitioned=True).values())) == conforms
