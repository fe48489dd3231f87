"""Contract files as BareCount changes them, and the way back to the versions the project shipped.

BareCount writes contract files in two ways only: drift drafts a proposed next version (a new file whose
first line starts with `DRAFTED_BY`), and a decision on a proposal changes `status:` lines (`set_status`).
So the files themselves say what runs and approvals changed, with no git (a project need not be a checkout)
and no warehouse (its `evidence.contract_approvals` may be gone, e.g. after `make clean`):

- a drafted version keeps its first line through approval or rejection, which change only `status:`;
- only an approval deprecates a version, the one its proposal replaces. Once a contract's drafted versions
  are gone, its newest version in force is deprecated only if approving a drafted one did it: it is made
  active again, as it was before that approval.

Versions people wrote (a hand-written proposal, approved or not) are theirs and stay as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from barecount.config.project import ProjectPaths
from barecount.contracts.contract import IN_FORCE, Contract
from barecount.contracts.registry import ContractRegistry
from barecount.errors import RefusedError

DRAFTED_BY = "# Proposed by BareCount from the extract of "
"""How every version drift drafts begins: what tells a drafted version from one people wrote."""


def set_status(path: Path, status: str) -> None:
    """Change a contract file's top-level `status:` line, and nothing else in it."""
    text = path.read_text(encoding="utf-8")
    changed, count = re.subn(r"(?m)^status:\s*\S+\s*$", f"status: {status}", text, count=1)
    if count != 1:
        raise RefusedError(f"{path}: no top-level `status:` line to change")
    path.write_text(changed, encoding="utf-8")


def is_drafted(path: Path) -> bool:
    with path.open(encoding="utf-8") as file:
        return file.readline().startswith(DRAFTED_BY)


@dataclass(frozen=True)
class ShippedContracts:
    """What takes the contract files back to the versions the project shipped."""

    drafted: tuple[Contract, ...]
    """Versions drift drafted (proposed, or since approved or rejected): removed."""
    reactivated: tuple[Contract, ...]
    """Versions that approving a drafted one deprecated: active again."""

    def __bool__(self) -> bool:
        return bool(self.drafted or self.reactivated)


def back_to_shipped(paths: ProjectPaths) -> ShippedContracts:
    """What runs and approvals changed in `contracts/` (nothing is changed here)."""
    registry = ContractRegistry.load(paths)
    drafted: list[Contract] = []
    reactivated: list[Contract] = []
    for contract_id in registry.ids():
        versions = registry.versions(contract_id)
        made = [c for c in versions if is_drafted(paths.root / c.file)]
        drafted += made
        if not any(c.status in IN_FORCE for c in made):
            continue  # none was approved: no status to put back
        written = ContractRegistry({contract_id: tuple(c for c in versions if c not in made)})
        newest = written.in_force(contract_id, None)
        if newest.status == "deprecated":
            reactivated.append(newest)
    return ShippedContracts(tuple(drafted), tuple(reactivated))


def restore_shipped(paths: ProjectPaths, changes: ShippedContracts) -> None:
    for contract in changes.drafted:
        (paths.root / contract.file).unlink()
    for contract in changes.reactivated:
        set_status(paths.root / contract.file, "active")
