"""A contract version as a pandera schema for landed Raw rows, validated inside DuckDB through ibis.

Quarantine has already taken the rows that break a rule, so on landed rows this is a second,
independent gate: it proves Raw holds what the contract promises (types, nulls, values, ranges,
patterns, unique keys per period, lineage never null) without pulling a row into Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis.expr.datatypes as dt
import pandera.ibis as pa
from ibis.backends.sql.datatypes import DuckDBType

from barecount.contracts.contract import Contract, ContractColumn
from barecount.sql.relation import PARTITION_COLUMN, RAW_LINEAGE

_LINEAGE_TYPES = {"x_pipeline_run_date": "DATE", "x_ingested_at": "TIMESTAMP", "x_ingestion_date": "DATE"}


def _bound(column: ContractColumn, value: str | float) -> object:
    """A contract bound as the Python value pandera compares the column with."""
    if column.logical_type == "date":
        return date.fromisoformat(str(value))
    return value


def _column(column: ContractColumn) -> pa.Column:
    checks = []
    if column.valid_values:
        checks.append(pa.Check.isin(list(column.valid_values)))
    if column.minimum is not None:
        checks.append(pa.Check.ge(_bound(column, column.minimum)))
    if column.maximum is not None:
        checks.append(pa.Check.le(_bound(column, column.maximum)))
    if column.pattern:
        checks.append(pa.Check.str_matches(f"^(?:{column.pattern})$"))
    return pa.Column(DuckDBType.from_string(column.physical_type), checks, nullable=not column.required)


def contract_schema(contract: Contract, partitioned: bool) -> pa.DataFrameSchema:
    """The pandera schema of `raw.<stream>` rows landed under `contract`."""
    columns = {c.name: _column(c) for c in contract.columns}
    columns |= {
        name: pa.Column(DuckDBType.from_string(_LINEAGE_TYPES.get(name, "VARCHAR")), nullable=False)
        for name in RAW_LINEAGE
    }
    if partitioned:
        columns[PARTITION_COLUMN] = pa.Column(dt.string, nullable=False)
    key: Sequence[str] = contract.primary_key
    return pa.DataFrameSchema(
        columns,
        # the ibis backend checks uniqueness at schema level only; a key is unique within its extract
        unique=[*([PARTITION_COLUMN] if partitioned else []), *key] if key else None,
        strict=True,
        name=f"{contract.id} {contract.version}",
    )
