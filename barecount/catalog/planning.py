"""Run every model's and KPI's SQL without data: on empty tables shaped as the contracts and models say.

An unknown column, a function called with the wrong types or a KPI measure that is text fails here, when
the project is loaded (by `check`, a run, the UI), with the file and line, instead of minutes into a run.
Each model's output is a table of its own, so what reads it is planned against the columns it really has.
The connection is in memory and sealed: SQL under check reaches no file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter

import duckdb

from barecount.contracts import ContractRegistry
from barecount.contracts.contract import Contract
from barecount.errors import SpecError, UsageError
from barecount.sql.calendar_tables import CALENDAR_TABLES
from barecount.sql.pii import PII_KEY_VARIABLE
from barecount.sql.relation import LINEAGE_COLUMNS, PARTITION_COLUMN, RAW_LINEAGE, lineage_type, quote_ident
from barecount.warehouse.connection import SEALED_CONFIG

TableColumns = dict[str, str]
"""Column name -> DuckDB type, in the table's order."""

NUMERIC_TYPE = re.compile(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|DECIMAL\(\d+,\s*\d+\)|FLOAT|DOUBLE|REAL)$")
DUCKDB_LINE = re.compile(r"^LINE (\d+):", re.MULTILINE)


@dataclass(frozen=True)
class PlannedSql:
    """A model or KPI to plan: its table, its inputs, its SQL (masked as it runs), and where it came from."""

    ref: str
    depends_on: tuple[str, ...]
    sql: str
    """As it runs: a model's with its PII columns masked."""
    written: str
    """As the file has it, to count its lines."""
    sql_file: str
    spec_file: str
    measures: tuple[str, ...] = ()


@dataclass
class Plan:
    """Every table's columns as the SQL makes them, and what could not be planned."""

    tables: dict[str, TableColumns] = field(default_factory=dict)
    """`layer.table` -> its columns, lineage included, as SQL that reads it finds them."""
    returned: dict[str, list[str]] = field(default_factory=dict)
    """Ref -> the columns its SQL returns."""
    errors: list[SpecError] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    """Refs whose SQL failed, or that read one that did: no error is repeated down the graph."""

    def schema(self) -> dict[str, dict[str, TableColumns]]:
        """{layer: {table: {column: type}}}, as sqlglot's optimizer takes it."""
        nested: dict[str, dict[str, TableColumns]] = {}
        for name, columns in self.tables.items():
            layer, table = name.split(".", 1)
            nested.setdefault(layer, {})[table] = columns
        return nested


def contract_in_force(registry: ContractRegistry, contract_id: str) -> Contract:
    """The version the Raw table of a stream has now: the newest in force, else the newest drafted."""
    try:
        return registry.in_force(contract_id, None)
    except UsageError:  # no version in force yet: the newest draft is what will land
        return registry.versions(contract_id)[-1]


def raw_columns(contract: Contract, partitioned: bool) -> TableColumns:
    columns = {c.name: c.physical_type for c in contract.columns}
    columns |= {name: lineage_type(name) for name in RAW_LINEAGE}
    if partitioned:
        columns[PARTITION_COLUMN] = "VARCHAR"
    return columns


def _create_empty(conn: duckdb.DuckDBPyConnection, name: str, columns: Mapping[str, str]) -> None:
    layer, table = name.split(".", 1)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(layer)}")
    shown = ", ".join(f"{quote_ident(c)} {kind}" for c, kind in columns.items())
    conn.execute(f"CREATE TABLE {quote_ident(layer)}.{quote_ident(table)} ({shown})")


def _failure(exc: duckdb.Error, item: PlannedSql, offset: int) -> SpecError:
    """DuckDB's message, first line, at the SQL file's own line where DuckDB names one."""
    message = str(exc)
    found = DUCKDB_LINE.search(message)
    line = int(found.group(1)) - offset if found and item.sql_file != item.spec_file else 0
    first = message.splitlines()[0]
    return SpecError(item.sql_file, max(line, 0), 0, "", f"the SQL does not run on the declared inputs: {first}")


def _plan_one(conn: duckdb.DuckDBPyConnection, plan: Plan, item: PlannedSql) -> None:
    layer, table = item.ref.split("/", 1)
    target = f"{quote_ident(layer)}.{quote_ident(table)}"
    statement = f"CREATE TABLE {target} AS SELECT * FROM (\n{item.sql}\n) AS planned LIMIT 0"
    # DuckDB counts lines from the statement's start; the user's SQL starts this many lines in
    offset = statement[: statement.find(item.written)].count("\n")
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(layer)}")
        conn.execute(statement)
    except duckdb.Error as exc:
        plan.errors.append(_failure(exc, item, offset))
        plan.failed.add(item.ref)
        return
    described = conn.execute(f"DESCRIBE {target}").fetchall()
    columns = {str(row[0]): str(row[1]) for row in described}
    plan.returned[item.ref] = list(columns)
    stamped = {name: lineage_type(name) for name in LINEAGE_COLUMNS}  # the writer stamps these on every row
    for name, kind in stamped.items():
        if name not in columns:
            conn.execute(f"ALTER TABLE {target} ADD COLUMN {name} {kind}")
    plan.tables[f"{layer}.{table}"] = columns | stamped
    for measure in item.measures:
        kind = columns.get(measure)
        if kind is not None and not NUMERIC_TYPE.match(kind):
            reason = f"measure '{measure}' is {kind}: a KPI measure is a number (cast it, e.g. CAST(... AS DECIMAL))"
            plan.errors.append(SpecError(item.spec_file, 0, 0, "measures", reason))
            plan.failed.add(item.ref)


def plan_sql(raw_tables: Mapping[str, TableColumns], items: Iterable[PlannedSql], skip: Iterable[str] = ()) -> Plan:
    """Plan each item in dependency order, on empty Raw and calendar tables.

    `skip` names refs already known to be broken (their SQL does not parse, say): they and what reads
    them are not planned, so each problem is reported once, where it is.
    """
    plan = Plan(failed=set(skip))
    by_ref = {item.ref: item for item in items}
    graph = {ref: set(item.depends_on) & set(by_ref) for ref, item in by_ref.items()}
    try:
        ordered = list(TopologicalSorter(graph).static_order())
    except CycleError:
        return plan  # the graph check names the cycle
    shapes = {**raw_tables, **{ref.replace("/", "."): types for ref, (_, types, _) in CALENDAR_TABLES.items()}}
    with duckdb.connect(":memory:", config=dict(SEALED_CONFIG)) as conn:
        conn.execute(f"SET VARIABLE {PII_KEY_VARIABLE} = 'planning'")
        for name, columns in shapes.items():
            _create_empty(conn, name, columns)
            plan.tables[name] = dict(columns)
        for ref in ordered:
            item = by_ref[ref]
            if ref in plan.failed or plan.failed & set(item.depends_on):
                plan.failed.add(ref)
                continue
            _plan_one(conn, plan, item)
    return plan
