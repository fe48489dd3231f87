"""`evidence.ledger`: append-only entries, each hashing its predecessor's hash and its own canonical JSON.

`entry_hash = SHA-256(prev_hash + canonical JSON of the entry)` where the canonical JSON has sorted
keys, no spaces and UTF-8 text, and the first entry's `prev_hash` is 64 zeros. Editing, deleting,
inserting or reordering any row breaks the chain at that row; keeping the head (seq and hash)
elsewhere also detects a chain rewritten from scratch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from barecount.evidence import LEDGER_TABLE, ensure_evidence, evidence_table_exists
from barecount.warehouse.writes import insert_rows

GENESIS_HASH = "0" * 64
_FIELDS = ("seq", "kind", "asset", "partition", "run_id", "recorded_at", "facts", "prev_hash")


@dataclass(frozen=True)
class LedgerEntry:
    """One fact on the record. `facts` holds what is specific to its kind (row counts, versions, …)."""

    seq: int
    kind: str
    asset: str
    partition: str | None
    run_id: str
    recorded_at: str
    facts: Mapping[str, Any]
    prev_hash: str
    entry_hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NewEntry:
    """An entry to append: the ledger gives it its seq, time and hashes."""

    kind: str
    asset: str
    partition: str | None
    run_id: str
    facts: Mapping[str, Any]


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def entry_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical_json(body)).hexdigest()


def append(conn: duckdb.DuckDBPyConnection, entries: Sequence[NewEntry]) -> list[LedgerEntry]:
    """Chain `entries` onto the ledger, inside the caller's transaction (so data and evidence commit together)."""
    if not entries:
        return []
    ensure_evidence(conn)
    head = conn.execute(f"SELECT seq, entry_hash FROM {LEDGER_TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS_HASH)
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    written = []
    for new in entries:
        seq += 1
        facts = json.loads(canonical_json(new.facts))
        body = {
            "seq": seq,
            "kind": new.kind,
            "asset": new.asset,
            "partition": new.partition,
            "run_id": new.run_id,
            "recorded_at": now,
            "facts": facts,
            "prev_hash": prev,
        }
        digest = entry_hash(prev, body)
        written.append(LedgerEntry(**body, entry_hash=digest))
        prev = digest
    insert_rows(
        conn,
        LEDGER_TABLE,
        [*_FIELDS, "entry_hash"],
        [
            (
                e.seq,
                e.kind,
                e.asset,
                e.partition,
                e.run_id,
                e.recorded_at,
                canonical_json(e.facts).decode(),
                e.prev_hash,
                e.entry_hash,
            )
            for e in written
        ],
    )
    return written


def _latest_materializations(
    conn: duckdb.DuckDBPyConnection, assets: Sequence[str], by: str, value: str = "entry_hash"
) -> list[tuple[Any, ...]]:
    """(`by` columns..., `value` of the newest materialization entry) for the given assets."""
    # a reader's question (it may be on a read-only connection, of a warehouse an older BareCount made): it
    # never creates or upgrades the evidence, which the next write does
    if not assets or not evidence_table_exists(conn, "ledger"):
        return []
    return conn.execute(
        f"SELECT {by}, arg_max({value}, seq) FROM {LEDGER_TABLE} "
        "WHERE kind = 'materialization' AND asset IN (SELECT unnest(?)) GROUP BY ALL",
        [list(assets)],
    ).fetchall()


def latest_hashes(conn: duckdb.DuckDBPyConnection, assets: Sequence[str]) -> dict[tuple[str, str | None], str]:
    """(asset, partition) -> hash of the latest materialization entry, for the given assets."""
    rows = _latest_materializations(conn, assets, "asset, partition")
    return {(str(a), None if p is None else str(p)): str(h) for a, p, h in rows}


def latest_facts(
    conn: duckdb.DuckDBPyConnection, assets: Sequence[str]
) -> dict[tuple[str, str | None], dict[str, Any]]:
    """(asset, partition) -> the facts of its latest materialization entry (what it was built from)."""
    rows = _latest_materializations(conn, assets, "asset, partition", "facts")
    return {(str(a), None if p is None else str(p)): json.loads(f) for a, p, f in rows}


def latest_content_hashes(conn: duckdb.DuckDBPyConnection, asset: str, partitions: Sequence[str]) -> dict[str, str]:
    """Partition -> content hash of its newest build, for the partitions of `asset` built so far: what its rows
    are, whichever run wrote them (a rebuild with the same rows keeps it)."""
    if not partitions or not evidence_table_exists(conn, "ledger"):
        return {}
    rows = conn.execute(
        f"SELECT partition, arg_max(json_extract_string(facts, '$.content_hash'), seq) FROM {LEDGER_TABLE} "
        "WHERE kind = 'materialization' AND asset = ? AND partition IN (SELECT unnest(?)) GROUP BY ALL",
        [asset, list(partitions)],
    ).fetchall()
    return {str(p): str(h) for p, h in rows}


def head(conn: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """The newest entry's (seq, hash), or None for an empty ledger."""
    if not evidence_table_exists(conn, "ledger"):
        return None
    row = conn.execute(f"SELECT seq, entry_hash FROM {LEDGER_TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


def read_entries(
    conn: duckdb.DuckDBPyConnection,
    asset: str | None = None,
    partition: str | None = None,
    *,
    run_id: str | None = None,
    kind: str | None = None,
) -> list[LedgerEntry]:
    """Entries in the order they are stored (by seq), optionally of one asset, partition, run and/or kind.

    The filters run in the warehouse: a gate asks for its run's entries, not the asset's whole history.
    """
    if not evidence_table_exists(conn, "ledger"):
        return []
    where, params = [], []
    for column, value in (("asset", asset), ("partition", partition), ("run_id", run_id), ("kind", kind)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    # by name, not `SELECT *`: a column an upgrade added to an older warehouse comes last
    rows = conn.execute(
        f"SELECT {', '.join(_FIELDS)}, entry_hash FROM {LEDGER_TABLE} {clause} ORDER BY seq, rowid", params
    ).fetchall()
    return [LedgerEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8]) for r in rows]


def verify(entries: Sequence[LedgerEntry], head: tuple[int, str] | None = None) -> str | None:
    """None if the chain is intact (and contains `head`, if given); otherwise what is wrong, naming the entry."""
    prev = GENESIS_HASH
    for position, entry in enumerate(entries, start=1):
        if entry.seq != position:
            return f"entry at position {position} has seq {entry.seq}: an entry is missing, inserted or reordered"
        if entry.prev_hash != prev:
            return (
                f"entry {entry.seq} does not follow entry {entry.seq - 1}: prev_hash {entry.prev_hash[:12]}… "
                f"should be {prev[:12]}…"
            )
        body = {f: getattr(entry, f) for f in _FIELDS}
        expected = entry_hash(prev, body)
        if entry.entry_hash != expected:
            where = " ".join(p for p in (entry.kind, entry.asset, entry.partition) if p)
            return f"entry {entry.seq} ({where}) was edited: its hash does not match its content"
        prev = entry.entry_hash
    if head is not None:
        seq, digest = head
        if seq > len(entries):
            return f"the chain ends at entry {len(entries)} but the kept head is entry {seq}: entries were removed"
        if entries[seq - 1].entry_hash != digest:
            return (
                f"entry {seq} has hash {entries[seq - 1].entry_hash[:12]}…, not the kept head {digest[:12]}…: "
                "the chain was rewritten"
            )
    return None
