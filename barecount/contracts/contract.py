"""A data contract version as BareCount uses it: canonical columns, their source names, types and rules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from barecount.specs.common import bounds

ContractStatus = Literal["draft", "proposed", "active", "deprecated", "rejected"]
STATUSES: tuple[ContractStatus, ...] = ("draft", "proposed", "active", "deprecated", "rejected")
IN_FORCE: tuple[ContractStatus, ...] = ("active", "deprecated")
"""Statuses whose version applies to the periods from its effective_from until the next version's."""


@dataclass(frozen=True)
class ContractColumn:
    """One property of the contract: the Raw column `name`, read from the source column `source_name`."""

    name: str
    source_name: str
    logical_type: str
    physical_type: str
    required: bool = False
    unique: bool = False
    primary_key_position: int | None = None
    valid_values: tuple[str, ...] | None = None
    minimum: str | float | None = None
    maximum: str | float | None = None
    pattern: str | None = None
    references: str | None = None
    pii: bool = False


@dataclass(frozen=True)
class Contract:
    """One version of one contract, validated against ODCS v3 and BareCount's rules."""

    id: str
    version: str
    status: ContractStatus
    effective_from: str
    columns: tuple[ContractColumn, ...]
    owners: tuple[str, ...]
    file: str
    content_hash: str
    """Hash of everything but `status`: fixed once the version is active."""
    partition_column: str | None = None
    privacy_level: str | None = None
    latency: timedelta | None = None
    """ODCS `slaProperties` latency: how long after a period ends its extract must have landed (None: no SLA)."""
    retention: timedelta | None = None
    """ODCS `slaProperties` retention: how long after a period ends its raw rows are kept (None: the tenant's rules)."""

    @property
    def version_key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))

    @property
    def primary_key(self) -> tuple[str, ...]:
        keyed = sorted((c.primary_key_position or 0, c.name) for c in self.columns if c.primary_key_position)
        return tuple(name for _, name in keyed)

    def column(self, name: str) -> ContractColumn:
        return next(c for c in self.columns if c.name == name)

    @property
    def domain(self) -> str:
        return self.id.split(".", 1)[0]

    def references(self) -> list[tuple[str, str, str]]:
        """(column, parent contract id, parent column) for each foreign key (`to: <stream>.<column>`)."""
        found = []
        for column in self.columns:
            if column.references and "." in column.references:
                stream, key = column.references.rsplit(".", 1)
                found.append((column.name, f"{self.domain}.{stream}", key))
        return found

    def rules(self) -> list[str]:
        """The rules the version promises, as a person reads them (`o_totalprice ≥ 0`, `key (o_orderkey) unique`)."""
        found = []
        if self.primary_key:
            found.append(f"key ({', '.join(self.primary_key)}) unique")
        required = [c.name for c in self.columns if c.required]
        if required:
            found.append(f"{', '.join(required)} required")
        for c in self.columns:
            if c.unique and (c.name,) != self.primary_key:
                found.append(f"{c.name} unique")
            if c.valid_values is not None:
                found.append(f"{c.name} in {', '.join(c.valid_values)}")
            found += bounds(c.name, c.minimum, c.maximum)
            if c.pattern is not None:
                found.append(f"{c.name} matches {c.pattern}")
            if c.references:
                found.append(f"{c.name} references {c.references}")
        return found

    @property
    def schema_hash(self) -> str:
        """Hash of the Raw shape the contract promises (names and types, in order)."""
        text = "\n".join(f"{c.name}:{c.physical_type}" for c in self.columns)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
