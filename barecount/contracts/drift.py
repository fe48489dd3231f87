"""Schema drift: how an extract differs from the contract in force, and the proposal that would accept it.

Compared by source column (`physicalName`). A change marked `breaking` here *breaks the contract*: the extract no
longer fits the version in force, and its period is blocked. A contract column the extract lacks is removed,
unless an unknown extract column of a fitting type stands in for it, which is a rename (mapped by the
proposal onto the same Raw column, so it need not break consumers: `diff.py`); an extract type the contract
type cannot hold without loss breaks the contract too; an extra extract column is an optional addition,
which still fits the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from barecount.contracts.contract import Contract
from barecount.contracts.diff import ColumnChange
from barecount.contracts.files import DRAFTED_BY
from barecount.sql.relation import Column
from barecount.sql.widening import INTEGER_TYPES, widens

_LOGICAL = {"BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp", "VARCHAR": "string"}


UNSIZED_DECIMAL = "DECIMAL"
"""A source's exact numeric type whose precision the source does not say: BigQuery drops a NUMERIC's precision
from query results (and its emulator from tables)."""
UNSIZED_INTEGER = "INT64"
"""A source's integer type that says nothing of the values' width: BigQuery's one integer type."""
_FAMILIES = {UNSIZED_DECIMAL: ("DECIMAL(",), UNSIZED_INTEGER: INTEGER_TYPES}


def _fits(delivered: str, declared: str) -> bool:
    """Whether values of the delivered type can land in the declared one without a new contract: the type widens
    to it, or it is a number of unknown size for a column of its kind (whose values the type rule then checks
    row by row, as a CSV's text is)."""
    return widens(delivered, declared) or declared.startswith(_FAMILIES.get(delivered, ()))


def extract_drift(contract: Contract, source: Sequence[Column], typed_source: bool = True) -> list[ColumnChange]:
    """The differences between an extract's schema and its contract (`typed_source=False` for text CSV)."""
    delivered = {c.name: c.type for c in source}
    known = {c.source_name for c in contract.columns}
    unclaimed = [c for c in source if c.name not in known]
    changes: list[ColumnChange] = []
    for column in contract.columns:
        found = delivered.get(column.source_name)
        if found is None:
            stand_in = next((c for c in unclaimed if not typed_source or _fits(c.type, column.physical_type)), None)
            if stand_in is not None:
                unclaimed.remove(stand_in)
                changes.append(ColumnChange(column.name, "renamed", column.source_name, stand_in.name, True))
            else:
                changes.append(ColumnChange(column.name, "removed", column.source_name, None, True))
        elif typed_source and not _fits(found, column.physical_type):
            changes.append(ColumnChange(column.name, "type", column.physical_type, found, True))
    changes += [ColumnChange(c.name, "added", None, c.type, False) for c in unclaimed]
    return changes


def next_version(contract: Contract, changes: Sequence[ColumnChange]) -> str:
    """Major bump when the extract breaks the contract in force, minor when it still fits it."""
    major, minor, _ = contract.version_key
    return f"{major + 1}.0.0" if any(c.breaking for c in changes) else f"{major}.{minor + 1}.0"


def draft_proposal(contract: Contract, contract_file: Path, changes: Sequence[ColumnChange], period: str) -> Path:
    """Write `<next version>.yaml` beside the contract with `status: proposed`, applying from `period`.

    Renames map the new source column onto the same Raw column (`physicalName`), so Raw's shape and the
    SQL downstream stay as they are; a wider source type widens the column; additions are optional.
    """
    body = yaml.safe_load(contract_file.read_text(encoding="utf-8"))
    version = next_version(contract, changes)
    body["version"], body["status"] = version, "proposed"
    custom = [p for p in body.get("customProperties", []) if p.get("property") != "effective_from"]
    body["customProperties"] = [*custom, {"property": "effective_from", "value": period}]
    properties = body["schema"][0]["properties"]
    by_name = {p["name"]: p for p in properties}
    for change in changes:
        if change.change == "renamed":
            by_name[change.column]["physicalName"] = change.after
        elif change.change == "type":
            by_name[change.column]["physicalType"] = change.after
        elif change.change == "added" and change.after is not None:
            logical = _LOGICAL.get(change.after, "integer" if "INT" in change.after else "number")
            properties.append(
                {
                    "name": change.column.lower(),
                    "physicalName": change.column,
                    "logicalType": logical,
                    "physicalType": change.after,
                    "required": False,
                }
            )
    target = contract_file.with_name(f"{version}.yaml")
    summary = "; ".join(f"{c.column} {c.change} ({c.before} -> {c.after})" for c in changes)
    target.write_text(
        f"{DRAFTED_BY}{period}: {summary}.\n"
        "# Approve it to apply from that period on; until then the period stays blocked.\n"
        "# `barecount reset` removes it (and undoes its approval).\n"
        + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110),
        encoding="utf-8",
    )
    return target
