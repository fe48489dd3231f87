"""Masking personal data on its way out of Raw: every GDP model declares how each PII column is masked.

The hash key comes from the environment (`BARECOUNT_PII_KEY`), never from a file. It reaches DuckDB as
a session variable, so the SQL kept as evidence names the variable, not the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from barecount.errors import RefusedError
from barecount.sql.relation import quote_ident

PII_KEY_ENV = "BARECOUNT_PII_KEY"
PII_KEY_VARIABLE = "barecount_pii_key"
REDACTED = "[redacted]"


def _masked(column: str, treatment: str) -> str:
    name = quote_ident(column)
    if treatment == "hash":
        value = f"sha256(getvariable('{PII_KEY_VARIABLE}') || ':' || CAST({name} AS VARCHAR))"
    else:
        value = f"'{REDACTED}'"
    return f"CASE WHEN {name} IS NULL THEN NULL ELSE {value} END AS {name}"


def mask_sql(sql: str, pii: Mapping[str, str]) -> str:
    """The model's SELECT with its PII columns replaced by their masked values."""
    if not pii:
        return sql
    replaced = ", ".join(_masked(column, treatment) for column, treatment in pii.items())
    return f"SELECT * REPLACE ({replaced}) FROM (\n{sql}\n) AS unmasked"


def masking_variables(model: str, pii: Mapping[str, str]) -> dict[str, str]:
    """The session variables the masked SQL needs; refuses to run without a key when a column is hashed."""
    if "hash" not in pii.values():
        return {}
    key = os.environ.get(PII_KEY_ENV, "")
    if not key:
        hashed = ", ".join(c for c, t in pii.items() if t == "hash")
        raise RefusedError(
            f"{PII_KEY_ENV} is not set: model {model} masks {hashed} with a keyed hash. Set the key in the "
            "environment of the run (never in a file); keep it stable, or hashed values change between runs"
        )
    return {PII_KEY_VARIABLE: key}


def personal_sources(sql: str, schema: Mapping[str, Mapping[str, Mapping[str, str]]]) -> dict[str, set[str]]:
    """Output column -> the `layer.table.column`s it is computed from (sqlglot column lineage).

    `schema` is {layer: {table: {column: type}}} for the tables whose columns matter; a SELECT that
    sqlglot cannot follow yields no entry for that column rather than a guess.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.qualify import qualify

    try:
        tree = qualify(
            sqlglot.parse_one(sql, read="duckdb"),
            schema=schema,
            dialect="duckdb",
            validate_qualify_columns=False,
        )
    except SqlglotError:
        return {}
    found: dict[str, set[str]] = {}
    for select in tree.selects:
        name = select.alias_or_name
        try:
            node = lineage(name, tree, schema=schema, dialect="duckdb")
        except SqlglotError:
            continue
        for leaf in node.walk():
            if leaf.downstream or not isinstance(leaf.source, exp.Table):
                continue
            table = leaf.source
            found.setdefault(name, set()).add(f"{table.db}.{table.name}.{leaf.name.split('.')[-1].strip(chr(34))}")
    return found
