"""From a source extract to the Raw shape its contract promises, checked row by row, in SQL.

Source columns are matched by the contract's `physicalName`, renamed to the canonical column `name`
and cast to its `physicalType` with TRY_CAST, so a value that does not parse becomes a finding, not a
crash. Every contract rule is a SQL predicate; each row carries the list of rules it broke
(`__violations`, empty for a good row) and its original values as text, so the write can land good
rows in `raw` and the others in `quarantine` in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from barecount.contracts.contract import Contract, ContractColumn
from barecount.errors import RefusedError
from barecount.pipeline.connectors import SOURCE_FILE, SOURCE_ROW, UNPARSABLE
from barecount.sql.relation import (
    BATCH_TABLE,
    PARTITION_COLUMN,
    Column,
    QuarantineSplit,
    quote_ident,
    schema_hash,
    sql_literal,
)
from barecount.warehouse.catalog import tables
from barecount.warehouse.connection import Connection

VIOLATIONS = "__violations"
ORIGINAL_PREFIX = "__src_"
ORIGINALS = "__originals"
"""Column name -> the value as delivered, as text: a JSON object on rows that break a rule, NULL on the others (JSON,
not a MAP: BigQuery has no MAP). One NULL costs a good row nothing, where a text column per contract column held 16
NULL text slots per row of SF1's lineitem (1.7 GB of DuckDB's memory for the batch against 1.3 GB)."""
DUPLICATE_KEY = "duplicate_key"
UNPARSABLE_LINE = "unparsable_line"
"""The rule of a source line the parser could not read: the only rule such a row breaks (it has no values)."""
INTERNAL_COLUMNS = (PARTITION_COLUMN, SOURCE_FILE, SOURCE_ROW)


@dataclass(frozen=True)
class ParentKey:
    """A foreign key to another stream: `column` must be a `key` of a row landed in `table`."""

    column: str
    table: str
    key: str
    quarantine_table: str | None
    """The parent's quarantine, to tell an orphan of a quarantined parent from a plain dangling key."""
    org_slug: str
    """Only the same organisation's parent rows count (one warehouse can hold several tenants)."""


ORPHAN_OF_QUARANTINED_PARENT = "orphan_of_quarantined_parent"


def landed_tables(conn: Connection) -> set[str]:
    """`raw.<t>` and `quarantine.<t>` tables the warehouse holds: the parents foreign keys can be checked against."""
    return {f"{layer}.{table}" for layer, table in tables(conn, ["raw", "quarantine"])}


def parent_keys(
    contract: Contract, stream: str, stream_by_contract: Mapping[str, str], tables: set[str], org_slug: str
) -> list[ParentKey]:
    """The contract's foreign keys to other streams, as the landed tables to check them against (`tables`:
    what `landed_tables` found); a parent that has not landed yet is refused by name."""
    keys = []
    for column, parent_contract, key in contract.references():
        parent = stream_by_contract.get(parent_contract)
        if parent is None or parent == stream:
            continue
        if f"raw.{parent}" not in tables:
            raise RefusedError(
                f"raw.{parent} does not exist yet: build raw/{parent} first ({stream}.{column} must reference its "
                f"{key})"
            )
        held = f"quarantine.{parent}"
        keys.append(ParentKey(column, f"raw.{parent}", key, held if held in tables else None, org_slug))
    return keys


@dataclass(frozen=True)
class RowRule:
    """One contract rule as SQL: `condition` is true for a row that breaks it; `reason` says why, per row."""

    rule_id: str
    condition: str
    reason: str


def _value(column: ContractColumn) -> str:
    return f"coalesce('''' || {quote_ident(ORIGINAL_PREFIX + column.name)} || '''', 'null')"


def _bound(column: ContractColumn, value: str | float) -> str:
    return f"CAST({sql_literal(str(value))} AS {column.physical_type})"


def column_rules(column: ContractColumn) -> list[RowRule]:
    """The rules one column's contract declares, in the order they are reported."""
    name, original, typed = column.name, quote_ident(ORIGINAL_PREFIX + column.name), quote_ident(column.name)
    rules = []
    if column.required:
        rules.append(RowRule(f"required__{name}", f"{original} IS NULL", f"'{name} is missing'"))
    rules.append(
        RowRule(
            f"type__{name}",
            f"{original} IS NOT NULL AND {typed} IS NULL",
            f"'{name} ' || {_value(column)} || ' is not a {column.physical_type}'",
        )
    )
    if column.valid_values:
        allowed = ", ".join(sql_literal(v) for v in column.valid_values)
        rules.append(
            RowRule(
                f"valid_values__{name}",
                f"{typed} NOT IN ({allowed})",
                f"'{name} ' || {_value(column)} || ' is not one of {', '.join(column.valid_values)}'",
            )
        )
    bounds = []
    if column.minimum is not None:
        bounds.append(f"{typed} < {_bound(column, column.minimum)}")
    if column.maximum is not None:
        bounds.append(f"{typed} > {_bound(column, column.maximum)}")
    if bounds:
        low = "-inf" if column.minimum is None else column.minimum
        high = "inf" if column.maximum is None else column.maximum
        rules.append(
            RowRule(
                f"range__{name}",
                " OR ".join(bounds),
                f"'{name} ' || {_value(column)} || ' is outside [{low}, {high}]'",
            )
        )
    if column.pattern:
        rules.append(
            RowRule(
                f"pattern__{name}",
                f"NOT regexp_full_match({typed}, {sql_literal(column.pattern)})",
                f"'{name} ' || {_value(column)} || ' does not match {column.pattern.replace(chr(39), chr(39) * 2)}'",
            )
        )
    return rules


def parent_rules(contract: Contract, parents: Sequence[ParentKey]) -> list[RowRule]:
    """Referential integrity: a key with no parent row, told apart from one whose parent was quarantined."""
    rules = []
    for index, parent in enumerate(parents):
        column = contract.column(parent.column)
        dangling = f"{quote_ident(column.name)} IS NOT NULL AND NOT __has_parent_{index}"
        parent_name = parent.table.split(".")[-1]
        rules += [
            RowRule(
                ORPHAN_OF_QUARANTINED_PARENT,
                f"{dangling} AND __parent_quarantined_{index}",
                f"'{column.name} ' || {_value(column)} || ' belongs to a quarantined {parent_name} row'",
            ),
            RowRule(
                f"references__{column.name}",
                f"{dangling} AND NOT __parent_quarantined_{index}",
                f"'{column.name} ' || {_value(column)} || ' has no {parent_name} row'",
            ),
        ]
    return rules


def unique_columns(contract: Contract) -> list[ContractColumn]:
    """Columns declared unique on their own (a one-column primary key is checked as the key)."""
    return [c for c in contract.columns if c.unique and (c.name,) != contract.primary_key]


def row_rules(contract: Contract, parents: Sequence[ParentKey] = ()) -> list[RowRule]:
    """Every row rule of a contract: the columns' rules, foreign keys, unique columns, then the primary key."""
    rules = [rule for column in contract.columns for rule in column_rules(column)]
    rules += parent_rules(contract, parents)
    rules += [
        RowRule(
            f"unique__{column.name}",
            f"{quote_ident(column.name)} IS NOT NULL AND __unique_seen_{index} > 1",
            f"'{column.name} ' || {_value(column)} || ' repeats an earlier row'",
        )
        for index, column in enumerate(unique_columns(contract))
    ]
    if contract.primary_key:
        key = " || ', ' || ".join(_value(contract.column(c)) for c in contract.primary_key)
        rules.append(
            RowRule(DUPLICATE_KEY, "__key_seen > 1", f"'duplicate of an earlier row with key (' || {key} || ')'")
        )
    return rules


def _parent_joins(contract: Contract, parents: Sequence[ParentKey]) -> tuple[list[str], list[str]]:
    """LEFT JOINs to each parent's keys (landed and quarantined), and the flag columns they add."""
    joins, flags = [], []
    for index, parent in enumerate(parents):
        column = contract.column(parent.column)
        key, local = quote_ident(parent.key), f"typed.{quote_ident(column.name)}"
        same_org = f"x_org_slug = {sql_literal(parent.org_slug)}"
        joins.append(
            f"LEFT JOIN (SELECT DISTINCT {key} AS k FROM {parent.table} WHERE {same_org}) AS parent_{index} "
            f"ON parent_{index}.k = {local}"
        )
        flags.append(f"parent_{index}.k IS NOT NULL AS __has_parent_{index}")
        if parent.quarantine_table:
            joins.append(
                f"LEFT JOIN (SELECT DISTINCT TRY_CAST({key} AS {column.physical_type}) AS k "
                f"FROM {parent.quarantine_table} WHERE {same_org}) AS held_{index} ON held_{index}.k = {local}"
            )
            flags.append(f"held_{index}.k IS NOT NULL AS __parent_quarantined_{index}")
        else:
            flags.append(f"false AS __parent_quarantined_{index}")
    return joins, flags


def checked_select(
    contract: Contract,
    scan_sql: str,
    source: Sequence[Column],
    partitioned: bool,
    parents: Sequence[ParentKey] = (),
    carry: Sequence[str] = (),
) -> str:
    """The contract's columns, typed, with originals as text, lineage and the rules each row broke; `carry`
    names columns of the scan passed through as they are (a replayed row's place in quarantine)."""
    delivered = {c.name for c in source}
    missing = [c.source_name for c in contract.columns if c.source_name not in delivered]
    if missing:
        raise RefusedError(
            f"contract {contract.id} {contract.version}: the extract has no column(s) {', '.join(missing)} "
            f"(it has {', '.join(sorted(delivered))})"
        )
    typed = [
        f"TRY_CAST(src.{quote_ident(c.source_name)} AS {c.physical_type}) AS {quote_ident(c.name)}"
        for c in contract.columns
    ]
    # the delivered values are kept (as text, in ORIGINALS) only on rows that break a rule: good rows need the
    # typed ones
    originals = [
        f"src.{quote_ident(c.source_name)} AS {quote_ident(ORIGINAL_PREFIX + c.name)}" for c in contract.columns
    ]
    meta = [f"src.{SOURCE_FILE}", f"src.{SOURCE_ROW}", f"src.{UNPARSABLE}"] + (
        [f"src.{PARTITION_COLUMN}"] if partitioned else []
    )
    meta += [f"src.{quote_ident(c)}" for c in carry]
    meta += [
        f"{sql_literal(contract.version)} AS x_contract_version",
        f"{sql_literal(schema_hash(source))} AS x_schema_hash",
    ]
    # a key repeats within one extract: the result must not depend on which periods share a run
    per_extract = [PARTITION_COLUMN] * partitioned
    repeats: list[str] = []
    repeat_joins: list[str] = []

    def first_seen(columns: Sequence[str], alias: str) -> str:
        """1 for a key's first row in delivery order, 2 for its repeats. Keys are counted with a hash
        aggregate and only repeated ones are looked up: a row_number() window sorts every row (8 s of
        SF1's 6 M order lines, against 2 s)."""
        name = f"repeat_{len(repeats)}"
        by = per_extract + [quote_ident(c) for c in columns]
        repeats.append(
            f"{name} AS (SELECT {', '.join(by)}, min(({SOURCE_FILE}, {SOURCE_ROW})) AS first_row FROM typed "
            "GROUP BY ALL HAVING count(*) > 1)"
        )
        on = " AND ".join(f"{name}.{c} = typed.{c}" for c in by)
        repeat_joins.append(f"LEFT JOIN {name} ON {on}")
        return (
            f"CASE WHEN {name}.first_row IS NULL OR {name}.first_row = (typed.{SOURCE_FILE}, typed.{SOURCE_ROW}) "
            f"THEN 1 ELSE 2 END AS {alias}"
        )

    unique = unique_columns(contract)
    seen = [first_seen(contract.primary_key, "__key_seen") if contract.primary_key else "1 AS __key_seen"]
    seen += [first_seen([c.name], f"__unique_seen_{i}") for i, c in enumerate(unique)]
    rules = row_rules(contract, parents)
    # one list per rule, empty unless the row breaks it, concatenated: a list of NULLs filtered afterwards is not
    # portable (BigQuery's arrays hold no NULL element; its emulator unnests one as a struct of NULLs)
    findings = ", ".join(
        f"CASE WHEN {rule.condition} THEN [{{'rule': {sql_literal(rule.rule_id)}, 'reason': {rule.reason}}}] "
        "ELSE [] END"
        for rule in rules
    )
    # the list of findings is built only for rows that break some rule: a good row costs the conditions alone,
    # not a list of one empty finding per rule (SF1's lineitem has 29 rules and 6 M good rows)
    no_findings = "CAST([] AS STRUCT(rule VARCHAR, reason VARCHAR)[])"
    breaks_any = " OR ".join(f"({rule.condition})" for rule in rules) or "false"
    unparsed = f"[{{'rule': {sql_literal(UNPARSABLE_LINE)}, 'reason': {UNPARSABLE}}}]"
    joins, flags = _parent_joins(contract, parents)
    as_text = ", ".join(
        f"{sql_literal(c.name)}: CAST({quote_ident(ORIGINAL_PREFIX + c.name)} AS VARCHAR)" for c in contract.columns
    )
    kept_as_text = f"CASE WHEN array_length({VIOLATIONS}) > 0 THEN to_json({{{as_text}}}) END AS {ORIGINALS}"
    hidden = ", ".join(
        [quote_ident(ORIGINAL_PREFIX + c.name) for c in contract.columns]
        + ["__key_seen", UNPARSABLE]
        + [f"__unique_seen_{i}" for i in range(len(unique))]
        + [f"__has_parent_{i}, __parent_quarantined_{i}" for i in range(len(parents))]
    )
    # typed is read twice (keys counted, rows checked): NOT MATERIALIZED reads the extract again rather
    # than holding every row of it in memory
    return (
        f"WITH typed AS NOT MATERIALIZED (SELECT {', '.join(typed + originals + meta)} FROM ({scan_sql}) AS src),\n"
        + "".join(f"{r},\n" for r in repeats)
        + f"keyed AS (SELECT {', '.join(['typed.*', *seen, *flags])} FROM typed {' '.join(repeat_joins + joins)}),\n"
        f"checked AS (SELECT * EXCLUDE ({SOURCE_FILE}, {SOURCE_ROW}),\n"
        f"  CASE WHEN {UNPARSABLE} IS NOT NULL THEN {unparsed} "
        f"WHEN {breaks_any} THEN {f'list_concat({findings})' if rules else no_findings} "
        f"ELSE {no_findings} END AS {VIOLATIONS} FROM keyed)\n"
        f"SELECT * EXCLUDE ({hidden}), {kept_as_text} FROM checked"
    )


def union_of_extracts(selects: Sequence[str]) -> str:
    """Checked extracts read under different contract versions or source shapes, as one relation."""
    return "\nUNION ALL BY NAME\n".join(f"SELECT * FROM ({select})" for select in selects)


def quarantine_split(contracts: Sequence[Contract], partitioned: bool) -> QuarantineSplit:
    """Good rows keep the contracts' typed columns; quarantined rows keep their original text and findings.

    Several contract versions may share a write (one per range of periods): Raw gets every column of
    any of them, newest version's order first, and NULL where a version lacks it.
    """
    period = [PARTITION_COLUMN] if partitioned else []
    lineage = ["x_contract_version", "x_schema_hash"]
    columns: dict[str, ContractColumn] = {}
    for contract in sorted(contracts, key=lambda c: c.version_key, reverse=True):
        columns |= {c.name: c for c in contract.columns if c.name not in columns}
    landed = [quote_ident(name) for name in columns] + period + lineage
    quarantined = (
        period
        + [
            f"{VIOLATIONS}[1].rule AS quarantine_rule",
            f"{VIOLATIONS}[1].reason AS quarantine_reason",
            f"list_transform({VIOLATIONS}, lambda finding: finding.rule) AS quarantine_rules",
        ]
        + [f"json_extract_string({ORIGINALS}, {sql_literal('$.' + name)}) AS {quote_ident(name)}" for name in columns]
        + lineage
    )
    return QuarantineSplit(
        landed_sql=f"SELECT {', '.join(landed)} FROM {BATCH_TABLE} WHERE array_length({VIOLATIONS}) = 0",
        quarantined_sql=f"SELECT {', '.join(quarantined)} FROM {BATCH_TABLE} WHERE array_length({VIOLATIONS}) > 0",
    )
