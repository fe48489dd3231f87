"""The rows of every partition against what its latest build recorded: an edit made outside barecount is found.

Each materialization entry keeps the partition's row count and content hash (`warehouse.writes.content_sql`).
An UPDATE, a DELETE or an INSERT made directly in the warehouse file changes the rows and so the hash;
rows of a period no build wrote show as a partition with nothing on record. Every table is read once
(one GROUP BY over its rows), so checking the whole warehouse costs about one scan of it.

The rows compared are the current organisation's (`x_org_slug`); one table holds one source per organisation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from barecount.evidence import LEDGER_TABLE, evidence_table_exists
from barecount.sql.relation import PARTITION_COLUMN, quote_ident, sql_literal
from barecount.warehouse.writes import business_columns, content_sql


@dataclass(frozen=True)
class ContentMismatch:
    """One partition whose rows are not those its latest build recorded."""

    table: str
    asset: str
    partition: str | None
    expected: tuple[int, str | None] | None
    """Rows and content hash on record; None: rows of a partition no build wrote."""
    found: tuple[int, str | None]

    def as_dict(self) -> dict[str, object]:
        expected = None if self.expected is None else {"rows": self.expected[0], "content_hash": self.expected[1]}
        return {
            "table": self.table,
            "asset": self.asset,
            "period": self.partition,
            "expected": expected,
            "found": {"rows": self.found[0], "content_hash": self.found[1]},
        }


def _recorded(conn: duckdb.DuckDBPyConnection, asset: str | None) -> dict[str, dict[str | None, dict[str, object]]]:
    """asset -> partition -> facts of its latest materialization entry, or of a later retention entry (the period
    deleted on purpose holds no rows). Retention of a table no build writes (quarantine) is not checked here."""
    built = f"asset IN (SELECT asset FROM {LEDGER_TABLE} WHERE kind = 'materialization')"
    where = f"kind IN ('materialization', 'retention') AND {built}" + (
        f" AND asset = {sql_literal(asset)}" if asset else ""
    )
    rows = conn.execute(
        f"SELECT asset, partition, arg_max(facts, seq) FROM {LEDGER_TABLE} WHERE {where} GROUP BY ALL"
    ).fetchall()
    recorded: dict[str, dict[str | None, dict[str, object]]] = {}
    for name, partition, facts in rows:
        recorded.setdefault(str(name), {})[partition] = json.loads(facts)
    return recorded


def verify_content(
    conn: duckdb.DuckDBPyConnection, org_slug: str, asset: str | None = None, period: str | None = None
) -> tuple[int, list[ContentMismatch]]:
    """(partitions checked, those whose rows differ from their latest build's record), for every asset on
    record or one `asset`, every period or one `period`."""
    if not evidence_table_exists(conn, "ledger"):
        return 0, []
    checked, mismatches = 0, []
    for name, partitions in sorted(_recorded(conn, asset).items()):
        built = [f for f in partitions.values() if "rows_deleted" not in f]  # a build's facts say how it hashes
        facts = built[0] if built else next(iter(partitions.values()))
        table = str(facts.get("table") or "")
        schema, _, bare = table.partition(".")
        business = business_columns(conn, schema, bare) if bare else None
        if business is None:
            continue
        partitioned = None not in partitions  # a snapshot (a calendar table) is recorded as a whole
        where = f"x_org_slug = {sql_literal(org_slug)}"
        if period is not None and partitioned:
            where += f" AND {PARTITION_COLUMN} = {sql_literal(period)}"
        unhashed = [str(c) for c in facts.get("unhashed_columns", [])]  # type: ignore[attr-defined]
        measured = content_sql(f"{quote_ident(schema)}.{quote_ident(bare)}", business, where, partitioned, unhashed)
        found = {k: (int(n), str(h)) for k, n, h in conn.execute(measured).fetchall()}
        wanted = {k: f for k, f in partitions.items() if period is None or k == period or not partitioned}
        for key, recorded in sorted(wanted.items(), key=lambda item: str(item[0])):
            checked += 1
            rows, content = int(recorded.get("rows_landed") or 0), recorded.get("content_hash")  # type: ignore[call-overload]
            now = found.get(key, (0, None))
            if now[0] != rows or (content is not None and now[1] != content):
                mismatches.append(ContentMismatch(table, name, key, (rows, content), now))  # type: ignore[arg-type]
        for key in sorted(set(found) - set(partitions), key=str):
            checked += 1
            mismatches.append(ContentMismatch(table, name, key, None, found[key]))
    return checked, mismatches
