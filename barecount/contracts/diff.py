"""Differences between two contract versions, each saying whether it *breaks consumers*: whether readers of
the Raw table could not use the new version as they used the old.

Added optional column: breaks no consumer. Removed column, a type change that can lose data, or a column
that becomes required: breaks consumers. A new source name for the same column (a rename at the source,
mapped with physicalName) keeps Raw's shape: breaks no consumer.

Drift (`drift.py`) uses the same `ColumnChange` for an extract against the version in force, where
`breaking` means the change *breaks the contract* (the period is blocked). The field keeps one name in both,
as stored evidence and `--json` output have it; what people read names the two apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from barecount.contracts.contract import Contract, ContractColumn
from barecount.sql.widening import widens


@dataclass(frozen=True)
class ColumnChange:
    """One difference: what changed on which column, and whether it breaks consumers (between two versions)
    or breaks the contract (an extract against the version in force)."""

    column: str
    change: str
    before: str | None
    after: str | None
    breaking: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def describe_changes(changes: Sequence[ColumnChange]) -> str:
    """An extract's drift in one line a person reads: what changed on which column, and which changes break
    the contract in force."""
    return "; ".join(
        f"{c.column} {c.change} ({c.before or '-'} -> {c.after or '-'}){', breaks the contract' if c.breaking else ''}"
        for c in changes
    )


def diff_columns(before: tuple[ContractColumn, ...], after: tuple[ContractColumn, ...]) -> list[ColumnChange]:
    """Column by column, in the order of `after` then the removed ones."""
    old = {c.name: c for c in before}
    changes: list[ColumnChange] = []
    for column in after:
        prior = old.get(column.name)
        if prior is None:
            changes.append(ColumnChange(column.name, "added", None, column.physical_type, column.required))
            continue
        if prior.physical_type != column.physical_type:
            breaking = not widens(prior.physical_type, column.physical_type)
            changes.append(ColumnChange(column.name, "type", prior.physical_type, column.physical_type, breaking))
        if prior.required != column.required:
            changes.append(
                ColumnChange(
                    column.name, "required", str(prior.required).lower(), str(column.required).lower(), column.required
                )
            )
        if prior.source_name != column.source_name:
            changes.append(ColumnChange(column.name, "source name", prior.source_name, column.source_name, False))
    names = {c.name for c in after}
    changes += [ColumnChange(c.name, "removed", c.physical_type, None, True) for c in before if c.name not in names]
    return changes


def diff_contracts(before: Contract, after: Contract) -> list[ColumnChange]:
    return diff_columns(before.columns, after.columns)
