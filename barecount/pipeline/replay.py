"""Dead-letter replay: quarantined rows re-validated against the contract in force, and those that now pass land.

A row is quarantined with its original text. Once the cause is fixed (a contract version that accepts
it, a parent row that has landed since), replay runs the same checked SELECT as the door over those
rows, lands the ones with no finding in `raw.<stream>` (a key already landed in its period stays in
quarantine as a duplicate) and removes exactly them from quarantine, in one transaction with a
`replay` ledger entry per period. Rows move, none are made or lost, so rows in = rows landed + rows
quarantined stays true; replaying again finds only rows that still fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from barecount.catalog.loader import LoadedStream
from barecount.config.project import ProjectPaths
from barecount.contracts import Contract, ContractRegistry
from barecount.errors import RefusedError
from barecount.evidence import ledger
from barecount.pipeline.connectors import SOURCE_FILE, SOURCE_ROW, UNPARSABLE
from barecount.pipeline.ingestion import (
    DUPLICATE_KEY,
    UNPARSABLE_LINE,
    VIOLATIONS,
    ParentKey,
    checked_select,
    landed_tables,
    parent_keys,
)
from barecount.sql.relation import LINEAGE_COLUMNS, PARTITION_COLUMN, Column, quote_ident, sql_literal
from barecount.warehouse.catalog import table_columns
from barecount.warehouse.writes import business_columns, content_sql, source_filter, transaction

QUARANTINE_ROW = "__quarantine_row"
CHECKED = "barecount_replay_checked"
PASSING = "barecount_replay_passing"
KEPT_LINEAGE = ("x_org_slug", "x_pipeline_id", "x_credential_id", "x_pipeline_run_date")
"""The replace key of the row's period: a replayed row is replaced with its period by the next build."""


@dataclass
class ReplayOutcome:
    """What a replay moved, per period (None: an unpartitioned stream)."""

    stream: str
    replay_id: str
    landed: dict[str | None, int] = field(default_factory=dict)
    still_quarantined: dict[str | None, dict[str, int]] = field(default_factory=dict)
    """Rows replayed that still fail, by the first rule they break now."""

    @property
    def rows_landed(self) -> int:
        return sum(self.landed.values())

    @property
    def rows_still_failing(self) -> int:
        return sum(n for rules in self.still_quarantined.values() for n in rules.values())


def replay_quarantine(
    paths: ProjectPaths,
    conn: duckdb.DuckDBPyConnection,
    stream: LoadedStream,
    stream_by_contract: Mapping[str, str],
    org_slug: str,
    period: str | None = None,
    rule: str | None = None,
) -> ReplayOutcome:
    """Re-validate the quarantined rows of `stream` (of one period, or that broke one rule) and land the ones
    that now pass, in one transaction."""
    spec = stream.spec
    outcome = ReplayOutcome(spec.name, f"replay-{uuid.uuid4().hex[:12]}")
    held = f"quarantine.{quote_ident(spec.name)}"
    if f"quarantine.{spec.name}" not in landed_tables(conn):
        return outcome
    # a line the parser could not read has no values to check again: only a new extract can land it
    where = [f"x_org_slug = {sql_literal(org_slug)}", f"quarantine_rule <> {sql_literal(UNPARSABLE_LINE)}"]
    if period is not None:
        where.append(f"{PARTITION_COLUMN} = {sql_literal(period)}")
    if rule is not None:
        where.append(f"list_contains(quarantine_rules, {sql_literal(rule)})")
    chosen = " AND ".join(where)
    registry = ContractRegistry.load(paths)
    keys: list[str | None] = (
        [str(p) for (p,) in conn.execute(f"SELECT DISTINCT {PARTITION_COLUMN} FROM {held} WHERE {chosen}").fetchall()]
        if spec.partitioned
        else [None]
    )
    by_contract: dict[str, list[str | None]] = {}
    for key in keys:
        by_contract.setdefault(registry.in_force(spec.contract, key).version, []).append(key)
    with transaction(conn):
        tables = landed_tables(conn)
        for version, periods in by_contract.items():
            contract = registry.version(spec.contract, version)
            parents = parent_keys(contract, spec.name, stream_by_contract, tables, org_slug)
            in_periods = f" AND {PARTITION_COLUMN} IN ({', '.join(sql_literal(p) for p in periods)})"
            scope = chosen + (in_periods if spec.partitioned else "")
            _replay_group(conn, stream, contract, parents, scope, org_slug, outcome)
        entries = [
            ledger.NewEntry(
                "replay",
                stream.asset_ref,
                key,
                outcome.replay_id,
                {
                    "contract_version": registry.in_force(spec.contract, key).version,
                    "rule": rule,
                    "rows_replayed": outcome.landed.get(key, 0) + sum(outcome.still_quarantined.get(key, {}).values()),
                    "rows_landed": outcome.landed.get(key, 0),
                    "still_quarantined_by_rule": outcome.still_quarantined.get(key, {}),
                    **_accounted(conn, stream, key, org_slug),
                },
            )
            for key in keys
        ] or [  # nothing to replay is on the record too: someone asked, and found the quarantine empty
            ledger.NewEntry(
                "replay",
                stream.asset_ref,
                period,
                outcome.replay_id,
                {"rule": rule, "rows_replayed": 0, "rows_landed": 0, "still_quarantined_by_rule": {}},
            )
        ]
        ledger.append(conn, entries + _rebuilt_partitions(conn, stream, outcome, org_slug))
    return outcome


def _rebuilt_partitions(
    conn: duckdb.DuckDBPyConnection, stream: LoadedStream, outcome: ReplayOutcome, org_slug: str
) -> list[ledger.NewEntry]:
    """A period that gained rows is a new state of the Raw partition: a materialization entry with its new counts,
    so that what is built from it (and traced through it) sees the change."""
    entries = []
    spec = stream.spec
    business = business_columns(conn, "raw", spec.name) or []
    source = source_filter(org_slug, stream.pipeline_id, spec.credential_id)
    measured = content_sql(f"raw.{quote_ident(spec.name)}", business, source, spec.partitioned)
    content = {k: str(h) for k, _, h in conn.execute(measured).fetchall()}
    for key, rows in outcome.landed.items():
        built = ledger.read_entries(conn, stream.asset_ref, key, kind="materialization")
        if not built or not rows:
            continue
        facts = dict(built[-1].facts)
        facts |= {
            "rows_landed": int(facts["rows_landed"]) + rows,
            "rows_quarantined": int(facts["rows_quarantined"]) - rows,
            "quarantined_by_rule": _by_rule(conn, stream, key, org_slug),
            "content_hash": content.get(key),
            "replay_id": outcome.replay_id,
            "rows_replayed": rows,
        }
        entries.append(ledger.NewEntry("materialization", stream.asset_ref, key, outcome.replay_id, facts))
    return entries


def _replay_group(
    conn: duckdb.DuckDBPyConnection,
    stream: LoadedStream,
    contract: Contract,
    parents: list[ParentKey],
    chosen: str,
    org_slug: str,
    outcome: ReplayOutcome,
) -> None:
    """Replay the chosen quarantined rows read under one contract version."""
    spec = stream.spec
    held, raw = f"quarantine.{quote_ident(spec.name)}", f"raw.{quote_ident(spec.name)}"
    kept = {c.name for c in table_columns(conn, "quarantine", spec.name) or []}
    # the door's own SELECT over the rows as they were delivered (quarantine keeps their original text)
    delivered = [
        f"{quote_ident(c.name) if c.name in kept else 'NULL'} AS {quote_ident(c.source_name)}" for c in contract.columns
    ]
    partition = [PARTITION_COLUMN] if spec.partitioned else []
    scan = (
        f"SELECT {', '.join(delivered + partition)}, 'quarantine' AS {SOURCE_FILE}, rowid AS {SOURCE_ROW}, "
        f"NULL::VARCHAR AS {UNPARSABLE}, rowid AS {QUARANTINE_ROW} FROM {held} WHERE {chosen}"
    )
    source = [Column(c.source_name, "VARCHAR") for c in contract.columns]
    checked = checked_select(contract, scan, source, spec.partitioned, parents, carry=[QUARANTINE_ROW])
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {CHECKED} AS {checked}")
    landed_columns = [c.name for c in table_columns(conn, "raw", spec.name) or [] if c.name not in LINEAGE_COLUMNS]
    same_period = f"r.{PARTITION_COLUMN} = c.{PARTITION_COLUMN} AND " if spec.partitioned else ""
    # a key that landed in its period since (the first of two rows with one key) keeps the repeat out
    key_landed = " AND ".join(f"r.{quote_ident(k)} = c.{quote_ident(k)}" for k in contract.primary_key) or "false"
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {PASSING} AS SELECT c.* FROM {CHECKED} AS c WHERE len(c.{VIOLATIONS}) = 0 "
        f"AND NOT EXISTS (SELECT 1 FROM {raw} AS r WHERE {same_period}{key_landed} "
        f"AND r.x_org_slug = {sql_literal(org_slug)})"
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    checked_columns = {c.name for c in contract.columns} | set(partition) | {"x_contract_version"}
    # the shape of the source is that of the extract the row came in (a column of another version is NULL)
    values = [
        f"p.{quote_ident(c)}" if c in checked_columns else "q.x_schema_hash" if c == "x_schema_hash" else "NULL"
        for c in landed_columns
    ]
    values += [f"q.{c}" for c in KEPT_LINEAGE] + [
        sql_literal(outcome.replay_id),
        f"TIMESTAMP '{now.isoformat(sep=' ')}'",
        sql_literal(now.date()),
    ]
    names = [quote_ident(c) for c in landed_columns] + list(LINEAGE_COLUMNS)
    conn.execute(
        f"INSERT INTO {raw} ({', '.join(names)}) SELECT {', '.join(values)} FROM {PASSING} AS p "
        f"JOIN {held} AS q ON q.rowid = p.{QUARANTINE_ROW}"
    )
    period = PARTITION_COLUMN if spec.partitioned else "NULL"
    moved = conn.execute(f"SELECT {period}, count(*) FROM {PASSING} GROUP BY ALL").fetchall()
    deleted = conn.execute(
        f"DELETE FROM {held} WHERE rowid IN (SELECT {QUARANTINE_ROW} FROM {PASSING}) RETURNING 1"
    ).fetchall()
    if len(deleted) != sum(int(n) for _, n in moved):
        raise RefusedError(f"replay of {spec.name}: {len(deleted)} rows left quarantine but {moved} landed")
    for key, n in moved:
        outcome.landed[None if key is None else str(key)] = int(n)
    first_rule = f"coalesce({VIOLATIONS}[1].rule, {sql_literal(DUPLICATE_KEY)})"
    still = conn.execute(
        f"SELECT {period}, {first_rule}, count(*) FROM {CHECKED} "
        f"WHERE {QUARANTINE_ROW} NOT IN (SELECT {QUARANTINE_ROW} FROM {PASSING}) GROUP BY ALL"
    ).fetchall()
    for key, broken, n in still:
        outcome.still_quarantined.setdefault(None if key is None else str(key), {})[str(broken)] = int(n)
    conn.execute(f"DROP TABLE {CHECKED}")
    conn.execute(f"DROP TABLE {PASSING}")


def _by_rule(conn: duckdb.DuckDBPyConnection, stream: LoadedStream, key: str | None, org_slug: str) -> dict[str, int]:
    period = f" AND {PARTITION_COLUMN} = {sql_literal(key)}" if key is not None else ""
    rows = conn.execute(
        f"SELECT quarantine_rule, count(*) FROM quarantine.{quote_ident(stream.spec.name)} "
        f"WHERE x_org_slug = {sql_literal(org_slug)}{period} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {str(rule): int(n) for rule, n in rows}


def _accounted(conn: duckdb.DuckDBPyConnection, stream: LoadedStream, key: str | None, org_slug: str) -> dict[str, int]:
    """The period's rows now, against what its last build read: rows in = rows landed + rows quarantined."""
    period = f" AND {PARTITION_COLUMN} = {sql_literal(key)}" if key is not None else ""
    counts = {}
    for schema in ("raw", "quarantine"):
        row = conn.execute(
            f"SELECT count(*) FROM {schema}.{quote_ident(stream.spec.name)} "
            f"WHERE x_org_slug = {sql_literal(org_slug)}{period}"
        ).fetchone()
        counts[schema] = int(row[0]) if row else 0
    built = ledger.read_entries(conn, stream.asset_ref, key, kind="materialization")
    rows_in = int(built[-1].facts["rows_in"]) if built else counts["raw"] + counts["quarantine"]
    if rows_in != counts["raw"] + counts["quarantine"]:
        raise RefusedError(
            f"replay of {stream.spec.name} {key or 'snapshot'} would leave {counts['raw']} landed + "
            f"{counts['quarantine']} quarantined against {rows_in} rows in; nothing was replayed"
        )
    return {"rows_in": rows_in, "rows_landed_now": counts["raw"], "rows_quarantined_now": counts["quarantine"]}
