"""Validation at the door: each contract rule quarantines exactly the rows that break it, with its reason."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from barecount.config.project import ProjectPaths
from barecount.contracts import ContractRegistry
from barecount.pipeline.connectors import SourceFiles
from barecount.pipeline.ingestion import ParentKey, checked_select, quarantine_split
from barecount.specs.stream import ConnectorSpec, StreamSpec
from barecount.sql.relation import SqlRelation
from barecount.warehouse.writes import SplitResult, Target, replace_with_quarantine

GOOD_ORDER = "(1, 10, 'F', 100.00::DECIMAL(15,2), DATE '1995-03-01', '1-URGENT', 'Clerk#1', 0, 'ok')"
ORDERS = {
    "good": GOOD_ORDER,
    "good_2": GOOD_ORDER.replace("(1,", "(2,"),
    "required__o_orderkey": GOOD_ORDER.replace("(1,", "(NULL::BIGINT,"),
    "duplicate_key": GOOD_ORDER,
    "valid_values__o_orderstatus": GOOD_ORDER.replace("(1,", "(3,").replace("'F'", "'X'"),
    "range__o_totalprice": GOOD_ORDER.replace("(1,", "(4,").replace("100.00", "-5.00"),
    "range__o_orderdate": GOOD_ORDER.replace("(1,", "(5,").replace("1995-03-01", "1980-01-01"),
    "required__o_custkey": GOOD_ORDER.replace("(1, 10,", "(6, NULL::BIGINT,"),
}
COLUMNS = (
    "o_orderkey, o_custkey, o_orderstatus, o_totalprice, o_orderdate, o_orderpriority, o_clerk, o_shippriority, "
    "o_comment"
)


def _stream(name: str, contract: str, kind: str, path: str, partitioned: bool) -> StreamSpec:
    return StreamSpec(
        name=name,
        contract=contract,
        description="test",
        owner="team:test",
        credential_id="test",
        partitioned=partitioned,
        connector=ConnectorSpec(kind=kind, path=path),  # type: ignore[arg-type]
    )


def _ingest(
    tmp_path: Path,
    repo_paths: ProjectPaths,
    stream: StreamSpec,
    keys: list[str] | None,
    parents: tuple[ParentKey, ...] = (),
) -> SplitResult:
    contract = ContractRegistry.load(repo_paths).in_force(stream.contract, keys[0] if keys else None)
    files = SourceFiles(root=str(tmp_path / "sources"))
    (source, *_) = files.describe(stream, keys).values()
    run_dates = {k: date(1995, 4, 1) for k in keys} if keys else None
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        relation = SqlRelation(
            sql=checked_select(contract, files.scan_sql(stream, keys, source, conn), source, keys is not None, parents),
            pipeline_id=f"test.{stream.name}",
            credential_id="test",
            quarantine=quarantine_split([contract], partitioned=keys is not None),
        )
        target = Target("raw", stream.name, "acme", "run-1", run_dates, relation.pipeline_id, "test", date(1995, 4, 1))
        return replace_with_quarantine(conn, target, relation)


def _query(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_each_order_rule_quarantines_its_row(tmp_path: Path, repo_paths: ProjectPaths) -> None:
    folder = tmp_path / "sources" / "erp" / "orders"
    folder.mkdir(parents=True)
    values = ", ".join(ORDERS.values())
    duckdb.sql(f"COPY (SELECT * FROM (VALUES {values}) t({COLUMNS})) TO '{folder / 'FY1995-P02.parquet'}'")
    result = _ingest(
        tmp_path,
        repo_paths,
        _stream("orders", "erp.orders", "parquet", "erp/orders/{period}.parquet", True),
        ["FY1995-P02"],
    )
    assert result.rows_in_by_partition == {"FY1995-P02": len(ORDERS)}
    assert result.landed.rows_by_partition == {"FY1995-P02": 2}
    assert result.quarantined.rows_by_partition == {"FY1995-P02": len(ORDERS) - 2}
    assert _query(tmp_path, "SELECT o_orderkey FROM raw.orders ORDER BY 1") == [(1,), (2,)]
    quarantined = _query(
        tmp_path,
        "SELECT quarantine_rule, quarantine_reason, o_orderkey, fiscal_period, x_contract_version "
        "FROM quarantine.orders ORDER BY quarantine_rule",
    )
    assert sorted(r[0] for r in quarantined) == sorted(k for k in ORDERS if not k.startswith("good"))
    reasons = {r[0]: r[1] for r in quarantined}
    assert reasons["valid_values__o_orderstatus"] == "o_orderstatus 'X' is not one of F, O, P"
    assert reasons["range__o_totalprice"] == "o_totalprice '-5.00' is outside [0, inf]"
    assert reasons["required__o_orderkey"] == "o_orderkey is missing"
    assert reasons["duplicate_key"] == "duplicate of an earlier row with key ('1')"
    assert {(r[3], r[4]) for r in quarantined} == {("FY1995-P02", "1.0.0")}
    assert dict(result.rules) == {k: 1 for k in ORDERS if not k.startswith("good")}


def test_unparsable_and_malformed_csv_values_survive_as_text(tmp_path: Path, repo_paths: ProjectPaths) -> None:
    folder = tmp_path / "sources" / "crm"
    folder.mkdir(parents=True)
    (folder / "customers.csv").write_text(
        "customer_id,name,phone,segment,address,nation_key,updated_at\n"
        "1,Ann,11-111-111-1111,BUILDING,Street 1,3,1998-05-01 10:00:00\n"
        "two,Bob,,BUILDING,Street 2,3,1998-05-01 10:00:00\n"
        "3,Cid,,SPACESHIPS,Street 3,3,1998-05-01 10:00:00\n"
        "4,Dan,,BUILDING,Street 4,3,the fifth of May\n"
        "5,Eve,,BUILDING,Street 5,,1998-05-01 10:00:00\n"
    )
    result = _ingest(
        tmp_path, repo_paths, _stream("crm_customers", "crm.customers", "csv", "crm/customers.csv", False), None
    )
    assert (result.landed.rows, result.quarantined.rows) == (1, 4)
    rows = _query(
        tmp_path,
        "SELECT quarantine_rule, quarantine_reason, customer_id, updated_at, quarantine_rules "
        "FROM quarantine.crm_customers ORDER BY name",
    )
    assert rows == [
        ("type__customer_id", "customer_id 'two' is not a BIGINT", "two", "1998-05-01 10:00:00", ["type__customer_id"]),
        (
            "valid_values__segment",
            "segment 'SPACESHIPS' is not one of AUTOMOBILE, BUILDING, FURNITURE, HOUSEHOLD, MACHINERY",
            "3",
            "1998-05-01 10:00:00",
            ["valid_values__segment"],
        ),
        (
            "type__updated_at",
            "updated_at 'the fifth of May' is not a TIMESTAMP",
            "4",
            "the fifth of May",
            ["type__updated_at"],
        ),
        ("required__nation_key", "nation_key is missing", "5", "1998-05-01 10:00:00", ["required__nation_key"]),
    ]


def test_a_pattern_rule(tmp_path: Path, repo_paths: ProjectPaths) -> None:
    folder = tmp_path / "sources" / "erp"
    folder.mkdir(parents=True)
    duckdb.sql(
        "COPY (SELECT * FROM (VALUES (1, 'A', 'x', 1, '11-111-111-1111', 1.00::DECIMAL(15,2), 'BUILDING', ''), "
        "(2, 'B', 'y', 1, '555-1234', 1.00::DECIMAL(15,2), 'BUILDING', '')) "
        "t(c_custkey, c_name, c_address, c_nationkey, c_phone, c_acctbal, c_mktsegment, c_comment)) "
        f"TO '{folder / 'customer.parquet'}'"
    )
    result = _ingest(
        tmp_path, repo_paths, _stream("customer", "erp.customer", "parquet", "erp/customer.parquet", False), None
    )
    assert result.rules == {"pattern__c_phone": 1}
    (reason,) = _query(tmp_path, "SELECT quarantine_reason FROM quarantine.customer")[0]
    assert reason == "c_phone '555-1234' does not match ^\\d{2}-\\d{3}-\\d{3}-\\d{4}$"


@pytest.mark.parametrize("rerun", [1, 2])
def test_rows_in_equals_landed_plus_quarantined_on_the_sample(
    tmp_path: Path, repo_paths: ProjectPaths, sample_sources: Path, rerun: int
) -> None:
    stream = _stream("lineitem", "erp.lineitem", "parquet", "erp/lineitem/{period}.parquet", True)
    (tmp_path / "sources").symlink_to(sample_sources)
    for _ in range(rerun):
        result = _ingest(tmp_path, repo_paths, stream, ["FY1995-P02", "FY1995-P03"])
    for key, rows_in in result.rows_in_by_partition.items():
        assert rows_in == result.landed.rows_by_partition[key] + result.quarantined.rows_by_partition[key]
    assert result.quarantined.rows == 0 and result.landed.rows > 0


LINE = (
    "({order}, 1, 1, {line}, 5.00::DECIMAL(15,2), 50.00::DECIMAL(15,2), 0.05::DECIMAL(15,2), 0.01::DECIMAL(15,2), "
    "'N', 'O', DATE '1995-03-05', DATE '1995-03-06', DATE '1995-03-07', 'NONE', 'AIR', '')"
)
LINE_COLUMNS = (
    "l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax, l_returnflag, "
    "l_linestatus, l_shipdate, l_commitdate, l_receiptdate, l_shipinstruct, l_shipmode, l_comment"
)


def test_foreign_keys_tell_orphans_of_quarantined_parents_from_dangling_keys(
    tmp_path: Path, repo_paths: ProjectPaths
) -> None:
    orders, lines = tmp_path / "sources" / "erp" / "orders", tmp_path / "sources" / "erp" / "lineitem"
    orders.mkdir(parents=True)
    lines.mkdir(parents=True)
    bad_order = GOOD_ORDER.replace("(1,", "(3,").replace("'F'", "'X'")
    duckdb.sql(
        f"COPY (SELECT * FROM (VALUES {GOOD_ORDER}, {bad_order}) t({COLUMNS})) TO '{orders / 'FY1995-P02.parquet'}'"
    )
    rows = ", ".join(LINE.format(order=o, line=n) for o, n in ((1, 1), (1, 2), (3, 1), (9, 1)))
    duckdb.sql(f"COPY (SELECT * FROM (VALUES {rows}) t({LINE_COLUMNS})) TO '{lines / 'FY1995-P02.parquet'}'")
    _ingest(
        tmp_path,
        repo_paths,
        _stream("orders", "erp.orders", "parquet", "erp/orders/{period}.parquet", True),
        ["FY1995-P02"],
    )
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:  # another tenant's order 9 does not count
        conn.execute("INSERT INTO raw.orders SELECT * REPLACE (9 AS o_orderkey, 'other' AS x_org_slug) FROM raw.orders")
    parent = ParentKey("l_orderkey", "raw.orders", "o_orderkey", "quarantine.orders", "acme")
    result = _ingest(
        tmp_path,
        repo_paths,
        _stream("lineitem", "erp.lineitem", "parquet", "erp/lineitem/{period}.parquet", True),
        ["FY1995-P02"],
        (parent,),
    )
    assert result.landed.rows == 2
    assert result.rules == {"orphan_of_quarantined_parent": 1, "references__l_orderkey": 1}
    assert _query(tmp_path, "SELECT l_orderkey, quarantine_reason FROM quarantine.lineitem ORDER BY 1") == [
        ("3", "l_orderkey '3' belongs to a quarantined orders row"),
        ("9", "l_orderkey '9' has no orders row"),
    ]


def test_a_unique_column_keeps_its_first_row_per_extract(tmp_path: Path, project_copy: ProjectPaths) -> None:
    contract = project_copy.contracts / "erp" / "orders" / "1.0.0.yaml"
    contract.write_text(
        contract.read_text().replace("physicalName: o_comment\n", "physicalName: o_comment\n    unique: true\n")
    )
    folder = tmp_path / "sources" / "erp" / "orders"
    folder.mkdir(parents=True)
    values = ", ".join([ORDERS["good"], ORDERS["good_2"], GOOD_ORDER.replace("(1,", "(7,").replace("'ok'", "NULL")])
    for period in ("FY1995-P02", "FY1995-P03"):  # the same comment in two extracts is no repeat
        duckdb.sql(f"COPY (SELECT * FROM (VALUES {values}) t({COLUMNS})) TO '{folder / period}.parquet'")
    result = _ingest(
        tmp_path,
        project_copy,
        _stream("orders", "erp.orders", "parquet", "erp/orders/{period}.parquet", True),
        ["FY1995-P02", "FY1995-P03"],
    )
    assert dict(result.rules) == {"unique__o_comment": 2}
    assert _query(
        tmp_path, "SELECT fiscal_period, quarantine_reason, o_orderkey FROM quarantine.orders ORDER BY 1"
    ) == [
        ("FY1995-P02", "o_comment 'ok' repeats an earlier row", "2"),
        ("FY1995-P03", "o_comment 'ok' repeats an earlier row", "2"),
    ]
