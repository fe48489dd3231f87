"""The evidence schema on real DuckDB files: made once with its version, older warehouses upgraded in place
keeping their rows, newer ones refused by writers and readers alike."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from barecount.config.project import WAREHOUSE_ENV
from barecount.errors import RefusedError
from barecount.evidence import ledger, schema
from barecount.evidence.schema import (
    LEDGER_TABLE,
    SCHEMA_VERSION,
    SCHEMA_VERSION_TABLE,
    TABLES,
    ensure_evidence,
    evidence_table_exists,
)

# What BareCount created before the schema had a version: each module's own statement, copied literally
# from `git show main:<module>` (barecount/ledger/ledger.py, barecount/ledger/holds.py,
# barecount/registry/approval.py, barecount/registry/fingerprints.py, barecount/run_tokens.py).
OLD_DDL = {
    "evidence.ledger": (
        "CREATE TABLE IF NOT EXISTS evidence.ledger (seq BIGINT NOT NULL, kind VARCHAR NOT NULL, "
        "asset VARCHAR NOT NULL, partition VARCHAR, run_id VARCHAR NOT NULL, recorded_at VARCHAR NOT NULL, "
        "facts VARCHAR NOT NULL, prev_hash VARCHAR NOT NULL, entry_hash VARCHAR NOT NULL)"
    ),
    "evidence.blocked_partitions": (
        "CREATE TABLE IF NOT EXISTS evidence.blocked_partitions (contract VARCHAR NOT NULL, "
        "contract_version VARCHAR NOT NULL, asset VARCHAR NOT NULL, fiscal_period VARCHAR, diff VARCHAR NOT NULL, "
        "proposal VARCHAR NOT NULL, run_id VARCHAR NOT NULL, blocked_at TIMESTAMP NOT NULL DEFAULT now(), "
        "resolved_run_id VARCHAR, resolved_at TIMESTAMP)"
    ),
    "evidence.gate_results": (
        "CREATE TABLE IF NOT EXISTS evidence.gate_results (gate VARCHAR NOT NULL, asset VARCHAR NOT NULL, "
        "partition VARCHAR, run_id VARCHAR NOT NULL, passed BOOLEAN NOT NULL, detail VARCHAR NOT NULL, "
        "checked_at TIMESTAMP NOT NULL DEFAULT now())"
    ),
    "evidence.contract_approvals": (
        "CREATE TABLE IF NOT EXISTS evidence.contract_approvals (contract VARCHAR NOT NULL, "
        "version VARCHAR NOT NULL, outcome VARCHAR NOT NULL, decided_by VARCHAR NOT NULL, note VARCHAR NOT NULL, "
        "effective_from VARCHAR NOT NULL, replaced_version VARCHAR, decided_at TIMESTAMP NOT NULL)"
    ),
    "evidence.contract_versions": (
        "CREATE TABLE IF NOT EXISTS evidence.contract_versions (contract VARCHAR NOT NULL, "
        "version VARCHAR NOT NULL, content_hash VARCHAR NOT NULL, first_run_id VARCHAR NOT NULL, "
        "first_used_at TIMESTAMP NOT NULL DEFAULT now())"
    ),
    "evidence.run_tokens": (
        "CREATE TABLE IF NOT EXISTS evidence.run_tokens (token VARCHAR NOT NULL, "
        "fiscal_period VARCHAR NOT NULL, run_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT now())"
    ),
}
OLD_ROWS = {
    "evidence.ledger": "INSERT INTO evidence.ledger VALUES (1, 'materialization', 'raw/orders', 'FY1995-P01', "
    "'run-1', '2026-01-01T00:00:00', '{}', repeat('0', 64), repeat('a', 64))",
    "evidence.blocked_partitions": "INSERT INTO evidence.blocked_partitions (contract, contract_version, asset, "
    "fiscal_period, diff, proposal, run_id) VALUES ('orders', '1.0.0', 'raw/orders', 'FY1995-P02', '[]', "
    "'contracts/orders.v2.yaml', 'run-1')",
    "evidence.gate_results": "INSERT INTO evidence.gate_results (gate, asset, partition, run_id, passed, detail) "
    "VALUES ('rows_accounted', 'raw/orders', 'FY1995-P01', 'run-1', true, 'ok')",
    "evidence.contract_approvals": "INSERT INTO evidence.contract_approvals VALUES ('orders', '2.0.0', 'approved', "
    "'ann', '', 'FY1995-P02', '1.0.0', TIMESTAMP '2026-01-02 00:00:00')",
    "evidence.contract_versions": "INSERT INTO evidence.contract_versions (contract, version, content_hash, "
    "first_run_id) VALUES ('orders', '1.0.0', 'abc', 'run-1')",
    "evidence.run_tokens": "INSERT INTO evidence.run_tokens (token, fiscal_period, run_id) "
    "VALUES ('t', 'FY1995-P01', 'run-1')",
}


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def conn(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(warehouse)) as connection:
        yield connection


def _old_warehouse(path: Path, tables: tuple[str, ...] = tuple(OLD_DDL), rows: bool = True) -> None:
    """A warehouse as an older BareCount left it: the tables it had used, with a row each."""
    with duckdb.connect(str(path)) as old:
        old.execute("CREATE SCHEMA IF NOT EXISTS evidence")
        for table in tables:
            old.execute(OLD_DDL[table])
            if rows:
                old.execute(OLD_ROWS[table])


def _stamp(path: Path, version: int, by: str) -> None:
    with duckdb.connect(str(path)) as other:
        other.execute("CREATE SCHEMA IF NOT EXISTS evidence")
        other.execute(schema.SCHEMA_VERSION_DDL)
        other.execute(f"INSERT INTO {SCHEMA_VERSION_TABLE} (version, barecount_version) VALUES (?, ?)", [version, by])


UPGRADED = [(1, schema.barecount_version()), (2, schema.barecount_version())]
"""The versions an unversioned warehouse is taken through: adopted as 1, then 2 (alerts)."""


def _versions(conn: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    rows = conn.execute(f"SELECT version, barecount_version FROM {SCHEMA_VERSION_TABLE} ORDER BY version")
    return [(int(v), str(b)) for v, b in rows.fetchall()]


def _layout(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str, bool, str | None]]]:
    rows = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM duckdb_columns() "
        "WHERE schema_name = 'evidence' AND table_name <> 'schema_version' ORDER BY table_name, column_index"
    ).fetchall()
    found: dict[str, list[tuple[str, str, bool, str | None]]] = {}
    for table, *column in rows:
        found.setdefault(f"evidence.{table}", []).append(tuple(column))  # type: ignore[arg-type]
    return found


def _old_layout(tmp_path: Path) -> dict[str, list[tuple[str, str, bool, str | None]]]:
    path = tmp_path / "old-layout.duckdb"
    _old_warehouse(path, rows=False)
    with duckdb.connect(str(path), read_only=True) as old:
        return _layout(old)


def test_a_fresh_warehouse_gets_every_table_and_the_current_version(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    ensure_evidence(conn)
    assert _versions(conn) == [(SCHEMA_VERSION, schema.barecount_version())]
    applied = conn.execute(f"SELECT applied_at FROM {SCHEMA_VERSION_TABLE}").fetchone()
    assert applied is not None and applied[0] is not None
    assert SCHEMA_VERSION == 2
    assert set(_layout(conn)) == set(TABLES) == {*OLD_DDL, schema.ALERTS_TABLE}
    old = _old_layout(tmp_path)  # version 1 is the layout BareCount had before versions; 2 adds alerts
    assert {t: c for t, c in _layout(conn).items() if t in old} == old
    assert all(evidence_table_exists(conn, t.removeprefix("evidence.")) for t in [*TABLES, SCHEMA_VERSION_TABLE])


def test_ensure_evidence_twice_changes_nothing(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as first:
        ensure_evidence(first)
        ensure_evidence(first)
        made = _layout(first)
    with duckdb.connect(str(warehouse)) as again:
        ensure_evidence(again)
        ensure_evidence(again)
        assert _versions(again) == [(SCHEMA_VERSION, schema.barecount_version())]
        assert _layout(again) == made
    # a current warehouse is not written to at all: it works on a read-only connection
    with duckdb.connect(str(warehouse), read_only=True) as reader:
        ensure_evidence(reader)


def test_a_warehouse_of_an_older_barecount_is_upgraded_and_keeps_its_rows(warehouse: Path, tmp_path: Path) -> None:
    _old_warehouse(warehouse)
    with duckdb.connect(str(warehouse)) as before:
        kept = {table: before.execute(f"SELECT * FROM {table}").fetchall() for table in OLD_DDL}
    with duckdb.connect(str(warehouse)) as conn:
        ensure_evidence(conn)
        assert _versions(conn) == UPGRADED
        assert {table: conn.execute(f"SELECT * FROM {table}").fetchall() for table in OLD_DDL} == kept
        upgraded = _layout(conn)
        assert upgraded.pop(schema.ALERTS_TABLE) and upgraded == _old_layout(tmp_path)
        assert conn.execute(f"SELECT count(*) FROM {schema.ALERTS_TABLE}").fetchone() == (0,)
        assert [e.seq for e in ledger.read_entries(conn)] == [1]


def test_an_older_warehouse_gets_the_tables_it_never_used(warehouse: Path) -> None:
    _old_warehouse(warehouse, ("evidence.ledger", "evidence.run_tokens"))
    with duckdb.connect(str(warehouse)) as conn:
        ensure_evidence(conn)
        assert set(_layout(conn)) == set(TABLES)
        assert conn.execute("SELECT count(*) FROM evidence.ledger").fetchone() == (1,)
        assert _versions(conn) == UPGRADED


def test_a_missing_column_is_added_where_no_row_must_invent_a_value(warehouse: Path) -> None:
    _old_warehouse(warehouse, ("evidence.blocked_partitions",))
    _old_warehouse(warehouse, ("evidence.gate_results",), rows=False)
    with duckdb.connect(str(warehouse)) as old:
        old.execute("ALTER TABLE evidence.blocked_partitions DROP COLUMN resolved_at")  # nullable: NULL is honest
        old.execute("ALTER TABLE evidence.gate_results DROP COLUMN checked_at")  # NOT NULL, but no rows
    with duckdb.connect(str(warehouse)) as conn:
        ensure_evidence(conn)
        assert conn.execute("SELECT asset, resolved_at FROM evidence.blocked_partitions").fetchall() == [
            ("raw/orders", None)
        ]
        conn.execute(OLD_ROWS["evidence.gate_results"])  # the default and NOT NULL came back with the column
        columns = {c[0]: c for c in _layout(conn)["evidence.gate_results"]}
        assert columns["checked_at"] == ("checked_at", "TIMESTAMP", False, "now()")
        assert _versions(conn) == UPGRADED


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("ALTER TABLE evidence.ledger DROP COLUMN run_id", "evidence.ledger has 1 rows but no column run_id"),
        ("ALTER TABLE evidence.ledger ALTER COLUMN seq TYPE VARCHAR", "evidence.ledger.seq is VARCHAR, not BIGINT"),
        ("ALTER TABLE evidence.ledger ADD COLUMN note VARCHAR", "evidence.ledger has a column note"),
    ],
)
def test_an_older_warehouse_that_cannot_be_vouched_for_is_refused_unchanged(
    warehouse: Path, change: str, named: str
) -> None:
    _old_warehouse(warehouse, ("evidence.ledger",))
    with duckdb.connect(str(warehouse)) as old:
        old.execute(change)
    with duckdb.connect(str(warehouse)) as conn:
        before = _layout(conn)
        with pytest.raises(RefusedError, match=named) as refused:
            ensure_evidence(conn)
        assert "another warehouse file" in str(refused.value)
        assert _layout(conn) == before
        assert not evidence_table_exists(conn, "schema_version")


def test_a_warehouse_of_a_newer_layout_is_refused_by_writers_and_readers(warehouse: Path) -> None:
    _old_warehouse(warehouse, ("evidence.ledger",))
    _stamp(warehouse, 99, "9.9.0")
    message = (
        rf"{warehouse} has evidence schema version 99, written by BareCount 9\.9\.0; this BareCount "
        rf"\(.+\) knows versions up to {SCHEMA_VERSION}.*Upgrade BareCount to 9\.9\.0 or later to use this "
        rf"warehouse, or use another warehouse file \(set {WAREHOUSE_ENV} "
    )
    with duckdb.connect(str(warehouse)) as writer:
        with pytest.raises(RefusedError, match=message):
            ensure_evidence(writer)
        with pytest.raises(RefusedError, match=message):
            ledger.append(writer, [ledger.NewEntry("materialization", "raw/orders", None, "run-2", {})])
        assert set(_layout(writer)) == {LEDGER_TABLE}  # nothing created
        assert writer.execute("SELECT count(*) FROM evidence.ledger").fetchone() == (1,)
    with duckdb.connect(str(warehouse), read_only=True) as reader:
        with pytest.raises(RefusedError, match=message):
            evidence_table_exists(reader, "ledger")
        with pytest.raises(RefusedError, match=message):
            ledger.read_entries(reader)
    assert RefusedError.exit_code == 1


def test_the_cli_refuses_a_newer_warehouse_with_exit_1(warehouse: Path) -> None:
    _old_warehouse(warehouse, ("evidence.ledger",))
    _stamp(warehouse, 99, "9.9.0")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("barecount")), "ledger", "head"],
        env={**os.environ, WAREHOUSE_ENV: str(warehouse)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Upgrade BareCount to 9.9.0 or later" in " ".join(done.stderr.split())


def test_a_current_warehouse_costs_a_writer_nothing_after_its_first_look(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as conn:
        ensure_evidence(conn)
    with duckdb.connect(str(warehouse)) as conn:
        ensure_evidence(conn)
        assert conn in schema._current
        conn.execute(f"DROP TABLE {SCHEMA_VERSION_TABLE}")  # not looked at again on this connection
        ensure_evidence(conn)
        assert not evidence_table_exists(conn, "schema_version")


def test_the_first_write_makes_the_evidence_in_its_own_transaction(conn: duckdb.DuckDBPyConnection) -> None:
    """Writers call ensure_evidence inside their transaction: looking for the tables must not abort it."""
    conn.execute("BEGIN TRANSACTION")
    ledger.append(conn, [ledger.NewEntry("materialization", "raw/orders", None, "run-1", {})])
    conn.execute("COMMIT")
    assert [e.seq for e in ledger.read_entries(conn)] == [1]
    assert _versions(conn) == [(SCHEMA_VERSION, schema.barecount_version())]


def test_tables_made_in_a_transaction_that_rolled_back_are_made_again(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("BEGIN TRANSACTION")
    ensure_evidence(conn)
    ensure_evidence(conn)
    conn.execute("ROLLBACK")
    assert not evidence_table_exists(conn, "ledger")
    ledger.append(conn, [ledger.NewEntry("materialization", "raw/orders", None, "run-1", {})])
    assert [e.seq for e in ledger.read_entries(conn)] == [1]
    assert _versions(conn) == [(SCHEMA_VERSION, schema.barecount_version())]


def test_migrations_chain_from_0_to_the_current_version() -> None:
    assert [v for v, _ in schema.MIGRATIONS] == list(range(SCHEMA_VERSION))


def test_the_next_layout_is_one_migration_away(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the change that makes version 3 will do: the new statement, the version, one entry."""

    def add_reviewer(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("ALTER TABLE evidence.contract_approvals ADD COLUMN reviewed_by VARCHAR")

    with duckdb.connect(str(warehouse)) as conn:
        ensure_evidence(conn)
        conn.execute(OLD_ROWS["evidence.contract_approvals"])
    tables = dict(TABLES)
    tables["evidence.contract_approvals"] = TABLES["evidence.contract_approvals"][:-1] + ", reviewed_by VARCHAR)"
    monkeypatch.setattr(schema, "TABLES", tables)
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, (2, add_reviewer)])
    with duckdb.connect(str(warehouse)) as conn:
        ensure_evidence(conn)
        assert [v for v, _ in _versions(conn)] == [2, 3]
        assert conn.execute("SELECT contract, reviewed_by FROM evidence.contract_approvals").fetchall() == [
            ("orders", None)
        ]
    with duckdb.connect(str(warehouse.with_name("fresh.duckdb"))) as fresh:
        ensure_evidence(fresh)
        assert [v for v, _ in _versions(fresh)] == [3]
        assert "reviewed_by" in [c[0] for c in _layout(fresh)["evidence.contract_approvals"]]


def test_a_version_1_warehouse_is_read_as_it_is_and_upgraded_by_the_first_write(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers (plan, status, trace) may hold a read-only connection: they read version 1 without the alerts
    table; the next writer adds it."""
    from barecount.evidence.status import warehouse_status

    with monkeypatch.context() as older:  # the BareCount of layout version 1
        older.setattr(schema, "SCHEMA_VERSION", 1)
        older.setattr(schema, "TABLES", schema.VERSION_1_TABLES)
        older.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        with duckdb.connect(str(warehouse)) as conn:
            ledger.append(conn, [ledger.NewEntry("materialization", "raw/orders", "FY1995-P01", "run-1", {})])
    with duckdb.connect(str(warehouse), read_only=True) as reader:
        assert list(ledger.latest_facts(reader, ["raw/orders"])) == [("raw/orders", "FY1995-P01")]
        (orders,) = warehouse_status(reader, ["raw/orders"], ["orders"]).assets
        assert (orders.last_period, orders.last_run) == ("FY1995-P01", "run-1")
        assert not evidence_table_exists(reader, "alerts")
    with duckdb.connect(str(warehouse)) as writer:
        ledger.append(writer, [ledger.NewEntry("materialization", "raw/orders", "FY1995-P02", "run-2", {})])
        assert [v for v, _ in _versions(writer)] == [1, 2] and evidence_table_exists(writer, "alerts")
        assert ledger.verify(ledger.read_entries(writer)) is None
