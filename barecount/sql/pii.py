"""Masking personal data on its way out of Raw: every GDP model declares how each PII column is masked.

The hash key comes from the environment (`BARECOUNT_PII_KEY`), never from a file. It reaches DuckDB as
a session variable, so the SQL kept as evidence names the variable, not the key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from sqlglot import exp

from barecount.errors import UsageError
from barecount.sql.relation import quote_ident

DIALECT = "duckdb"
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


class MissingKeyError(UsageError):
    """A model hashes personal data and the key is not in the environment: configuration, named before any work."""


def masking_variables(model: str, pii: Mapping[str, str]) -> dict[str, str]:
    """The session variables the masked SQL needs; refuses to run without a key when a column is hashed."""
    if "hash" not in pii.values():
        return {}
    key = os.environ.get(PII_KEY_ENV, "")
    if not key:
        hashed = ", ".join(c for c, t in pii.items() if t == "hash")
        raise MissingKeyError(
            f"{PII_KEY_ENV} is not set: model {model} masks {hashed} with a keyed hash. Set it in the environment "
            f"of every barecount command and of `barecount ui` (never in a file), e.g. "
            f"`export {PII_KEY_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))')`, and keep it: "
            "with another key the hashed values change"
        )
    return {PII_KEY_VARIABLE: key}


def check_masking_keys(models: Iterable[tuple[str, Mapping[str, str]]]) -> None:
    """Before any work: every model that hashes personal data finds its key (models: name and `pii` treatments)."""
    for name, pii in models:
        masking_variables(name, pii)


class UntraceableSql(ValueError):
    """SQL over personal data whose output cannot be traced column by column: refused, never guessed."""


def _whole_row_reference(tree: exp.Expression) -> str | None:
    """A construct that reads rows whole or columns by pattern, which column lineage cannot follow."""
    for star in tree.find_all(exp.Star):
        if not isinstance(star.parent, exp.Count):
            return f"{star.parent.sql(DIALECT) if star.parent else '*'} reads whole rows"
    for whole in tree.find_all(exp.TableColumn):
        return f"{whole.sql(DIALECT)} is a whole row of {whole.name}"
    for column in tree.find_all(exp.Column):
        if column.is_star:
            return f"{column.sql(DIALECT)} inside an expression reads whole rows"
    for function in tree.find_all(exp.Anonymous, exp.Columns):
        if isinstance(function, exp.Columns) or str(function.this).lower() in ("columns", "unpack"):
            return f"{function.sql(DIALECT)} picks columns by pattern"
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            lambdas = {str(p.name) for lam in projection.find_all(exp.Lambda) for p in lam.expressions}
            for column in projection.find_all(exp.Column):
                if not column.table and column.name not in lambdas:
                    return f"{column.sql(DIALECT)} is not a column of any input (a whole row?)"
    return None


def column_sources(sql: str, schema: Mapping[str, Mapping[str, Mapping[str, str]]]) -> dict[str, set[str]]:
    """Output column -> every `layer.table.column` it is computed from (sqlglot column lineage).

    `schema` is {layer: {table: {column: type}}} for every table the SQL reads. Fails closed: a column
    that cannot be resolved, a star left unexpanded, a whole-row reference, a column picked by pattern,
    or an output whose lineage ends anywhere but a known column raises `UntraceableSql`.
    """
    import sqlglot
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.qualify import qualify

    try:
        tree = qualify(sqlglot.parse_one(sql, read=DIALECT), schema=schema, dialect=DIALECT)
    except SqlglotError as exc:
        raise UntraceableSql(f"its columns cannot be traced ({str(exc).splitlines()[0]})") from None
    problem = _whole_row_reference(tree)
    if problem is not None:
        raise UntraceableSql(problem)
    found: dict[str, set[str]] = {}
    for select in tree.selects:
        name = select.alias_or_name
        try:
            node = lineage(name, tree, schema=schema, dialect=DIALECT)
        except SqlglotError as exc:
            raise UntraceableSql(f"column {name} cannot be traced ({str(exc).splitlines()[0]})") from None
        origins = found.setdefault(name, set())
        for leaf in node.walk():
            if leaf.downstream:
                continue
            if isinstance(leaf.source, exp.Table):
                column = leaf.name.split(".")[-1].strip('"')
                if column == "*":
                    raise UntraceableSql(f"column {name} reads whole rows of {leaf.source.sql(DIALECT)}")
                origins.add(f"{leaf.source.db}.{leaf.source.name}.{column}")
            elif any(True for _ in leaf.expression.find_all(exp.Column)):
                raise UntraceableSql(f"column {name} cannot be traced to the columns of its inputs")
    return found
