"""Trace a partition back through the ledger: every input partition it was built from, down to the source
extract files, with the runs, versions, row counts and check results on the way.

Each materialization entry names the ledger hash of every input partition it read, so the walk follows
hashes, not names: it reaches exactly the entries the number was computed from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from barecount.errors import UsageError
from barecount.evidence.ledger import LedgerEntry

VERSION_FACTS = ("code_version", "contract", "contract_version", "kpi_version", "schema_hash")


@dataclass
class TraceNode:
    """One partition as built by one run, and the partitions it was built from."""

    asset: str
    partition: str | None
    seq: int
    entry_hash: str
    run_id: str
    rows: int | None
    versions: dict[str, Any]
    checks: dict[str, bool]
    sources: list[dict[str, Any]]
    inputs: list[TraceNode] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "partition": self.partition,
            "ledger_seq": self.seq,
            "ledger_hash": self.entry_hash,
            "run_id": self.run_id,
            "rows": self.rows,
            "versions": self.versions,
            "checks": self.checks,
            "source_files": self.sources,
            "inputs": [i.as_dict() for i in self.inputs],
        }


def trace(entries: Sequence[LedgerEntry], asset: str, partition: str | None) -> TraceNode:
    """The latest build of `asset`/`partition` and, recursively, what it was built from."""
    built = [e for e in entries if e.kind == "materialization" and e.asset == asset and e.partition == partition]
    if not built:
        where = f"{asset} {partition}" if partition else asset
        raise UsageError(f"the ledger has no materialization of {where}")
    by_hash = {e.entry_hash: e for e in entries}
    checks: dict[tuple[str, str | None, str], dict[str, bool]] = {}
    for e in entries:
        if e.kind == "check":
            checks.setdefault((e.asset, e.partition, e.run_id), {})[str(e.facts["check"])] = bool(e.facts["passed"])
    return _node(built[-1], by_hash, checks)


def _node(
    entry: LedgerEntry,
    by_hash: dict[str, LedgerEntry],
    checks: dict[tuple[str, str | None, str], dict[str, bool]],
) -> TraceNode:
    facts = entry.facts
    node = TraceNode(
        asset=entry.asset,
        partition=entry.partition,
        seq=entry.seq,
        entry_hash=entry.entry_hash,
        run_id=entry.run_id,
        rows=facts.get("rows_landed"),
        versions={k: facts[k] for k in VERSION_FACTS if k in facts},
        checks=checks.get((entry.asset, entry.partition, entry.run_id), {}),
        sources=list(facts.get("source_files_read", [])),
    )
    for partitions in dict(facts.get("inputs", {})).values():
        for digest in partitions.values():
            parent = by_hash.get(digest) if digest else None
            if parent is not None:
                node.inputs.append(_node(parent, by_hash, checks))
    return node
