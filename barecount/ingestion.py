"""From a source extract to the Raw shape its contract promises, in SQL.

Source columns are matched by the contract's `physicalName`, renamed to the canonical column `name`
and cast to its `physicalType` (TRY_CAST, so a value that does not parse becomes a finding, not a
crash). Each row carries the contract version and the hash of the extract's own schema.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from barecount.errors import RefusedError
from barecount.registry.contract import Contract
from barecount.warehouse.relation import PARTITION_COLUMN, quote_ident, sql_literal


@dataclass(frozen=True)
class SourceColumn:
    name: str
    type: str


def describe_source(scan_sql: str) -> list[SourceColumn]:
    """The extract's schema as the warehouse reads it (file metadata only, no rows)."""
    with duckdb.connect() as conn:
        rows = conn.execute(f"DESCRIBE {scan_sql}").fetchall()
    return [SourceColumn(str(r[0]), str(r[1])) for r in rows if r[0] != PARTITION_COLUMN]


def source_schema_hash(columns: Sequence[SourceColumn]) -> str:
    """Hash of the extract's schema: names and types as delivered, in order."""
    text = "\n".join(f"{c.name}:{c.type}" for c in columns)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def typed_select(contract: Contract, scan_sql: str, source: Sequence[SourceColumn], partitioned: bool) -> str:
    """SELECT the contract's columns from the scan, typed, with x_contract_version and x_schema_hash."""
    delivered = {c.name for c in source}
    missing = [c.source_name for c in contract.columns if c.source_name not in delivered]
    if missing:
        raise RefusedError(
            f"contract {contract.id} {contract.version}: the extract has no column(s) {', '.join(missing)} "
            f"(it has {', '.join(sorted(delivered))})"
        )
    columns = [
        f"TRY_CAST(src.{quote_ident(c.source_name)} AS {c.physical_type}) AS {quote_ident(c.name)}"
        for c in contract.columns
    ]
    if partitioned:
        columns.append(f"src.{PARTITION_COLUMN}")
    columns += [
        f"{sql_literal(contract.version)} AS x_contract_version",
        f"{sql_literal(source_schema_hash(source))} AS x_schema_hash",
    ]
    return f"SELECT {', '.join(columns)}\nFROM ({scan_sql}) AS src"
