"""What flows between assets: SQL to run in the warehouse, never rows in Python."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

LINEAGE_COLUMNS: tuple[str, ...] = (
    "x_org_slug",
    "x_pipeline_id",
    "x_credential_id",
    "x_pipeline_run_date",
    "x_run_id",
    "x_ingested_at",
    "x_ingestion_date",
)
"""Stamped on every row of every table; the first four are the partition's replace key."""

LINEAGE_TYPES = {"x_pipeline_run_date": "DATE", "x_ingested_at": "TIMESTAMP", "x_ingestion_date": "DATE"}
"""The lineage columns' types where not VARCHAR."""


def lineage_type(name: str) -> str:
    """The SQL type of a lineage column (text unless LINEAGE_TYPES says otherwise)."""
    return LINEAGE_TYPES.get(name, "VARCHAR")


RAW_LINEAGE: tuple[str, ...] = (*LINEAGE_COLUMNS, "x_contract_version", "x_schema_hash")
"""The lineage every Raw row carries, never null."""

PARTITION_COLUMN = "fiscal_period"

INTERNAL_CREDENTIAL = "barecount"
"""x_credential_id of tables BareCount derives itself (GDP, KPI, Python transforms)."""


@dataclass(frozen=True)
class Column:
    """A column as the warehouse describes it."""

    name: str
    type: str


def schema_hash(columns: Sequence[Column]) -> str:
    """A short, stable hash of columns' names and types, in order (a table's or an extract's shape)."""
    text = "\n".join(f"{c.name}:{c.type}" for c in columns)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def quote_ident(name: str) -> str:
    """A SQL identifier, quoted so any name is safe."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str | date | None) -> str:
    """A SQL literal for a string or date (values are inlined where DuckDB takes no parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + value.replace("'", "''") + "'"


def in_list(values: Sequence[str]) -> str:
    """`(v1, v2, …)` for `IN`; an empty list matches nothing (`IN (NULL)`) instead of being a syntax error."""
    return "(" + (", ".join(sql_literal(v) for v in values) or "NULL") + ")"


BATCH_TABLE = "barecount_batch"
"""Temporary table holding a checked extract while it is split into landed and quarantined rows."""


@dataclass(frozen=True)
class QuarantineSplit:
    """How a checked extract (in `BATCH_TABLE`) splits: two SELECTs over it, one per destination."""

    landed_sql: str
    quarantined_sql: str


@dataclass(frozen=True)
class HeldBack:
    """A period a write leaves as it was: `block` (its extract drifted) or `hold` (an input was held back)."""

    kind: str
    reason: str
    facts: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SqlRelation:
    """An asset's output: a SELECT the IO manager wraps with lineage and writes in one transaction.

    A partitioned relation returns a `fiscal_period` column; an unpartitioned one carries the date
    its data is for (the extract date) in `data_date`.
    """

    sql: str
    pipeline_id: str
    credential_id: str
    data_date: date | None = None
    quarantine: QuarantineSplit | None = None
    """Set for contract-checked extracts: good rows land, the others go to quarantine.<table>."""
    code_version: str | None = None
    evidence: Mapping[str, object] = field(default_factory=dict)
    """Facts for the evidence ledger that only the asset knows (contract, source files, …)."""
    partition_evidence: Mapping[str | None, Mapping[str, object]] = field(default_factory=dict)
    """Facts that differ by period (the contract version and source schema each period was read under)."""
    drifted: Mapping[str | None, Mapping[str, object]] = field(default_factory=dict)
    """Periods that land although their extract differs from the contract (drift that still fits it), and how."""
    held_back: Mapping[str | None, HeldBack] = field(default_factory=dict)
    """Periods of the run left as they were; the SQL returns no rows for them."""
    variables: Mapping[str, str] = field(default_factory=dict, repr=False)
    """DuckDB session variables the SQL reads with getvariable() (secrets stay out of the SQL text)."""
    inputs: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    """Input assets (`layer/name`) and the partitions read from each (None: the whole input)."""
    late_periods: int = 0
    """Each period is built from its inputs' same period and this many later ones (rows that arrive late)."""
    checked_against: tuple[str, ...] = ()
    """Assets whose whole tables the SQL reads besides its inputs (the parents foreign keys are checked against)."""
    unfingerprinted: tuple[str, ...] = ()
    """Columns left out of the content fingerprint because every write changes them (e.g. published_at)."""


@dataclass(frozen=True)
class TableRef:
    """An asset's input: a table and the periods to read, rendered as a lazy SELECT."""

    schema: str
    table: str
    org_slug: str
    partition_keys: tuple[str, ...] | None = None
    held_back: Mapping[str, str] = field(default_factory=dict)
    """Periods of the run this input's asset held back (period -> why); not among `partition_keys`."""

    @property
    def qualified_name(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.table)}"

    def select_sql(self) -> str:
        where = f"x_org_slug = {sql_literal(self.org_slug)}"
        if self.partition_keys is not None:
            where += f" AND {PARTITION_COLUMN} IN {in_list(self.partition_keys)}"
        return f"SELECT * FROM {self.qualified_name} WHERE {where}"
