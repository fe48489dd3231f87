"""A contract version's promises about landed Raw rows as SQL (DuckDB's dialect): the columns and their types,
and a query counting, per period, the rows that break each rule and the key values that repeat.

This is the contract gate's pass path on every engine: a landing that passes costs a catalog read and two queries,
and neither pandera nor ibis (0.9 s to import, and ibis compiles each query in about 50 ms).
`pandera_schema` is the same contract as pandera's own checks, which name the rule and column a failing period
broke.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from barecount.contracts.contract import Contract, ContractColumn
from barecount.sql.relation import PARTITION_COLUMN, RAW_LINEAGE, in_list, lineage_type, quote_ident, sql_literal
from barecount.sql.widening import INTEGER_TYPES

_FLOATS = ("REAL", "FLOAT", "DOUBLE")
BIGQUERY_NUMERIC = "DECIMAL(38,9)"
"""BigQuery's NUMERIC as its DuckDB type (`warehouse.bigquery.DUCKDB_TYPES`)."""


def _bound(column: ContractColumn, value: str | float) -> object:
    """A contract bound as the Python value the column is compared with."""
    if column.logical_type == "date":
        return date.fromisoformat(str(value))
    return value


@dataclass(frozen=True)
class ValueRule:
    """One of the contract's value rules on a column, which the SQL here and `pandera_schema`'s checks both judge."""

    check: str
    """The check as pandera names it."""
    argument: object
    """What pandera's check takes: the allowed values, a bound, the anchored pattern."""
    kept_sql: str
    """SQL true where a (non-null) value of the column keeps the rule."""


def _literal(value: object) -> str:
    return str(value) if isinstance(value, int | float) else sql_literal(value)  # type: ignore[arg-type]


def value_rules(column: ContractColumn) -> list[ValueRule]:
    """The contract's value rules on `column`."""
    value = quote_ident(column.name)
    rules = []
    if column.valid_values:
        rules.append(ValueRule("isin", list(column.valid_values), f"{value} IN {in_list(column.valid_values)}"))
    if column.minimum is not None:
        low = _bound(column, column.minimum)
        rules.append(ValueRule("greater_than_or_equal_to", low, f"{value} >= {_literal(low)}"))
    if column.maximum is not None:
        high = _bound(column, column.maximum)
        rules.append(ValueRule("less_than_or_equal_to", high, f"{value} <= {_literal(high)}"))
    if column.pattern:
        pattern = f"^(?:{column.pattern})$"  # anchored: a value matches it whole
        rules.append(ValueRule("str_matches", pattern, f"regexp_matches({value}, {sql_literal(pattern)})"))
    return rules


def landed_types(contract: Contract, partitioned: bool) -> dict[str, str]:
    """The columns of `raw.<stream>` rows landed under `contract`, with their DuckDB types."""
    types = {c.name: c.physical_type for c in contract.columns}
    types |= {name: lineage_type(name) for name in RAW_LINEAGE}
    if partitioned:
        types[PARTITION_COLUMN] = "VARCHAR"
    return types


def required(contract: Contract, partitioned: bool) -> set[str]:
    """The columns that may not be null: the contract's required ones, lineage, and the period."""
    return (
        {c.name for c in contract.columns if c.required}
        | set(RAW_LINEAGE)
        | ({PARTITION_COLUMN} if partitioned else set())
    )


def key_columns(contract: Contract, partitioned: bool) -> list[str]:
    """The contract's key; a key is unique within its extract (its period)."""
    return [*([PARTITION_COLUMN] if partitioned else []), *contract.primary_key] if contract.primary_key else []


def _normal(type_name: str) -> str:
    """A DuckDB type as its catalog names it (`DECIMAL(15,2)`; REAL is FLOAT)."""
    name = type_name.upper().replace(" ", "")
    return "FLOAT" if name == "REAL" else name


def stored_as(expected: str, actual: str, bigquery: bool) -> bool:
    """Whether a column of type `expected` is stored as `actual`. BigQuery keeps every integer as INT64, and a table
    made from a query's columns has plain NUMERIC ones (a query's NUMERIC carries no precision; the values keep the
    scale their cast rounded them to)."""
    expected, actual = _normal(expected), _normal(actual)
    if bigquery and expected in INTEGER_TYPES and actual in INTEGER_TYPES:
        return True
    if bigquery and expected.startswith("DECIMAL") and actual == BIGQUERY_NUMERIC:
        return True
    return expected == actual


def column_problems(expected: Mapping[str, str], actual: Mapping[str, str], bigquery: bool) -> list[str]:
    """What the table's columns lack, add or type otherwise than the contract says, named as pandera names them."""
    problems = [f"{n}: column_in_dataframe" for n in expected if n not in actual]
    problems += [f"{n}: column_in_schema" for n in actual if n not in expected]
    problems += [
        f"{n}: dtype('{expected[n]}')"
        for n in expected
        if n in actual and not stored_as(expected[n], actual[n], bigquery)
    ]
    return problems


def row_rules(contract: Contract, partitioned: bool) -> list[tuple[str, str]]:
    """Every row rule of `contract` as (column: check, SQL true where a row keeps it)."""
    types = landed_types(contract, partitioned)
    holds = []
    for name in sorted(required(contract, partitioned)):
        present = f"{quote_ident(name)} IS NOT NULL"  # pandera counts NaN as null too
        floating = _normal(types[name]) in _FLOATS
        holds.append(
            (f"{name}: not_nullable", f"{present} AND NOT isnan({quote_ident(name)})" if floating else present)
        )
    for column in contract.columns:
        # like pandera's column checks, a rule judges values only: nulls are the `required` rule's
        value = quote_ident(column.name)
        holds += [(f"{column.name}: {r.check}", f"({value} IS NULL OR {r.kept_sql})") for r in value_rules(column)]
    return holds


@dataclass(frozen=True)
class RuleBreaks:
    """The rules of a contract as SQL counting the rows that break each, per period, among the rows a run landed
    under one contract version (the queries take the run's id and the version as parameters)."""

    rules: list[str]
    """Each rule's name (`column: check`), in the order of `rules_sql`'s counts."""
    rules_sql: str
    """A row per period (its key first; one row without it for a snapshot): the rows breaking each rule."""
    keys_sql: str | None
    """A row per period (the same way): how many key values repeat; None when the contract has no key."""


def rule_breaks(contract: Contract, partitioned: bool, table: str) -> RuleBreaks:
    """`RuleBreaks` of `contract` on the rows of `table` (a qualified name, e.g. `raw.orders`)."""
    landed = f"SELECT * FROM {table} WHERE x_run_id = ? AND x_contract_version = ?"
    holds = row_rules(contract, partitioned)
    counts = ", ".join(f"sum(CASE WHEN {kept} THEN 0 ELSE 1 END)" for _, kept in holds)
    period = f"{PARTITION_COLUMN}, " if partitioned else ""
    group = " GROUP BY 1" if partitioned else ""
    rules_sql = f"SELECT {period}{counts} FROM ({landed}) AS landed{group}"
    key, keys_sql = key_columns(contract, partitioned), None
    if key:
        positions = ", ".join(str(i) for i in range(1, len(key) + 1))
        repeats = f"SELECT {', '.join(map(quote_ident, key))} FROM ({landed}) AS landed GROUP BY {positions}"
        repeats += " HAVING count(*) > 1"
        keys_sql = f"SELECT {period}count(*) FROM ({repeats}) AS repeats{group}"
    return RuleBreaks([name for name, _ in holds], rules_sql, keys_sql)
