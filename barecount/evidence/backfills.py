"""Governed backfills: who asked to rebuild which periods and why, the runs that did it and how it ended.

A backfill from the CLI (`barecount backfill`) is recorded when it is requested and when it ends; one
launched from the UI is recorded by the backfill sensor once Dagster has finished it. Either way the
record is a `backfill` entry in the ledger, so it sits in the same hash chain as the data it rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import duckdb

from barecount.evidence import evidence_table_exists, ledger
from barecount.warehouse.writes import transaction

BACKFILL_ASSET = "backfill"
"""The ledger's `asset` for backfill entries (a backfill spans assets; its selection is in the facts)."""


@dataclass(frozen=True)
class BackfillRecord:
    """One governed backfill, as the ledger keeps it."""

    backfill_id: str
    requested_by: str
    reason: str
    first_period: str
    last_period: str
    periods: int
    selection: Sequence[str]
    """Asset refs; empty for every asset."""
    launched_from: str
    """`cli` or `ui`."""


def record_backfill(
    conn: duckdb.DuckDBPyConnection,
    backfill: BackfillRecord,
    state: str,
    runs: Sequence[tuple[str, str]] = (),
    error: str | None = None,
) -> None:
    """Append the backfill's `state` (requested, succeeded, failed, canceled) with its runs as (run id, status)."""
    facts = asdict(backfill) | {
        "state": state,
        "selection": list(backfill.selection),
        "runs": [{"run_id": r, "status": s} for r, s in runs],
    }
    if error is not None:
        facts["error"] = error
    with transaction(conn):
        ledger.append(conn, [ledger.NewEntry("backfill", BACKFILL_ASSET, None, backfill.backfill_id, facts)])


def recorded_backfills(conn: duckdb.DuckDBPyConnection) -> set[str]:
    """Ids of the backfills whose end is on the record."""
    if not evidence_table_exists(conn, "ledger"):
        return set()
    rows = conn.execute(
        f"SELECT DISTINCT run_id FROM {ledger.LEDGER_TABLE} WHERE kind = 'backfill' "
        "AND json_extract_string(facts, '$.state') <> 'requested'"
    ).fetchall()
    return {str(r) for (r,) in rows}
