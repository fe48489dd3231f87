"""A contract version as a pandera schema for landed Raw rows, validated inside DuckDB through ibis.

Quarantine has already taken the rows that break a rule, so on landed rows this is a second, independent gate:
it says which column broke which check (types, nulls, values, ranges, patterns, unique keys per period, lineage
never null) without pulling a row into Python. The gate runs it only where `rules_sql`'s counts found a period at
fault, for pandera's own names of what broke.
"""

from __future__ import annotations

import pandera.ibis as pa
from ibis.backends.sql.datatypes import DuckDBType

from barecount.contracts.contract import Contract, ContractColumn
from barecount.contracts.rules_sql import bound, full_match, key_columns, landed_types, required


def _checks(column: ContractColumn) -> list[pa.Check]:
    """The contract's value rules on `column` as pandera checks."""
    checks: list[pa.Check] = []
    if column.valid_values:
        checks.append(pa.Check.isin(list(column.valid_values)))
    if column.minimum is not None:
        checks.append(pa.Check.ge(bound(column, column.minimum)))
    if column.maximum is not None:
        checks.append(pa.Check.le(bound(column, column.maximum)))
    if column.pattern:
        checks.append(pa.Check.str_matches(full_match(column)))
    return checks


def contract_schema(contract: Contract, partitioned: bool) -> pa.DataFrameSchema:
    """The pandera schema of `raw.<stream>` rows landed under `contract`: a check per column and rule."""
    checks = {c.name: _checks(c) for c in contract.columns}
    not_null = required(contract, partitioned)
    return pa.DataFrameSchema(
        {
            name: pa.Column(DuckDBType.from_string(dtype), checks.get(name, []), nullable=name not in not_null)
            for name, dtype in landed_types(contract, partitioned).items()
        },
        unique=key_columns(contract, partitioned) or None,
        strict=True,
        name=f"{contract.id} {contract.version}",
    )
