"""`ContractRegistry`: every version of every contract, and which one is in force for a period.

A version in force (active, or deprecated but still covering older periods) applies from its
`effective_from` period until the next version's. The registry is read from the files each time it
is needed, so a proposal or an approval never needs the Dagster code location reloaded.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from barecount.config.kept import KEPT, files_state, kept
from barecount.config.project import ProjectPaths
from barecount.contracts.contract import IN_FORCE, Contract
from barecount.errors import SpecError, SpecErrors, UsageError

CONTRACTS_CACHE = f"{KEPT}/contracts.pickle"
"""Under the project's data folder: the contract versions the last process read (`config.kept`)."""


@dataclass(frozen=True)
class ContractRegistry:
    """All contract versions of a project, by id."""

    contracts: dict[str, tuple[Contract, ...]]

    @classmethod
    def load(cls, paths: ProjectPaths) -> ContractRegistry:
        """Read `contracts/<domain>/<stream>/<version>.yaml`; one `SpecErrors` lists every problem.

        Parsing and validating the ODCS files costs 0.15 s; the next process reads them back (`config.kept`)."""
        state = (str(paths.root.resolve()), files_state(paths.contracts))
        return kept(paths.data / CONTRACTS_CACHE, state, lambda: cls._read(paths))

    @classmethod
    def _read(cls, paths: ProjectPaths) -> ContractRegistry:
        # the ODCS models and their JSON Schema validator cost 0.1 s to import: only a process that reads the files
        from barecount.contracts.odcs import load_contract

        errors: list[SpecError] = []
        found: dict[str, list[Contract]] = {}
        for file in _contract_files(paths.contracts):
            expected_id = f"{file.parent.parent.name}.{file.parent.name}"
            try:
                found.setdefault(expected_id, []).append(load_contract(file, paths.relative(file), expected_id))
            except SpecErrors as exc:
                errors.extend(exc.errors)
        for contract_id, versions in found.items():
            by_start: dict[str, Contract] = {}
            for contract in sorted(versions, key=lambda c: c.version_key):
                if contract.status not in IN_FORCE:
                    continue
                other = by_start.get(contract.effective_from)
                if other is not None:
                    errors.append(
                        SpecError(
                            contract.file,
                            0,
                            0,
                            "customProperties.effective_from",
                            f"{contract_id} {other.version} ({other.file}) is already in force from "
                            f"{contract.effective_from}: two versions cannot cover the same period",
                        )
                    )
                by_start[contract.effective_from] = contract
        if errors:
            raise SpecErrors(errors)
        return cls({cid: tuple(sorted(vs, key=lambda c: c.version_key)) for cid, vs in sorted(found.items())})

    def ids(self) -> list[str]:
        return list(self.contracts)

    def versions(self, contract_id: str) -> tuple[Contract, ...]:
        if contract_id not in self.contracts:
            close = difflib.get_close_matches(contract_id, self.ids(), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"unknown contract '{contract_id}'{hint}")
        return self.contracts[contract_id]

    def version(self, contract_id: str, version: str) -> Contract:
        for contract in self.versions(contract_id):
            if contract.version == version:
                return contract
        known = ", ".join(c.version for c in self.versions(contract_id))
        raise UsageError(f"contract {contract_id} has no version {version} (versions: {known})")

    def in_force(self, contract_id: str, period_key: str | None) -> Contract:
        """The version that applies to a period (`None`: a snapshot, which the newest version in force governs)."""
        candidates = [c for c in self.versions(contract_id) if c.status in IN_FORCE]
        candidates.sort(key=lambda c: c.effective_from)
        applicable = [c for c in candidates if period_key is None or c.effective_from <= period_key]
        if not applicable:
            raise UsageError(f"no version of contract {contract_id} is in force for {period_key or 'snapshots'}")
        return applicable[-1]


def _contract_files(root: Path) -> Iterator[Path]:
    if root.is_dir():
        yield from sorted(root.glob("*/*/*.yaml"))
