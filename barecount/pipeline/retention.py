"""Retention, Dagster-free: which periods of the raw and quarantine tables a tenant's rules no longer keep, and
their deletion, each one on the ledger (table, period, rows). The evidence itself is never deleted.

A period deleted stays built on the record (its materialization entry is kept): a later run does not rebuild it
unless forced or its extract changes. `ledger verify --data` takes the retention entry as the period's newest
state: a table that holds no rows for it is intact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from barecount.calendar import FiscalCalendar
from barecount.config.profiles import RetentionRule
from barecount.contracts import ContractRegistry
from barecount.evidence import ensure_evidence, ledger
from barecount.sql.relation import PARTITION_COLUMN, in_list, quote_ident, sql_literal
from barecount.warehouse import catalog
from barecount.warehouse.connection import Connection
from barecount.warehouse.writes import transaction

RETENTION_KIND = "retention"


@dataclass(frozen=True)
class Deletion:
    """The rows of one period of one table that retention deletes."""

    table: str
    asset: str
    """The ledger's name for the table: raw/<stream>, or quarantine/<stream>."""
    period: str
    rows: int
    rule: str


def _rule_text(rule: RetentionRule) -> str:
    return (
        f"{rule.layer}: keep {rule.keep_periods} periods"
        if rule.keep_periods
        else f"{rule.layer}: keep {rule.keep_days} days"
    )


def contract_retention(registry: ContractRegistry, streams: Mapping[str, str]) -> dict[str, tuple[int, str]]:
    """Stream -> (days its raw periods are kept, why) for each stream (name -> contract id) whose newest contract
    version in force gives a retention in its ODCS `slaProperties`."""
    kept = {}
    for stream, contract_id in streams.items():
        contract = registry.in_force(contract_id, None)
        if contract.retention is not None:
            why = f"raw: keep {contract.retention.days} days ({contract.id} {contract.version} slaProperties retention)"
            kept[stream] = (contract.retention.days, why)
    return kept


def due_deletions(
    conn: Connection,
    org_slug: str,
    calendar: FiscalCalendar,
    rules: Sequence[RetentionRule],
    streams: Sequence[str],
    today: date,
    contracts: Mapping[str, tuple[int, str]] | None = None,
) -> list[Deletion]:
    """The periods of each partitioned stream's raw and quarantine tables that `rules`, and the retention of its
    contract (`contracts`, see `contract_retention`), no longer keep on `today`, with their rows (of this
    organisation), oldest first. A period two rules drop is listed once, under the first."""
    by_rule = [
        (rule.layer, stream, rule.keep_periods, rule.keep_days, _rule_text(rule))
        for rule in rules
        for stream in streams
    ]
    by_rule += [
        ("raw", stream, None, days, why) for stream, (days, why) in (contracts or {}).items() if stream in streams
    ]
    found: dict[tuple[str, str], Deletion] = {}
    present = {layer: {t for _, t in catalog.tables(conn, [layer])} for layer in {r[0] for r in by_rule}}
    for layer, stream, keep_periods, keep_days, why in by_rule:
        if stream not in present[layer]:
            continue
        table = f"{layer}.{quote_ident(stream)}"
        rows = {
            str(period): int(count)
            for period, count in conn.execute(
                f"SELECT {PARTITION_COLUMN}, count(*) FROM {table} WHERE x_org_slug = {sql_literal(org_slug)} "
                "GROUP BY ALL"
            ).fetchall()
        }
        periods = sorted(rows, key=lambda key: calendar.period(key).start)
        if keep_periods is not None:
            dropped = periods[: max(len(periods) - keep_periods, 0)]
        else:
            assert keep_days is not None
            cutoff = today - timedelta(days=keep_days)
            dropped = [key for key in periods if calendar.period(key).end < cutoff]
        for key in dropped:
            found.setdefault(
                (f"{layer}.{stream}", key), Deletion(f"{layer}.{stream}", f"{layer}/{stream}", key, rows[key], why)
            )
    return list(found.values())


def delete_due(conn: Connection, org_slug: str, deletions: Sequence[Deletion], run_id: str) -> None:
    """Delete each table's periods in one transaction with their ledger entries: all of a table, or none."""
    by_table: dict[str, list[Deletion]] = {}
    for deletion in deletions:
        by_table.setdefault(deletion.table, []).append(deletion)
    for table, items in by_table.items():
        schema, _, bare = table.partition(".")
        with transaction(conn):
            ensure_evidence(conn)
            conn.execute(
                f"DELETE FROM {schema}.{quote_ident(bare)} WHERE x_org_slug = {sql_literal(org_slug)} "
                f"AND {PARTITION_COLUMN} IN {in_list([d.period for d in items])}"
            )
            ledger.append(
                conn,
                [
                    ledger.NewEntry(
                        RETENTION_KIND,
                        d.asset,
                        d.period,
                        run_id,
                        # rows_landed and content_hash as a materialization has them: the period holds nothing now
                        {
                            "table": d.table,
                            "rows_deleted": d.rows,
                            "rule": d.rule,
                            "rows_landed": 0,
                            "content_hash": None,
                        },
                    )
                    for d in items
                ],
            )
