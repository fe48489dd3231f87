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
from barecount.contracts.rules_sql import key_columns, landed_types, required, value_rules

PANDERA_CHECKS = {
    "isin": pa.Check.isin,
    "greater_than_or_equal_to": pa.Check.ge,
    "less_than_or_equal_to": pa.Check.le,
    "str_matches": pa.Check.str_matches,
}
"""Each value rule (`rules_sql.value_rules`) as the pandera check of its name."""


def _checks(column: ContractColumn) -> list[pa.Check]:
    """The contract's value rules on `column` as pandera checks."""
    return [PANDERA_CHECKS[rule.check](rule.argument) for rule in value_rules(column)]


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
