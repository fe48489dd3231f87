"""What SQL may reach beyond the tables it names: the rules the query console and project SQL share.

Neither may read session variables (where the masking key lives) or DuckDB's settings, name another
database, or call a table function that reads files or runs SQL of its own (`read_csv`, `query`);
each allows only the table functions listed for it.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlglot import exp

REFUSED_FUNCTIONS = frozenset({"getvariable", "current_setting"})
"""Scalar functions that read outside the statement's tables: session variables and settings."""


def function_name(function: exp.Expression) -> str:
    if isinstance(function, exp.Anonymous):
        return str(function.this).lower()
    return function.sql_name().lower() if isinstance(function, exp.Func) else function.key.lower()


def out_of_reach(tree: exp.Expression, table_functions: Collection[str]) -> tuple[str, str] | None:
    """The first construct of `tree` that reaches outside its tables, as (construct, why), or None."""
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            name = function_name(table.this)
            if name not in table_functions:
                return f"the table function {name}()", "can read outside the warehouse"
        elif table.catalog:
            return f"the database name in {table.sql('duckdb')}", "reaches outside the warehouse"
    for function in tree.find_all(exp.Func):
        name = function_name(function)
        if name in REFUSED_FUNCTIONS:
            return f"the function {name}()", "reads outside the warehouse's tables"
    return None
