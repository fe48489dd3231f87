"""A contract version as a pandera schema for landed Raw rows, validated inside DuckDB through ibis.

Quarantine has already taken the rows that break a rule, so on landed rows this is a second,
independent gate: it proves Raw holds what the contract promises (types, nulls, values, ranges,
patterns, unique keys per period, lineage never null) without pulling a row into Python.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandera.ibis as pa
from ibis.backends.sql.datatypes import DuckDBType
from pandera.api.ibis.types import IbisData

from barecount.contracts.contract import Contract, ContractColumn
from barecount.sql.relation import PARTITION_COLUMN, RAW_LINEAGE, lineage_type


def _bound(column: ContractColumn, value: str | float) -> object:
    """A contract bound as the Python value pandera compares the column with."""
    if column.logical_type == "date":
        return date.fromisoformat(str(value))
    return value


Predicate = Callable[[ir.Column], ir.BooleanValue]


def _rules(column: ContractColumn) -> list[tuple[pa.Check, Predicate]]:
    """The contract's value rules on `column`: each as a pandera check and as the same test in ibis."""
    rules: list[tuple[pa.Check, Predicate]] = []
    if column.valid_values:
        allowed = list(column.valid_values)
        rules.append((pa.Check.isin(allowed), lambda v: v.isin(allowed)))
    if column.minimum is not None:
        low = _bound(column, column.minimum)
        rules.append((pa.Check.ge(low), lambda v: v >= low))
    if column.maximum is not None:
        high = _bound(column, column.maximum)
        rules.append((pa.Check.le(high), lambda v: v <= high))
    if column.pattern:
        pattern = f"^(?:{column.pattern})$"
        rules.append((pa.Check.str_matches(pattern), lambda v: v.re_search(pattern)))
    return rules


def _present(value: ir.Column) -> ir.BooleanValue:
    """Not null; pandera counts NaN as null too."""
    present = value.notnull()
    return present & ~value.isnan() if value.type().is_floating() else present


def landed_types(contract: Contract, partitioned: bool) -> dict[str, dt.DataType]:
    """The columns of `raw.<stream>` rows landed under `contract`, with their types."""
    types = {c.name: DuckDBType.from_string(c.physical_type) for c in contract.columns}
    types |= {name: DuckDBType.from_string(lineage_type(name)) for name in RAW_LINEAGE}
    if partitioned:
        types[PARTITION_COLUMN] = dt.string
    return types


def _required(contract: Contract, partitioned: bool) -> set[str]:
    return (
        {c.name for c in contract.columns if c.required}
        | set(RAW_LINEAGE)
        | ({PARTITION_COLUMN} if partitioned else set())
    )


def _key(contract: Contract, partitioned: bool) -> list[str]:
    """The contract's key; the ibis backend checks uniqueness at schema level only, and a key is unique within its
    extract (its period)."""
    return [*([PARTITION_COLUMN] if partitioned else []), *contract.primary_key] if contract.primary_key else []


def row_rules(contract: Contract, partitioned: bool, table: ir.Table) -> list[tuple[str, ir.BooleanValue]]:
    """Every row rule of `contract` on `table` as (column: check, true where a row keeps it)."""
    holds = [(f"{name}: not_nullable", _present(table[name])) for name in sorted(_required(contract, partitioned))]
    for column in contract.columns:
        # like pandera's column checks, a rule judges values only: nulls are the `required` rule's
        value = table[column.name]
        holds += [(f"{column.name}: {check.name}", value.isnull() | test(value)) for check, test in _rules(column)]
    return holds


def repeated_keys(table: ir.Table, key: list[str]) -> ir.IntegerScalar:
    """How many key values of `table` appear on more than one row."""
    return table.group_by(key).aggregate(rows=table.count()).filter(lambda t: t.rows > 1).count()


@dataclass(frozen=True)
class RuleBreaks:
    """The rules `contract_schema` checks, as SQL (DuckDB's dialect) counting the rows that break each, per period:
    for an engine pandera does not run on (BigQuery)."""

    rules: list[str]
    """Each rule's name (`column: check`), in the order of `rules_sql`'s counts."""
    rules_sql: str
    """A row per period (its key first; one row without it for a snapshot): the rows breaking each rule."""
    keys_sql: str | None
    """A row per period (the same way): how many key values repeat; None when the contract has no key."""


def rule_breaks(contract: Contract, partitioned: bool, table: ir.Table) -> RuleBreaks:
    """`RuleBreaks` of `contract` on the rows of `table`."""
    holds = row_rules(contract, partitioned, table)
    counts = {f"rule_{i}": (~kept).sum() for i, (_, kept) in enumerate(holds)}
    period = [PARTITION_COLUMN] if partitioned else []
    by_period = table.group_by(period).aggregate(**counts) if period else table.aggregate(**counts)
    key, keys_sql = _key(contract, partitioned), None
    if key:
        repeats = table.group_by(key).aggregate(rows=table.count()).filter(lambda t: t.rows > 1)
        repeated = (
            repeats.group_by(period).aggregate(repeated=repeats.count())
            if period
            else repeats.aggregate(repeated=repeats.count())
        )
        keys_sql = str(ibis.to_sql(repeated, dialect="duckdb"))
    return RuleBreaks([name for name, _ in holds], str(ibis.to_sql(by_period, dialect="duckdb")), keys_sql)


def contract_schema(contract: Contract, partitioned: bool, one_query: bool = False) -> pa.DataFrameSchema:
    """The pandera schema of `raw.<stream>` rows landed under `contract`.

    With `one_query`, every null, value and key rule is one table-wide check, so that rows that pass cost one
    query instead of one per column and rule (0.14 s a stream even for five rows, most of a stream's gate),
    and the key is tested with a grouping instead of pandera's window over every row (TPC-H SF1's 6 M order
    lines: 0.5 s against 1.8 s). It says only pass or fail; the schema without it says which rule broke.
    """
    types = landed_types(contract, partitioned)
    required = _required(contract, partitioned)
    rules = {c.name: _rules(c) for c in contract.columns}
    key = _key(contract, partitioned)

    def every_rule_holds(data: IbisData) -> ir.BooleanScalar:
        table = data.table
        every_row = functools.reduce(operator.and_, [holds for _, holds in row_rules(contract, partitioned, table)])
        if not key:
            return every_row.all()
        return every_row.all() & (repeated_keys(table, key).as_scalar() == 0)

    columns = {
        name: pa.Column(
            dtype,
            [] if one_query else [check for check, _ in rules.get(name, [])],
            nullable=one_query or name not in required,
        )
        for name, dtype in types.items()
    }
    return pa.DataFrameSchema(
        columns,
        checks=[pa.Check(every_rule_holds, name="every contract rule")] if one_query else None,
        unique=None if one_query or not key else key,
        strict=True,
        name=f"{contract.id} {contract.version}",
    )
