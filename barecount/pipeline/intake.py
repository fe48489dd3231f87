"""Which periods of an extract may land: each period's schema against the contract version in force for it.

Drift is decided per period before anything is written. A period whose extract breaks its contract
(a column removed or renamed, a type that can lose data) is held back: nothing of it lands and its
rows in Raw stay as they were. A difference that still fits the contract (an added optional column) lands
the contract's columns. Either way a proposed next version is drafted for a data owner to approve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from barecount.config.project import ProjectPaths
from barecount.contracts import Contract, ContractRegistry
from barecount.contracts.diff import ColumnChange, describe_changes
from barecount.contracts.drift import draft_proposal, extract_drift, next_version
from barecount.sql.relation import Column, schema_hash


@dataclass(frozen=True)
class Drift:
    """How one period's extract differs from the contract version in force for it."""

    contract: Contract
    changes: tuple[ColumnChange, ...]
    proposal: str
    """The drafted next version's file (project-relative)."""

    @property
    def breaking(self) -> bool:
        """The extract breaks the contract in force: its period is blocked."""
        return any(c.breaking for c in self.changes)

    def describe(self) -> str:
        return describe_changes(self.changes)

    def facts(self) -> dict[str, object]:
        """The drift as evidence (ledger entries, blocked partitions)."""
        return {
            "contract": self.contract.id,
            "contract_version": self.contract.version,
            "changes": [c.as_dict() for c in self.changes],
            "breaking": self.breaking,
            "proposal": self.proposal,
        }


@dataclass(frozen=True)
class ExtractGroup:
    """Periods read together: one contract version, one source shape."""

    contract: Contract
    source: tuple[Column, ...]
    keys: tuple[str | None, ...]


@dataclass
class IntakePlan:
    """What a run does with each period of an extract."""

    groups: list[ExtractGroup] = field(default_factory=list)
    blocked: dict[str | None, Drift] = field(default_factory=dict)
    """Periods blocked: their extract breaks the contract in force."""
    drifted: dict[str | None, Drift] = field(default_factory=dict)
    """Periods that land although their extract differs from the contract (drift that still fits it)."""

    @property
    def contracts(self) -> list[Contract]:
        return [g.contract for g in self.groups]


def plan_intake(
    registry: ContractRegistry,
    contract_id: str,
    schemas: Mapping[str | None, Sequence[Column]],
    typed_source: bool,
    paths: ProjectPaths,
    snapshot_period: str,
) -> IntakePlan:
    """Classify every period's extract against its contract version; draft a proposal for each drift.

    `schemas` maps period keys (None for a snapshot) to the extract's columns, in period order.
    One proposal is drafted per contract version and set of changes, applying from the first period
    that showed them (`snapshot_period` for a snapshot).
    """
    plan = IntakePlan()
    grouped: dict[tuple[str, str], list[str | None]] = {}
    proposals: dict[tuple[str, tuple[ColumnChange, ...]], str] = {}
    for key, source in schemas.items():
        contract = registry.in_force(contract_id, key)
        changes = tuple(extract_drift(contract, source, typed_source))
        if changes:
            wanted = (contract.version, changes)
            if wanted not in proposals:
                proposals[wanted] = _propose(registry, contract, changes, paths, key or snapshot_period)
            drift = Drift(contract, changes, proposals[wanted])
            if drift.breaking:
                plan.blocked[key] = drift
                continue
            plan.drifted[key] = drift
        grouped.setdefault((contract.version, schema_hash(source)), []).append(key)
    for (version, _), keys in grouped.items():
        plan.groups.append(ExtractGroup(registry.version(contract_id, version), tuple(schemas[keys[0]]), tuple(keys)))
    return plan


def _propose(
    registry: ContractRegistry, contract: Contract, changes: Sequence[ColumnChange], paths: ProjectPaths, period: str
) -> str:
    """Draft the next version unless a file for it exists already (a repeated run sees the same drift)."""
    version = next_version(contract, changes)
    existing = next((c for c in registry.versions(contract.id) if c.version == version), None)
    if existing is not None:
        return existing.file
    return paths.relative(draft_proposal(contract, paths.root / contract.file, changes, period))
