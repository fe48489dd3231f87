"""`barecount query` reads the warehouse and nothing else: the parser refuses, and the connection holds."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import duckdb
import pytest

from barecount.cli.main import main
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.warehouse.connection import warehouse_file
from tests.cli import barecount

# (statement, the construct the refusal names); {out} is a path the statement would write or read
REFUSED = [
    ("COPY (SELECT * FROM raw.crm_customers) TO '{out}'", "COPY is not a read"),
    ("COPY raw.orders TO '{out}' (FORMAT parquet)", "COPY is not a read"),
    ("EXPORT DATABASE '{out}'", "EXPORT could not be read"),
    ("SELECT * FROM read_csv('/etc/passwd')", "the table function read_csv()"),
    ("SELECT * FROM '/etc/passwd'", '"/etc/passwd" is not a table of the warehouse'),
    ("SELECT * FROM read_parquet('data/sources/erp/orders/*.parquet')", "the table function read_parquet()"),
    ("SELECT * FROM read_text('/etc/hostname')", "the table function read_text()"),
    ("SELECT * FROM glob('/tmp/*')", "the table function glob()"),
    ("SELECT * FROM query('SELECT 42')", "the table function query()"),
    ("WITH x AS (SELECT * FROM read_csv_auto('/etc/passwd')) SELECT * FROM x", "the table function read_csv_auto()"),
    ("SELECT (SELECT count(*) FROM read_json('/etc/hostname')) AS n", "the table function read_json()"),
    ("DESCRIBE SELECT * FROM read_csv('/etc/passwd')", "the table function read_csv()"),
    ("SELECT * FROM other.raw.orders", "the database name in other.raw.orders"),
    ("ATTACH '{out}' AS other", "ATTACH is not a read"),
    ("DETACH other", "DETACH is not a read"),
    ("INSTALL httpfs", "INSTALL is not a read"),
    ("LOAD httpfs", "LOAD is not a read"),
    ("SET threads = 1", "SET is not a read"),
    ("SET VARIABLE barecount_pii_key = 'x'", "SET is not a read"),
    ("PRAGMA profiling_output = '{out}'", "PRAGMA is not a read"),
    ("SELECT getvariable('barecount_pii_key') AS key", "the function getvariable()"),
    ("SELECT current_setting('home_directory') AS home", "the function current_setting()"),
    ("CREATE TABLE raw.copied AS SELECT * FROM raw.orders", "CREATE is not a read"),
    ("DELETE FROM gdp.order_lines", "DELETE is not a read"),
    ("UPDATE raw.orders SET o_totalprice = 0", "UPDATE is not a read"),
    ("INSERT INTO raw.orders SELECT * FROM raw.orders", "INSERT is not a read"),
    ("DROP TABLE raw.orders", "DROP is not a read"),
    ("SELECT 1; DROP TABLE raw.orders", "2 statements (SELECT, DROP)"),
    ("SELECT 1 -- a comment\n; DELETE FROM raw.orders", "2 statements (SELECT, DELETE)"),
    ("SELECT 1 /* ; */; COPY raw.orders TO '{out}'", "2 statements (SELECT, COPY)"),
    ("CALL pragma_version()", "CALL is not a read"),
    ("USE raw", "USE is not a read"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("", "there is no statement"),
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_anything_but_one_read_of_the_warehouse_is_refused(
    built_project: ProjectPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every form, through the command's own entry point (in this process: 34 start-ups would cost ~25 s)."""
    warehouse = load_settings(built_project).warehouse_path
    before = _digest(warehouse)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "escaped"
    for statement, named in REFUSED:
        monkeypatch.setattr(sys, "argv", ["barecount", "query", statement.format(out=out)])
        with pytest.raises(SystemExit) as exited:
            main()
        said = capsys.readouterr()
        assert exited.value.code == 2, (statement, said.out + said.err)
        assert "refused:" in said.err and named in " ".join(said.err.split()), (statement, said.err)
        assert not out.exists() and _digest(warehouse) == before, statement
    shown = barecount("query", "COPY (SELECT * FROM raw.crm_customers) TO 'leak.csv'", cwd=tmp_path)
    assert shown.returncode == 2 and "refused: COPY is not a read" in shown.stderr
    assert not (tmp_path / "leak.csv").exists()


def test_reads_of_the_warehouse_and_its_catalog_run(built_project: ProjectPaths) -> None:
    reads = {
        "WITH o AS (SELECT * FROM raw.orders) SELECT count(*) AS n FROM o": lambda rows: rows[0]["n"] > 0,
        "FROM raw.orders SELECT count(*) AS n": lambda rows: rows[0]["n"] > 0,
        "DESCRIBE gdp.orders": lambda rows: any(r["column_name"] == "order_key" for r in rows),
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'kpi'": lambda rows: len(rows) > 0,
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'published'": lambda rows: len(rows) > 0,
        "SELECT 1 AS a UNION ALL SELECT 2": lambda rows: [r["a"] for r in rows] == [1, 2],
    }
    for statement, holds in reads.items():
        ran = barecount("query", statement, "--json")
        assert ran.returncode == 0, statement + ran.stderr
        assert holds(json.loads(ran.stdout)), statement


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 1) TO '{out}'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "ATTACH '{out}' AS other",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "PRAGMA profiling_output = '{out}'",
    ],
)
def test_the_sealed_connection_holds_without_the_parser(
    built_project: ProjectPaths, tmp_path: Path, statement: str
) -> None:
    """The second lock: what the parser would refuse, the connection refuses on its own."""
    out = tmp_path / "escaped"
    sealed = warehouse_file(load_settings(built_project), sealed=True)
    with (
        sealed.get_connection(read_only=True) as conn,
        pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)),
    ):
        conn.execute(statement.format(out=out))
    assert not out.exists()
