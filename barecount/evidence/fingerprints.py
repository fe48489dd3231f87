"""Active contract versions are immutable: the content a version had when a run first used it is kept in
`evidence.contract_versions`, and a version whose file changed since is refused (only `status` may change)."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from barecount.contracts.contract import Contract
from barecount.errors import RefusedError
from barecount.evidence import FINGERPRINTS_TABLE, ensure_evidence, evidence_table_exists


def changed_since_used(conn: duckdb.DuckDBPyConnection, contracts: Sequence[Contract]) -> list[tuple[Contract, str]]:
    """Each version whose content differs from when a run first used it, and what to do about it."""
    if not contracts or not evidence_table_exists(conn, "contract_versions"):
        return []
    kept = {
        (c, v): (h, r)
        for c, v, h, r in conn.execute(
            f"SELECT contract, version, content_hash, first_run_id FROM {FINGERPRINTS_TABLE}"
        ).fetchall()
    }
    changed = []
    for contract in contracts:
        found = kept.get((contract.id, contract.version))
        if found is not None and found[0] != contract.content_hash:
            changed.append(
                (
                    contract,
                    f"{contract.id} {contract.version} changed after run {found[1][:8]} used it; an active version "
                    "is immutable (only its status may change): put the change in a new version",
                )
            )
    return changed


def record_use(conn: duckdb.DuckDBPyConnection, contracts: Sequence[Contract], run_id: str) -> None:
    """Refuse changed versions; remember the content of versions used for the first time."""
    if not contracts:
        return
    changed = changed_since_used(conn, contracts)
    if changed:
        raise RefusedError("; ".join(f"{contract.file}: {reason}" for contract, reason in changed))
    ensure_evidence(conn)
    conn.executemany(
        f"INSERT INTO {FINGERPRINTS_TABLE} (contract, version, content_hash, first_run_id) SELECT ?, ?, ?, ? "
        f"WHERE NOT EXISTS (SELECT 1 FROM {FINGERPRINTS_TABLE} WHERE contract = ? AND version = ?)",
        [(c.id, c.version, c.content_hash, run_id, c.id, c.version) for c in contracts],
    )
