"""The plain-DuckDB reference: BareCount's work written by hand as SQL, with no framework around it.

It reads the same sample extracts and does what the pipeline does with them: each ERP table lands
in `raw` with the nine lineage columns, the rows that break a contract rule (required, type, range,
accepted values, duplicate key, missing parent) go to `quarantine` with the rule; order lines and
orders are conformed into `gdp` with their fiscal period; the nine KPIs are computed per period.
No checks, ledger, metadata or orchestration: the work itself, the floor BareCount is held against.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from barecount.calendar import FiscalCalendar
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.sql.calendar_tables import calendar_days_sql, calendar_sql
from barecount.sql.relation import sql_literal

LINEAGE = (
    "'acme' AS x_org_slug, '{pipeline}' AS x_pipeline_id, 'erp-reader' AS x_credential_id, "
    "current_date AS x_pipeline_run_date, 'reference' AS x_run_id, now()::TIMESTAMP AS x_ingested_at, "
    "current_date AS x_ingestion_date, '1.0.0' AS x_contract_version, 'reference' AS x_schema_hash"
)


@dataclass(frozen=True)
class RawTable:
    """One ERP table as the reference lands it: its key and the contract's rules as predicates."""

    name: str
    key: tuple[str, ...]
    rules: dict[str, str]
    partitioned: bool = False
    parent: tuple[str, str] | None = None
    """(column, parent table) whose key the column must find in raw."""


def _required(*columns: str) -> dict[str, str]:
    return {f"required__{c}": f"{c} IS NULL" for c in columns}


RAW_TABLES = (
    RawTable("region", ("r_regionkey",), _required("r_regionkey", "r_name")),
    RawTable("nation", ("n_nationkey",), _required("n_nationkey", "n_name", "n_regionkey")),
    RawTable(
        "customer",
        ("c_custkey",),
        _required("c_custkey", "c_name", "c_nationkey", "c_mktsegment")
        | {
            "pattern__c_phone": r"NOT regexp_full_match(c_phone, '^\d{2}-\d{3}-\d{3}-\d{4}$')",
            "valid_values__c_mktsegment": "c_mktsegment NOT IN "
            "('AUTOMOBILE', 'BUILDING', 'FURNITURE', 'HOUSEHOLD', 'MACHINERY')",
        },
    ),
    RawTable(
        "part",
        ("p_partkey",),
        _required("p_partkey", "p_name", "p_retailprice")
        | {"range__p_size": "p_size < 1", "range__p_retailprice": "p_retailprice < 0"},
    ),
    RawTable("supplier", ("s_suppkey",), _required("s_suppkey", "s_name", "s_nationkey")),
    RawTable(
        "partsupp",
        ("ps_partkey", "ps_suppkey"),
        _required("ps_partkey", "ps_suppkey", "ps_supplycost")
        | {"range__ps_availqty": "ps_availqty < 0", "range__ps_supplycost": "ps_supplycost < 0"},
    ),
    RawTable(
        "orders",
        ("o_orderkey",),
        _required(
            "o_orderkey", "o_custkey", "o_orderstatus", "o_totalprice", "o_orderdate", "o_orderpriority", "o_clerk"
        )
        | {
            "valid_values__o_orderstatus": "o_orderstatus NOT IN ('F', 'O', 'P')",
            "range__o_totalprice": "o_totalprice < 0",
            "range__o_orderdate": "o_orderdate < DATE '1992-01-01' OR o_orderdate > DATE '1998-12-31'",
            "valid_values__o_orderpriority": "o_orderpriority NOT IN "
            "('1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW')",
        },
        partitioned=True,
    ),
    RawTable(
        "lineitem",
        ("l_orderkey", "l_linenumber"),
        _required(
            "l_orderkey",
            "l_partkey",
            "l_suppkey",
            "l_linenumber",
            "l_quantity",
            "l_extendedprice",
            "l_discount",
            "l_tax",
            "l_returnflag",
            "l_linestatus",
            "l_shipdate",
            "l_commitdate",
            "l_receiptdate",
            "l_shipmode",
        )
        | {
            "range__l_linenumber": "l_linenumber < 1 OR l_linenumber > 7",
            "range__l_quantity": "l_quantity < 1 OR l_quantity > 50",
            "range__l_extendedprice": "l_extendedprice < 0",
            "range__l_discount": "l_discount < 0 OR l_discount > 0.1",
            "range__l_tax": "l_tax < 0 OR l_tax > 0.08",
            "valid_values__l_returnflag": "l_returnflag NOT IN ('A', 'N', 'R')",
            "valid_values__l_linestatus": "l_linestatus NOT IN ('F', 'O')",
            "valid_values__l_shipmode": "l_shipmode NOT IN ('AIR', 'FOB', 'MAIL', 'RAIL', 'REG AIR', 'SHIP', 'TRUCK')",
        },
        partitioned=True,
        parent=("l_orderkey", "orders"),
    ),
)


def _raw_sql(table: RawTable, sources: Path) -> list[str]:
    folder = sources / "erp"
    path = f"{folder}/{table.name}/*.parquet" if table.partitioned else f"{folder}/{table.name}.parquet"
    period = r", regexp_extract(filename, '([^/]+)\.parquet$', 1) AS fiscal_period" if table.partitioned else ""
    by = (["fiscal_period"] if table.partitioned else []) + list(table.key)
    rules = dict(table.rules) | {"duplicate_key": "key_seen > 1"}
    if table.parent is not None:
        column, parent = table.parent
        rules["orphan"] = f"{column} NOT IN (SELECT o_orderkey FROM raw.{parent})"
    broken = ", ".join(f"CASE WHEN {condition} THEN {sql_literal(rule)} END" for rule, condition in rules.items())
    staged = f"stage_{table.name}"
    # the extract is checked once into a temporary table, then split; a key's repeats are found with a
    # hash aggregate (the first delivered row of a repeated key is kept), as BareCount's door does
    return [
        f"CREATE TEMP TABLE {staged} AS WITH src AS NOT MATERIALIZED (SELECT * EXCLUDE (filename, file_row_number), "
        f"filename AS source_file, file_row_number AS source_row{period} "
        f"FROM read_parquet('{path}', filename = true, file_row_number = true)), "
        f"repeats AS (SELECT {', '.join(by)}, min((source_file, source_row)) AS first_row FROM src GROUP BY ALL "
        "HAVING count(*) > 1) "
        f"SELECT *, list_filter([{broken}], lambda r: r IS NOT NULL) AS broken FROM ("
        "SELECT src.*, CASE WHEN repeats.first_row IS NULL OR repeats.first_row = (src.source_file, src.source_row) "
        f"THEN 1 ELSE 2 END AS key_seen FROM src LEFT JOIN repeats ON "
        + " AND ".join(f"repeats.{c} = src.{c}" for c in by)
        + ")",
        f"CREATE TABLE raw.{table.name} AS SELECT * EXCLUDE (key_seen, broken, source_file, source_row), "
        f"{LINEAGE.format(pipeline='erp.' + table.name)} FROM {staged} WHERE len(broken) = 0",
        f"CREATE TABLE quarantine.{table.name} AS SELECT * EXCLUDE (key_seen, broken, source_file, source_row), "
        f"broken[1] AS quarantine_rule, broken AS violations FROM {staged} WHERE len(broken) > 0",
        f"DROP TABLE {staged}",
    ]


GDP_SQL = (
    # survivorship as BareCount's customers model declares it: name and nation from the ERP first, contact
    # data from whichever source changed it last (the CRM, which carries a change time), segment from the CRM
    """CREATE TABLE gdp.customers AS
SELECT coalesce(e.c_custkey, c.customer_id) AS customer_key,
       sha256(coalesce(e.c_name, c.name)) AS customer_name,
       CASE WHEN coalesce(e.c_name, c.name) IS NULL THEN NULL ELSE '[redacted]' END AS phone,
       CASE WHEN coalesce(c.address, e.c_address) IS NULL THEN NULL ELSE '[redacted]' END AS address,
       coalesce(c.segment, e.c_mktsegment) AS market_segment, coalesce(e.c_nationkey, c.nation_key) AS nation_key,
       e.c_acctbal AS account_balance
FROM raw.customer AS e FULL JOIN raw.crm_customers AS c ON c.customer_id = e.c_custkey""",
    """CREATE TABLE gdp.parts AS
SELECT p_partkey AS part_key, p_name AS part_name, p_mfgr AS manufacturer, p_brand AS brand, p_type AS part_type,
       p_size AS size, p_container AS container, p_retailprice AS retail_price
FROM raw.part""",
    """CREATE TABLE gdp.suppliers AS
SELECT s.s_suppkey AS supplier_key, s.s_name AS supplier_name, s.s_acctbal AS account_balance, n.n_name AS nation,
       r.r_name AS region
FROM raw.supplier AS s
LEFT JOIN raw.nation AS n ON n.n_nationkey = s.s_nationkey
LEFT JOIN raw.region AS r ON r.r_regionkey = n.n_regionkey""",
    """CREATE TABLE gdp.orders AS
SELECT o.o_orderkey AS order_key, o.o_custkey AS customer_key, o.o_orderstatus AS order_status,
       o.o_totalprice AS total_price, o.o_orderdate AS order_date, o.o_orderpriority AS order_priority,
       o.o_clerk AS clerk, o.o_shippriority AS ship_priority,
       coalesce(c.fiscal_period, o.fiscal_period) AS fiscal_period
FROM raw.orders AS o LEFT JOIN gdp.fiscal_days AS c ON c.day = o.o_orderdate""",
    """CREATE TABLE gdp.order_lines AS
SELECT l.l_orderkey AS order_key, l.l_linenumber AS line_number, o.o_custkey AS customer_key,
       l.l_partkey AS part_key, l.l_suppkey AS supplier_key, o.o_orderdate AS order_date, l.l_shipdate AS ship_date,
       l.l_commitdate AS commit_date, l.l_receiptdate AS receipt_date, l.l_quantity AS quantity,
       l.l_extendedprice AS extended_price, l.l_discount AS discount, l.l_tax AS tax, l.l_returnflag AS return_flag,
       l.l_linestatus AS line_status, l.l_shipmode AS ship_mode, ps.ps_supplycost AS supply_cost,
       c.customer_name, c.market_segment, n.n_name AS nation, r.r_name AS region,
       coalesce(fp.fiscal_period, l.fiscal_period) AS fiscal_period
FROM raw.lineitem AS l
LEFT JOIN raw.orders AS o ON o.o_orderkey = l.l_orderkey AND o.fiscal_period = l.fiscal_period
LEFT JOIN gdp.fiscal_days AS fp ON fp.day = o.o_orderdate
LEFT JOIN raw.partsupp AS ps ON ps.ps_partkey = l.l_partkey AND ps.ps_suppkey = l.l_suppkey
LEFT JOIN gdp.customers AS c ON c.customer_key = o.o_custkey
LEFT JOIN raw.nation AS n ON n.n_nationkey = c.nation_key
LEFT JOIN raw.region AS r ON r.r_regionkey = n.n_regionkey""",
)

_REVENUE = "SUM(extended_price * (1 - discount))"
KPI_SQL = {
    "net_revenue": f"SELECT fiscal_period, {_REVENUE} AS value FROM gdp.order_lines GROUP BY ALL",
    "gross_profit": "SELECT fiscal_period, SUM(extended_price * (1 - discount) - supply_cost * quantity) AS value "
    "FROM gdp.order_lines GROUP BY ALL",
    "order_count": "SELECT fiscal_period, COUNT(DISTINCT order_key) AS value FROM gdp.order_lines GROUP BY ALL",
    "average_order_value": f"SELECT fiscal_period, {_REVENUE} / COUNT(DISTINCT order_key) AS value "
    "FROM gdp.order_lines GROUP BY ALL",
    "on_time_delivery_rate": "SELECT fiscal_period, AVG(CASE WHEN receipt_date <= commit_date THEN 1.0 ELSE 0.0 END) "
    "AS value FROM gdp.order_lines GROUP BY ALL",
    "return_rate": "SELECT fiscal_period, AVG(CASE WHEN return_flag = 'R' THEN 1.0 ELSE 0.0 END) AS value "
    "FROM gdp.order_lines GROUP BY ALL",
    "revenue_per_working_day": "SELECT l.fiscal_period, "
    "CAST(SUM(l.extended_price * (1 - l.discount)) / ANY_VALUE(c.working_days) AS DECIMAL(18, 2)) AS value "
    "FROM gdp.order_lines AS l JOIN gdp.fiscal_periods AS c USING (fiscal_period) GROUP BY ALL",
    "pricing_summary": "SELECT fiscal_period, return_flag, line_status, SUM(quantity) AS sum_qty, "
    "SUM(extended_price) AS sum_base_price, SUM(extended_price * (1 - discount)) AS sum_disc_price, "
    "SUM(extended_price * (1 - discount) * (1 + tax)) AS sum_charge, AVG(quantity) AS avg_qty, "
    "AVG(extended_price) AS avg_price, AVG(discount) AS avg_disc, COUNT(*) AS count_order "
    "FROM gdp.order_lines GROUP BY ALL",
    "discount_revenue": "SELECT fiscal_period, SUM(extended_price * discount) AS value FROM gdp.order_lines "
    "WHERE discount BETWEEN 0.05 AND 0.07 AND quantity < 24 GROUP BY ALL",
}


def _crm_sql(sources: Path) -> list[str]:
    """The CRM's customer extract (CSV, read as text like BareCount's door), typed, with its rules."""
    typed = (
        "TRY_CAST(customer_id AS BIGINT) AS customer_id, name, phone, segment, address, "
        "TRY_CAST(nation_key AS BIGINT) AS nation_key, TRY_CAST(updated_at AS TIMESTAMP) AS updated_at"
    )
    rules = {
        "required__customer_id": "customer_id IS NULL",
        "required__nation_key": "nation_key IS NULL",
        "required__updated_at": "updated_at IS NULL",
        "valid_values__segment": "segment NOT IN ('AUTOMOBILE', 'BUILDING', 'FURNITURE', 'HOUSEHOLD', 'MACHINERY')",
        "duplicate_key": "key_seen > 1",
    }
    broken = ", ".join(f"CASE WHEN {condition} THEN {sql_literal(rule)} END" for rule, condition in rules.items())
    return [
        f"CREATE TEMP TABLE stage_crm AS SELECT *, list_filter([{broken}], lambda r: r IS NOT NULL) AS broken "
        f"FROM (SELECT {typed}, row_number() OVER (PARTITION BY customer_id ORDER BY file_row) AS key_seen "
        f"FROM (SELECT *, row_number() OVER () AS file_row FROM read_csv('{sources}/crm/customers.csv', "
        "all_varchar = true)))",
        f"CREATE TABLE raw.crm_customers AS SELECT * EXCLUDE (key_seen, broken), "
        f"{LINEAGE.format(pipeline='crm.customers')} FROM stage_crm WHERE len(broken) = 0",
        "CREATE TABLE quarantine.crm_customers AS SELECT * EXCLUDE (key_seen, broken), "
        "broken[1] AS quarantine_rule, broken AS violations FROM stage_crm WHERE len(broken) > 0",
        "DROP TABLE stage_crm",
    ]


def reference_steps(sources: Path, calendar: FiscalCalendar, years: tuple[int, int]) -> dict[str, list[str]]:
    """The reference's statements by step, in order: raw, gdp, kpi (the steps BareCount's layers are timed as)."""
    raw = ["CREATE SCHEMA raw", "CREATE SCHEMA quarantine"]
    for table in RAW_TABLES:
        raw += _raw_sql(table, sources)
    raw += _crm_sql(sources)
    gdp = [
        "CREATE SCHEMA gdp",
        f"CREATE TABLE gdp.fiscal_periods AS {calendar_sql(calendar, *years)}",
        f"CREATE TABLE gdp.fiscal_days AS {calendar_days_sql(calendar, *years)}",
        *GDP_SQL,
    ]
    kpi = ["CREATE SCHEMA kpi"] + [f"CREATE TABLE kpi.{name} AS {sql}" for name, sql in KPI_SQL.items()]
    return {"raw": raw, "gdp": gdp, "kpi": kpi}


def main(arguments: list[str]) -> None:
    """`python -m barecount.devtools.bench.reference PROJECT_ROOT SOURCES DATABASE`: run the reference, print its
    step times."""
    root, sources, database = (Path(a) for a in arguments)
    settings = load_settings(ProjectPaths(root))
    years = (settings.tenant.fiscal_years.first, settings.tenant.fiscal_years.last)
    seconds: dict[str, float] = {}
    with duckdb.connect(str(database)) as conn:
        for step, statements in reference_steps(sources, settings.calendar, years).items():
            begin = time.monotonic()
            for statement in statements:
                conn.execute(statement)
            conn.execute("CHECKPOINT")  # written to the file, as a finished BareCount step is
            seconds[step] = time.monotonic() - begin
    print(json.dumps(seconds))


if __name__ == "__main__":
    main(sys.argv[1:])
