"""The SQL of a survivorship model: one row per entity key found in any source, each attribute taken from
the source its rule picks, and the name of that source beside it (`<attribute>_source`)."""

from __future__ import annotations

from barecount.specs.model import AttributeRule, SurvivorshipSpec
from barecount.sql.relation import quote_ident, sql_literal

NEVER = "TIMESTAMP '-infinity'"


def _candidates(rule: AttributeRule) -> str:
    """The sources' values for one attribute as a list of structs that sorts best-first when sorted DESC.

    Structs compare field by field: `t` (when the value changed; only for most_recent_non_null), then
    `p` (the declared priority, higher is better).
    """
    order = rule.priority or [rule.source or ""]
    items = []
    for rank, source in enumerate(order):
        alias = quote_ident(source)
        changed = f"{alias}.__updated_at" if rule.rule == "most_recent_non_null" else NEVER
        value = f"{alias}.{quote_ident(rule.columns[source])}"
        items.append(f"{{'t': {changed}, 'p': {len(order) - rank}, 'v': {value}, 's': {sql_literal(source)}}}")
    return f"list_sort(list_filter([{', '.join(items)}], lambda c: c.v IS NOT NULL), 'DESC')[1]"


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
    picks = ",\n    ".join(f"{_candidates(rule)} AS {quote_ident('__' + a)}" for a, rule in spec.attributes.items())
    columns = ",\n    ".join(
        f"{quote_ident('__' + a)}.v AS {quote_ident(a)}, {quote_ident('__' + a)}.s AS {quote_ident(a + '_source')}"
        for a in spec.attributes
    )
    return (
        f"WITH {', '.join(sources)},\n"
        f"keys AS (\n    {keys}\n),\n"
        f"picked AS (\n  SELECT k.__key,\n    {picks}\n  FROM keys AS k\n{joins}\n)\n"
        f"SELECT __key AS {quote_ident(spec.key)},\n    {columns}\nFROM picked"
    )
