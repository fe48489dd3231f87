"""A data owner's decision on a proposed contract version: approve (it comes into force) or reject.

Approving sets the proposal's `status` to active and the version it replaces to deprecated: the old
version still governs the periods before the new one's `effective_from` (the registry's rule), and only
`status` changes, so neither version's content fingerprint moves. The decision is kept in
`evidence.contract_approvals` and the ledger in one transaction; if the files would no longer validate,
they are put back and nothing is recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb

from barecount.config.project import ProjectPaths
from barecount.contracts.contract import Contract
from barecount.contracts.files import set_status
from barecount.contracts.registry import ContractRegistry
from barecount.errors import RefusedError, SpecErrors
from barecount.evidence import APPROVALS_TABLE, ensure_evidence, evidence_table_exists, holds, ledger
from barecount.warehouse.writes import transaction

Outcome = Literal["approved", "rejected"]
LEDGER_KIND: dict[Outcome, str] = {"approved": "approval", "rejected": "rejection"}


@dataclass(frozen=True)
class Decision:
    """What was decided, by whom, and which blocked periods it concerns."""

    contract: str
    version: str
    outcome: Outcome
    decided_by: str
    note: str
    effective_from: str
    replaced_version: str | None
    decided_at: str
    blocked: tuple[str | None, ...]
    """Periods the proposal's drift blocked: an approval lets them land, a rejection leaves them blocked."""


def _replaced(registry: ContractRegistry, proposal: Contract) -> Contract | None:
    """The active version the proposal takes over from: the latest one in force before it."""
    earlier = [
        c
        for c in registry.versions(proposal.id)
        if c.status == "active" and c.effective_from < proposal.effective_from and c.version != proposal.version
    ]
    return max(earlier, key=lambda c: c.effective_from) if earlier else None


def decide(
    paths: ProjectPaths,
    conn: duckdb.DuckDBPyConnection,
    contract_id: str,
    version: str,
    decided_by: str,
    note: str,
    outcome: Outcome,
    stream_asset: str | None,
) -> Decision:
    """Approve or reject a proposed version; refuse anything else, changing nothing."""
    registry = ContractRegistry.load(paths)
    proposal = registry.version(contract_id, version)  # unknown id or version: a usage error (exit 2)
    if proposal.status != "proposed":
        raise RefusedError(
            f"{contract_id} {version} is {proposal.status}, not proposed: only a proposed version can be "
            f"approved or rejected"
        )
    if decided_by not in proposal.owners:
        raise RefusedError(
            f"{decided_by} may not decide on {contract_id}: its owners and stewards are "
            f"{', '.join(proposal.owners) or 'none'} (team members with role owner or steward)"
        )
    replaced = _replaced(registry, proposal) if outcome == "approved" else None
    files = [paths.root / proposal.file] + ([paths.root / replaced.file] if replaced else [])
    originals = {f: f.read_text(encoding="utf-8") for f in files}
    set_status(paths.root / proposal.file, "active" if outcome == "approved" else "rejected")
    if replaced is not None:
        set_status(paths.root / replaced.file, "deprecated")
    try:
        ContractRegistry.load(paths)
    except SpecErrors as exc:
        for file, text in originals.items():
            file.write_text(text, encoding="utf-8")
        problems = "; ".join(str(e) for e in exc.errors)
        raise RefusedError(f"{contract_id} {version} cannot come into force: {problems}") from None

    blocked = tuple(
        b.fiscal_period
        for b in (holds.open_blocks(conn) if evidence_table_exists(conn, "blocked_partitions") else [])
        if b.contract == contract_id and Path(b.proposal).name == Path(proposal.file).name
    )
    decided_at = datetime.now(UTC).replace(tzinfo=None)
    decision = Decision(
        contract_id,
        version,
        outcome,
        decided_by,
        note,
        proposal.effective_from,
        replaced.version if replaced else None,
        decided_at.isoformat(sep=" ", timespec="seconds"),
        blocked,
    )
    try:
        with transaction(conn):
            ensure_evidence(conn)
            conn.execute(  # columns by name: one an upgrade added to an older warehouse comes last
                f"INSERT INTO {APPROVALS_TABLE} (contract, version, outcome, decided_by, note, effective_from, "
                "replaced_version, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [contract_id, version, outcome, decided_by, note, proposal.effective_from, decision.replaced_version,
                 decided_at],
            )  # fmt: skip
            ledger.append(
                conn,
                [
                    ledger.NewEntry(
                        LEDGER_KIND[outcome],
                        stream_asset or f"contract/{contract_id}",
                        proposal.effective_from,
                        f"decision-{uuid.uuid4().hex[:12]}",
                        {
                            "contract": contract_id,
                            "version": version,
                            "decided_by": decided_by,
                            "note": note,
                            "replaced_version": decision.replaced_version,
                            "blocked_periods": list(blocked),
                        },
                    )
                ],
            )
    except BaseException:
        for file, text in originals.items():  # the decision stands in the files only if it is on the record
            file.write_text(text, encoding="utf-8")
        raise
    return decision
