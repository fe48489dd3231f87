"""The SQL of a survivorship model: one row per entity key found in any source, each attribute taken from
the source its rule picks, and the name of that source beside it (`<attribute>_source`).

Written in plain CASE expressions, so that the same SQL runs on DuckDB and transpiles to BigQuery (a
sorted list of structs, the obvious way in DuckDB, has no BigQuery translation).
"""

from __future__ import annotations

from barecount.specs.model import AttributeRule, SurvivorshipSpec
from barecount.sql.relation import quote_ident, sql_literal

NEVER = "TIMESTAMP '0001-01-01 00:00:00'"
"""When a source without a change time changed: before any time a source gives (the earliest time both
DuckDB and BigQuery hold)."""


def _winner(rule: AttributeRule) -> str:
    """The name of the source whose value survives: among the sources with a value, the one changed last (for
    most_recent_non_null), ties and other rules going to the declared priority."""
    order = rule.priority or [rule.source or ""]
    value = {s: f"{quote_ident(s)}.{quote_ident(rule.columns[s])}" for s in order}
    changed = {s: f"{quote_ident(s)}.__updated_at" for s in order}
    branches = []
    for rank, source in enumerate(order):
        beats = [f"{value[source]} IS NOT NULL"]
        for other_rank, other in enumerate(order):
            if other_rank == rank:
                continue
            if rule.rule == "most_recent_non_null":  # a tie goes to the source listed first
                newer = f"{changed[source]} {'>=' if rank < other_rank else '>'} {changed[other]}"
                beats.append(f"({value[other]} IS NULL OR {newer})")
            elif other_rank < rank:
                beats.append(f"{value[other]} IS NULL")
        branches.append(f"WHEN {' AND '.join(beats)} THEN {sql_literal(source)}")
    return f"CASE {' '.join(branches)} END"


def _survivor(attribute: str, rule: AttributeRule) -> str:
    """The surviving value: the winning source's column."""
    winner = quote_ident(f"{attribute}_source")
    order = rule.priority or [rule.source or ""]
    picks = " ".join(f"WHEN {sql_literal(s)} THEN {quote_ident('__' + attribute + '__' + s)}" for s in order)
    return f"CASE {winner} {picks} END AS {quote_ident(attribute)}, {winner}"


def survivorship_sql(spec: SurvivorshipSpec) -> str:
    """A SELECT over the source tables (named `<layer>.<name>`, bound to their periods like any model's)."""
    sources = []
    for name, source in spec.sources.items():
        changed = f"CAST({quote_ident(source.updated_at)} AS TIMESTAMP)" if source.updated_at else "NULL"
        sources.append(
            f"{quote_ident(name)} AS (SELECT {quote_ident(source.key)} AS __key, "
            f"coalesce({changed}, {NEVER}) AS __updated_at, * FROM {source.asset.replace('/', '.')})"
        )
    keys = "\n    UNION\n    ".join(f"SELECT __key FROM {quote_ident(n)} WHERE __key IS NOT NULL" for n in spec.sources)
    joins = "\n".join(f"LEFT JOIN {quote_ident(n)} ON {quote_ident(n)}.__key = k.__key" for n in spec.sources)
    picked = []
    for attribute, rule in spec.attributes.items():
        picked.append(f"{_winner(rule)} AS {quote_ident(attribute + '_source')}")
        picked += [
            f"{quote_ident(s)}.{quote_ident(column)} AS {quote_ident('__' + attribute + '__' + s)}"
            for s, column in rule.columns.items()
        ]
    survivors = ",\n    ".join(_survivor(a, rule) for a, rule in spec.attributes.items())
    chosen = ",\n    ".join(picked)
    return (
        f"WITH {', '.join(sources)},\n"
        f"keys AS (\n    {keys}\n),\n"
        f"picked AS (\n  SELECT k.__key,\n    {chosen}\n  FROM keys AS k\n{joins}\n)\n"
        f"SELECT __key AS {quote_ident(spec.key)},\n    {survivors}\nFROM picked"
    )
