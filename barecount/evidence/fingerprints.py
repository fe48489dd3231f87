"""Active contract versions are immutable: the content a version had when a run first used it is kept in
`evidence.contract_versions`, and a version whose file changed since is refused (only `status` may change)."""

from __future__ import annotations

from collections.abc import Sequence

from barecount.contracts.contract import Contract
from barecount.errors import RefusedError
from barecount.evidence import FINGERPRINTS_TABLE, ensure_evidence, evidence_table_exists
from barecount.warehouse.connection import Connection
from barecount.warehouse.writes import insert_rows


def _kept(conn: Connection) -> dict[tuple[str, str], tuple[str, str]]:
    """(contract, version) -> (content hash, first run) of every version a run has used."""
    if not evidence_table_exists(conn, "contract_versions"):
        return {}
    return {
        (c, v): (h, r)
        for c, v, h, r in conn.execute(
            f"SELECT contract, version, content_hash, first_run_id FROM {FINGERPRINTS_TABLE}"
        ).fetchall()
    }


def changed_since_used(
    conn: Connection, contracts: Sequence[Contract], kept: dict[tuple[str, str], tuple[str, str]] | None = None
) -> list[tuple[Contract, str]]:
    """Each version whose content differs from when a run first used it, and what to do about it."""
    if not contracts:
        return []
    kept = _kept(conn) if kept is None else kept
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


def record_use(conn: Connection, contracts: Sequence[Contract], run_id: str) -> None:
    """Refuse changed versions; remember the content of versions used for the first time."""
    if not contracts:
        return
    kept = _kept(conn)
    changed = changed_since_used(conn, contracts, kept)
    if changed:
        raise RefusedError("; ".join(f"{contract.file}: {reason}" for contract, reason in changed))
    new = {(c.id, c.version): c for c in contracts if (c.id, c.version) not in kept}
    if not new:
        return
    ensure_evidence(conn)
    insert_rows(
        conn,
        FINGERPRINTS_TABLE,
        ("contract", "version", "content_hash", "first_run_id"),
        [(c.id, c.version, c.content_hash, run_id) for c in new.values()],
    )
