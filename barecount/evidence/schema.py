"""The layout of the `evidence` schema, owned in one place: every table's DDL and the version it is at.

Each writer used to create its own table right before using it, so nothing in a warehouse said which
layout it had: a change to a table could not be applied to an existing warehouse, and an older BareCount
could not tell that a newer one had changed it. Now `ensure_evidence` creates every table at once and
records the layout's version in `evidence.schema_version`; a warehouse of an older layout is brought up
to date by `MIGRATIONS`, and one of a newer layout is refused, by writers and readers alike, rather than
written or read as if it were this one.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata

import duckdb

from barecount.config.project import WAREHOUSE_ENV
from barecount.errors import RefusedError
from barecount.warehouse.connection import Connection, on_bigquery

EVIDENCE_SCHEMA = "evidence"

SCHEMA_VERSION = 2
"""The layout `TABLES` creates. Version 1 is the layout every BareCount had before versions were recorded;
version 2 adds `alerts`."""

LEDGER_TABLE = f"{EVIDENCE_SCHEMA}.ledger"
BLOCKED_TABLE = f"{EVIDENCE_SCHEMA}.blocked_partitions"
GATE_RESULTS_TABLE = f"{EVIDENCE_SCHEMA}.gate_results"
APPROVALS_TABLE = f"{EVIDENCE_SCHEMA}.contract_approvals"
FINGERPRINTS_TABLE = f"{EVIDENCE_SCHEMA}.contract_versions"
TOKENS_TABLE = f"{EVIDENCE_SCHEMA}.run_tokens"
SCHEMA_VERSION_TABLE = f"{EVIDENCE_SCHEMA}.schema_version"
ALERTS_TABLE = f"{EVIDENCE_SCHEMA}.alerts"

VERSION_1_TABLES: Mapping[str, str] = {
    LEDGER_TABLE: f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (seq BIGINT NOT NULL, kind VARCHAR NOT NULL, "
    "asset VARCHAR NOT NULL, partition VARCHAR, run_id VARCHAR NOT NULL, recorded_at VARCHAR NOT NULL, "
    "facts VARCHAR NOT NULL, prev_hash VARCHAR NOT NULL, entry_hash VARCHAR NOT NULL)",
    BLOCKED_TABLE: f"CREATE TABLE IF NOT EXISTS {BLOCKED_TABLE} (contract VARCHAR NOT NULL, "
    "contract_version VARCHAR NOT NULL, asset VARCHAR NOT NULL, fiscal_period VARCHAR, diff VARCHAR NOT NULL, "
    "proposal VARCHAR NOT NULL, run_id VARCHAR NOT NULL, blocked_at TIMESTAMP NOT NULL DEFAULT now(), "
    "resolved_run_id VARCHAR, resolved_at TIMESTAMP)",
    GATE_RESULTS_TABLE: f"CREATE TABLE IF NOT EXISTS {GATE_RESULTS_TABLE} (gate VARCHAR NOT NULL, "
    "asset VARCHAR NOT NULL, partition VARCHAR, run_id VARCHAR NOT NULL, passed BOOLEAN NOT NULL, "
    "detail VARCHAR NOT NULL, checked_at TIMESTAMP NOT NULL DEFAULT now())",
    APPROVALS_TABLE: f"CREATE TABLE IF NOT EXISTS {APPROVALS_TABLE} (contract VARCHAR NOT NULL, "
    "version VARCHAR NOT NULL, outcome VARCHAR NOT NULL, decided_by VARCHAR NOT NULL, note VARCHAR NOT NULL, "
    "effective_from VARCHAR NOT NULL, replaced_version VARCHAR, decided_at TIMESTAMP NOT NULL)",
    FINGERPRINTS_TABLE: f"CREATE TABLE IF NOT EXISTS {FINGERPRINTS_TABLE} (contract VARCHAR NOT NULL, "
    "version VARCHAR NOT NULL, content_hash VARCHAR NOT NULL, first_run_id VARCHAR NOT NULL, "
    "first_used_at TIMESTAMP NOT NULL DEFAULT now())",
    TOKENS_TABLE: f"CREATE TABLE IF NOT EXISTS {TOKENS_TABLE} (token VARCHAR NOT NULL, "
    "fiscal_period VARCHAR NOT NULL, run_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT now())",
}
"""Each evidence table of layout version 1 (qualified name) -> the statement that creates it."""

ALERTS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {ALERTS_TABLE} (event_key VARCHAR NOT NULL, target VARCHAR NOT NULL, "
    "kind VARCHAR NOT NULL, asset VARCHAR, partition VARCHAR, run_id VARCHAR NOT NULL, body VARCHAR NOT NULL, "
    "delivered BOOLEAN NOT NULL, attempts INTEGER NOT NULL, last_error VARCHAR, "
    "recorded_at TIMESTAMP NOT NULL DEFAULT now(), delivered_at TIMESTAMP)"
)
"""Every alert per webhook target: its body, whether it was delivered, after how many attempts, and why not."""

TABLES: Mapping[str, str] = {**VERSION_1_TABLES, ALERTS_TABLE: ALERTS_DDL}
"""Each evidence table (qualified name) -> the statement that creates it as layout `SCHEMA_VERSION` has it."""

SCHEMA_VERSION_DDL = (
    f"CREATE TABLE IF NOT EXISTS {SCHEMA_VERSION_TABLE} (version INTEGER NOT NULL, "
    "applied_at TIMESTAMP NOT NULL DEFAULT now(), barecount_version VARCHAR NOT NULL)"
)
"""One row per layout version the warehouse has been brought to, with when and by which BareCount: the
newest row is the layout it has, the others are its history."""

Migration = Callable[[Connection], None]


def _bare(qualified: str) -> str:
    return qualified.removeprefix(f"{EVIDENCE_SCHEMA}.")


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    nullable: bool
    default: str | None


def _columns(conn: Connection) -> dict[str, dict[str, _Column]]:
    """Table (qualified) -> column name -> column, for the evidence tables `conn`'s database has (a DuckDB file:
    only a DuckDB warehouse can predate recorded versions)."""
    if on_bigquery(conn):
        raise RefusedError(
            f"{_describe(conn)} have evidence tables but no recorded version: BareCount did not make them"
        )
    rows = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = ? ORDER BY table_name, column_index",
        [EVIDENCE_SCHEMA],
    ).fetchall()
    found: dict[str, dict[str, _Column]] = {}
    for table, name, kind, nullable, default in rows:
        found.setdefault(f"{EVIDENCE_SCHEMA}.{table}", {})[name] = _Column(name, kind, bool(nullable), default)
    return found


@cache
def _layout() -> dict[str, dict[str, _Column]]:
    """The columns `TABLES` makes, as DuckDB itself reads the statements (so there is no second description
    of them to drift from the DDL): what an older warehouse's tables are compared with."""
    with duckdb.connect() as scratch:
        scratch.execute(f"CREATE SCHEMA {EVIDENCE_SCHEMA}")
        for statement in VERSION_1_TABLES.values():
            scratch.execute(statement)
        return _columns(scratch)


def _adopt_unversioned(conn: Connection) -> None:
    """Version 0 -> 1: a warehouse of a BareCount from before versions were recorded.

    Such a BareCount created each table on first use, so any may be missing; those present have version
    1's columns (no table changed before versioning). A column that is missing anyway is added where no
    existing row must then claim a value it never had (it may be NULL, or the table is empty); a column
    of another type, one this layout does not have, or a NOT NULL one missing from a table with rows is
    refused, naming each, since BareCount could not vouch for that table's evidence.

    The tables are compared with `VERSION_1_TABLES`, version 1's layout (the adopted warehouse then goes on
    through the later migrations).
    """
    expected, present = _layout(), _columns(conn)
    problems: list[str] = []
    additions: list[str] = []
    for table, columns in expected.items():
        have = present.get(table)
        if have is None:
            continue  # created below, with every column
        problems += [f"{table} has a column {name} that version 1 has not" for name in have if name not in columns]
        missing = [c for c in columns.values() if c.name not in have]
        problems += [
            f"{table}.{c.name} is {have[c.name].type}, not {c.type}"
            for c in columns.values()
            if c.name in have and have[c.name].type != c.type
        ]
        rows = _row_count(conn, table) if any(not c.nullable for c in missing) else 0
        for column in missing:
            if not column.nullable and rows:
                problems.append(f"{table} has {rows} rows but no column {column.name}, which may not be NULL")
                continue
            additions.append(f"ALTER TABLE {table} ADD COLUMN {column.name} {column.type}")
            if column.default is not None:
                additions.append(f"ALTER TABLE {table} ALTER COLUMN {column.name} SET DEFAULT {column.default}")
            if not column.nullable:
                additions.append(f"ALTER TABLE {table} ALTER COLUMN {column.name} SET NOT NULL")
    if problems:
        raise RefusedError(
            f"{_describe(conn)} has evidence tables BareCount did not make: {'; '.join(problems)}. "
            "Nothing was changed; restore the evidence schema from a backup, or use another warehouse file "
            f"(set {WAREHOUSE_ENV} or the profile's warehouse path)"
        )
    for statement in additions:
        conn.execute(statement)
    for statement in VERSION_1_TABLES.values():
        conn.execute(statement)


def _add_alerts(conn: Connection) -> None:
    """Version 1 -> 2: the alerts table, empty (no alert was recorded before it)."""
    conn.execute(ALERTS_DDL)


MIGRATIONS: list[tuple[int, Migration]] = [(0, _adopt_unversioned), (1, _add_alerts)]
"""(from_version, what takes a warehouse from that version to the next), in order. A change to the layout
edits its statement in `TABLES` (version 1's stay in `VERSION_1_TABLES`, what an unversioned warehouse is
compared with), raises `SCHEMA_VERSION` and appends one entry here; a fresh warehouse is
made from `TABLES` directly, an existing one by the entries from its recorded version on."""

_LAYOUT_TABLES = frozenset(_bare(t) for t in TABLES)
_current: weakref.WeakSet[Connection] = weakref.WeakSet()
"""Connections that found the layout current: `ensure_evidence` costs them nothing more."""
_wrote: weakref.WeakSet[Connection] = weakref.WeakSet()
"""DuckDB connections that created or upgraded the layout. They are never counted current: the version row they see
may be their own, uncommitted, and their caller's transaction may yet roll it back with the tables."""
_readable: weakref.WeakSet[Connection] = weakref.WeakSet()
"""Connections whose recorded version a reader found no newer than `SCHEMA_VERSION`. While a connection is
open no other process can write the file (DuckDB locks it), so the answer holds for the connection's life."""


@cache
def barecount_version() -> str:
    """This BareCount's package version, as recorded with each layout version it applies."""
    try:
        return metadata.version("barecount")
    except metadata.PackageNotFoundError:
        return "unknown"


def _tables_present(conn: Connection) -> frozenset[str]:
    """Bare names of the tables the evidence schema has: one catalog query, which cannot fail (a query on a
    table that is not there would abort the caller's transaction)."""
    if on_bigquery(conn):
        return frozenset(table for _, table in conn.tables([EVIDENCE_SCHEMA]))
    rows = conn.execute(  # the schema name inline: a prepared statement costs a quarter more here
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        f"AND schema_name = '{EVIDENCE_SCHEMA}'"
    ).fetchall()
    return frozenset(str(name) for (name,) in rows)


def _recorded(conn: Connection, present: frozenset[str]) -> int | None:
    """The newest layout version recorded, or None if none is."""
    if _bare(SCHEMA_VERSION_TABLE) not in present:
        return None
    row = conn.execute(f"SELECT max(version) FROM {SCHEMA_VERSION_TABLE}").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _row_count(conn: Connection, table: str) -> int:
    found = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(found[0]) if found else 0


def _describe(conn: Connection) -> str:
    """The warehouse file `conn` is on, for messages."""
    if on_bigquery(conn):
        return f"the BigQuery datasets {conn.project}.{conn.dataset('*')}"
    row = conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return f"the warehouse {row[0]}" if row and row[0] else "the warehouse"


def _refuse_if_newer(conn: Connection, version: int | None) -> None:
    """A newer layout may mean anything (a column moved, a rule of the chain changed): this BareCount must
    neither write it nor read it as its own, and the person at the terminal must learn what to do."""
    if version is None or version <= SCHEMA_VERSION:
        return
    row = conn.execute(f"SELECT barecount_version FROM {SCHEMA_VERSION_TABLE} WHERE version = ?", [version]).fetchone()
    written_by = str(row[0]) if row else "unknown"
    raise RefusedError(
        f"{_describe(conn)} has evidence schema version {version}, written by BareCount {written_by}; this "
        f"BareCount ({barecount_version()}) knows versions up to {SCHEMA_VERSION}, so it leaves the warehouse "
        f"alone. Upgrade BareCount to {written_by} or later to use this warehouse, or use another warehouse "
        f"file (set {WAREHOUSE_ENV} or the profile's warehouse path)"
    )


def _stamp(conn: Connection, version: int) -> None:
    """Record that the warehouse has layout `version` now (once: a second stamp of it changes nothing)."""
    conn.execute(SCHEMA_VERSION_DDL)
    conn.execute(
        f"INSERT INTO {SCHEMA_VERSION_TABLE} (version, barecount_version) SELECT ?, ? "
        f"WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA_VERSION_TABLE} WHERE version = ?)",
        [version, barecount_version(), version],
    )


def ensure_evidence(conn: Connection) -> None:
    """Make the evidence schema current before writing to it: create it, or migrate it, and record its version.

    Called by every writer of evidence, inside the caller's transaction where there is one (so the tables
    and the first evidence in them commit together). When the layout is current this costs two queries (the
    catalog, the version row) the first time on a connection and nothing after, except on the connection
    that made or upgraded it (see `_wrote`), which pays the two queries each time. The version is recorded
    last, so a warehouse left half-made by an interrupted first write is completed the next time.
    Refuses (`RefusedError`, exit 1) a warehouse whose layout is newer than this BareCount knows.
    """
    if conn in _current:
        return
    present = _tables_present(conn)
    recorded = _recorded(conn, present)
    if recorded == SCHEMA_VERSION:
        if conn not in _wrote:
            _current.add(conn)
        _readable.add(conn)
        return
    _refuse_if_newer(conn, recorded)
    if not on_bigquery(conn):  # BigQuery makes tables outside any transaction: what it made is committed
        _wrote.add(conn)
    if recorded is None and not (present & {_bare(t) for t in TABLES}):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {EVIDENCE_SCHEMA}")
        for statement in TABLES.values():
            conn.execute(statement)
        _stamp(conn, SCHEMA_VERSION)
        return
    version = recorded or 0
    for from_version, migrate in MIGRATIONS:
        if from_version >= version:
            migrate(conn)
            _stamp(conn, from_version + 1)


def evidence_table_exists(conn: Connection, table: str) -> bool:
    """Whether `evidence.<table>` exists yet, for readers: they may be on a read-only connection, so they
    never create anything; they refuse, as writers do, a warehouse whose layout is newer than this code's."""
    if conn in _current and table in _LAYOUT_TABLES:  # a current layout has every table: no catalog query
        return True
    present = _tables_present(conn)
    if conn not in _readable and _bare(SCHEMA_VERSION_TABLE) in present:
        _refuse_if_newer(conn, _recorded(conn, present))
        _readable.add(conn)
    return table in present
