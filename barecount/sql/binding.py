"""Read which tables a model's SQL uses, and bind them to partition-filtered relations.

Model and KPI SQL is plain SQL that names its inputs as `<layer>.<table>`. At run time each such
table is replaced by the input's relation (the table filtered to the periods being built), so one
statement processes a whole range of periods and no rows leave the warehouse.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from barecount.sql.reach import out_of_reach

DIALECT = "duckdb"


PROJECT_TABLE_FUNCTIONS = frozenset({"unnest", "range", "generate_series"})
"""The table functions model and KPI SQL may call: they make rows from values, and read nothing."""


class SqlInputError(ValueError):
    """The SQL cannot be parsed, is not one SELECT, or reads a table it did not declare."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.line, self.column = line, column


def _parse(sql: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=DIALECT) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        reason = f"SQL does not parse: {first.get('description', exc)}"
        raise SqlInputError(reason, first.get("line", 0), first.get("col", 0)) from None
    if len(statements) != 1:
        raise SqlInputError(f"the SQL holds {len(statements)} statements: a model or KPI is one SELECT")
    (tree,) = statements
    if not isinstance(tree, exp.Query):
        kind = str(tree.this).upper() if isinstance(tree, exp.Command) else tree.key.upper()
        raise SqlInputError(f"the SQL is not a SELECT but {kind}: a model or KPI is one SELECT (or WITH ... SELECT)")
    refused = out_of_reach(tree, PROJECT_TABLE_FUNCTIONS)
    if refused is not None:
        construct, why = refused
        raise SqlInputError(f"{construct} {why}: a model or KPI reads only the tables it declares in depends_on")
    return tree


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name for cte in tree.find_all(exp.CTE)}


def referenced_tables(sql: str) -> set[str]:
    """The `<schema>.<table>` names the SQL reads; unqualified names that are not CTEs are errors."""
    tree = _parse(sql)
    ctes = _cte_names(tree)
    names = set()
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):  # unnest, range: rows made from values
            continue
        if table.db:
            names.add(f"{table.db}.{table.name}")
        elif table.name not in ctes:
            raise SqlInputError(f"table '{table.name}' has no schema: write it as <layer>.{table.name}")
    return names


def output_columns(sql: str) -> list[str] | None:
    """The names of the columns the SQL returns, or None when it selects `*` (not known without the tables)."""
    tree = _parse(sql)
    assert isinstance(tree, exp.Query)
    if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and e.is_star) for e in tree.selects):
        return None
    return list(tree.named_selects)


def bind_inputs(sql: str, relations: Mapping[str, str]) -> str:
    """Replace each `<schema>.<table>` in `sql` by the SELECT given for it, keeping its alias."""
    template, slots = _binding_template(sql, frozenset(relations))
    for slot, name in slots.items():
        template = template.replace(slot, f"(\n{relations[name]}\n)", 1)
    return template


@functools.lru_cache(maxsize=256)
def _binding_template(sql: str, names: frozenset[str]) -> tuple[str, dict[str, str]]:
    """`sql` with every table in `names` as a unique placeholder, and which table each stands for.

    Parsed once per statement and process: the relations bound into it (periods, filters) change from
    run to run, the statement does not, and parsing and printing a tree per step cost ~0.1 s.
    """
    tree = _parse(sql)
    slots: dict[str, str] = {}
    for table in list(tree.find_all(exp.Table)):
        name = f"{table.db}.{table.name}" if table.db else None
        if name is None or name not in names:
            continue
        slot = f"__barecount_input_{len(slots)}__"
        slots[slot] = name
        table.replace(
            exp.Table(
                this=exp.to_identifier(slot), alias=exp.TableAlias(this=exp.to_identifier(table.alias or table.name))
            )
        )
    return tree.sql(dialect=DIALECT, pretty=True), slots
