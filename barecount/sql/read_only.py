"""The gate for SQL a person types (`barecount query`): one statement that only reads the warehouse.

It is the first of two locks. The second is the connection itself (`warehouse.connection.SEALED_CONFIG`):
no file system, no extensions, no attach, locked settings. The parser names what it refused, so a person
learns why; the connection holds even for a construct the parser does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlglot
from sqlglot import exp

from barecount.errors import UsageError
from barecount.sql.reach import out_of_reach

READ_STATEMENTS: tuple[type[exp.Expression], ...] = (
    exp.Select,
    exp.SetOperation,
    exp.Describe,
    exp.Show,
    exp.Summarize,
)
# Table functions that describe the warehouse's own catalog or make numbers: they read nothing outside it.
CATALOG_FUNCTIONS = frozenset(
    {
        "duckdb_tables",
        "duckdb_views",
        "duckdb_columns",
        "duckdb_schemas",
        "duckdb_constraints",
        "duckdb_indexes",
        "range",
        "generate_series",
    }
)
# Schemas DuckDB keeps about the warehouse itself.
CATALOG_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
# sqlglot warns when it falls back to a bare command (CALL, LOAD); the refusal says it better.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


class QueryRefused(UsageError):
    """A statement the query console does not run: it says which construct and why."""


def _refuse(construct: str, why: str) -> QueryRefused:
    return QueryRefused(
        f"refused: {construct} {why}; `barecount query` runs one statement that reads the warehouse "
        "(SELECT, WITH, DESCRIBE, SHOW or SUMMARIZE)"
    )


def _statement_name(statement: exp.Expression) -> str:
    if isinstance(statement, exp.Command):
        return str(statement.this).upper()
    return statement.key.upper()


def _first_word(sql: str) -> str:
    tokens = sqlglot.tokenize(sql, read="duckdb")
    return tokens[0].text.upper() if tokens else "the statement"


def check_read_only(sql: str, tables: Iterable[tuple[str, str]]) -> str:
    """Return `sql` if it is one read of `tables` (schema, name) or DuckDB's catalog; else raise why not."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        reason = exc.errors[0]["description"] if exc.errors else str(exc)
        raise _refuse(_first_word(sql), f"could not be read as a statement ({reason})") from None
    if not statements:
        raise QueryRefused("refused: there is no statement to run")
    if len(statements) > 1:
        kinds = ", ".join(_statement_name(s) for s in statements)
        raise _refuse(f"{len(statements)} statements ({kinds})", "were given, and only one runs")
    (statement,) = statements
    if not isinstance(statement, READ_STATEMENTS):
        raise _refuse(_first_word(sql), "is not a read")
    refused = out_of_reach(statement, CATALOG_FUNCTIONS)
    if refused is not None:
        raise _refuse(*refused)
    known = {(schema.lower(), name.lower()) for schema, name in tables}
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    for table in statement.find_all(exp.Table):
        schema, name = table.db.lower(), table.name.lower()
        in_catalog = schema in CATALOG_SCHEMAS or isinstance(table.this, exp.Func)
        if not (in_catalog or (not schema and name in ctes) or (schema or "main", name) in known):
            raise _refuse(f"{table.sql('duckdb')}", "is not a table of the warehouse")
    return sql
