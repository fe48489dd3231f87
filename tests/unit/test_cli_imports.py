"""`barecount --help` and the commands that need no Dagster run start without importing Dagster.

Each case runs the command as the console script does (`barecount.cli.main.main`) in a fresh interpreter
and reports which modules it imported: help must not load Dagster, DuckDB or a dataframe library, and
reading the project or the warehouse must not load Dagster. What is checked is what gets imported, never
how long it takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from barecount.cli.console import quiet_dagster_notices
from barecount.config.project import ProjectPaths

DAGSTER = ("dagster", "dagster_shared", "dagster_duckdb", "dagster_webserver")
"""Dagster and its packages: none of them is needed outside a run."""
HEAVY = (*DAGSTER, "duckdb", "pandera", "ibis", "pandas", "polars", "pyarrow", "numpy", "sqlglot")
"""What help has no use for."""

RUN = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["barecount", *args]
code = None
try:
    from barecount.cli.main import main
    if args:
        main()
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted({name.partition(".")[0] for name in sys.modules})}, f)
"""


def imported_by(tmp_path: Path, repo: ProjectPaths, *args: str) -> tuple[int, set[str]]:
    """Run `barecount ARGS` (no args: only import the CLI) in a new interpreter: its exit code and the
    top-level packages it imported."""
    report = tmp_path / "report.json"
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(report), *args],
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard only
    )
    assert report.is_file(), done.stdout + done.stderr
    found = json.loads(report.read_text())
    return found["code"] or 0, set(found["modules"])


@pytest.fixture
def empty_warehouse(warehouse_file: Path) -> Path:
    """A warehouse file with nothing built yet (BARECOUNT_WAREHOUSE points at it)."""
    duckdb.connect(str(warehouse_file)).close()
    return warehouse_file


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--help",),
        ("run", "--help"),
        ("backfill", "--help"),
        ("demo", "--help"),
        ("bench", "--help"),
        ("check", "--help"),
        ("query", "--help"),
        ("ui", "--help"),
        ("calendar", "--help"),
        ("calendar", "which", "--help"),
        ("contracts", "--help"),
        ("contracts", "approve", "--help"),
        ("quarantine", "replay", "--help"),
        ("ledger", "trace", "--help"),
        ("kpi", "test", "--help"),
    ],
    ids=lambda args: " ".join(args) or "import",
)
def test_help_imports_neither_dagster_nor_duckdb(
    tmp_path: Path, repo_paths: ProjectPaths, args: tuple[str, ...]
) -> None:
    code, modules = imported_by(tmp_path, repo_paths, *args)
    assert code == 0
    assert not modules & set(HEAVY), f"barecount {' '.join(args)} imported {sorted(modules & set(HEAVY))}"


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (("calendar", "which", "1995-03-01"), 0),
        (("calendar", "periods", "--year", "1995", "--json"), 0),
        (("contracts", "list"), 0),
        (("contracts", "show", "erp.orders", "--json"), 0),
        (("contracts", "diff", "erp.orders"), 2),  # one version: nothing to compare
        (("contracts", "blocked"), 0),
        (("query", "SELECT 42 AS n", "--json"), 0),
        (("ledger", "show"), 0),
        (("ledger", "head"), 2),  # the ledger is empty
        (("ledger", "verify"), 0),
        (("ledger", "trace", "kpi/net_revenue", "FY1995-P01"), 2),  # nothing built
        (("quarantine", "list"), 0),
        (("kpi", "test"), 0),
        (("kpi", "show", "net_revenue"), 2),  # not built yet
    ],
    ids=lambda case: " ".join(case) if isinstance(case, tuple) else str(case),
)
def test_commands_that_need_no_run_do_not_import_dagster(
    tmp_path: Path, repo_paths: ProjectPaths, empty_warehouse: Path, args: tuple[str, ...], exit_code: int
) -> None:
    code, modules = imported_by(tmp_path, repo_paths, *args)
    assert code == exit_code
    assert not modules & set(DAGSTER), f"barecount {' '.join(args)} imported {sorted(modules & set(DAGSTER))}"


def test_schema_does_not_import_dagster(tmp_path: Path, repo_paths: ProjectPaths) -> None:
    code, modules = imported_by(tmp_path, repo_paths, "schema", "--out", str(tmp_path / "schemas"))
    assert code == 0 and len(list((tmp_path / "schemas").glob("*.schema.json"))) > 1
    assert not modules & set(DAGSTER), sorted(modules & set(DAGSTER))


def test_a_run_still_imports_dagster(tmp_path: Path, repo_paths: ProjectPaths, empty_warehouse: Path) -> None:
    """The other side of the cases above: what they report would catch a Dagster import."""
    code, modules = imported_by(tmp_path, repo_paths, "check")
    assert code == 0 and "dagster" in modules


def test_dagster_notices_are_ignored_without_importing_dagster_first() -> None:
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        quiet_dagster_notices()
        warnings.warn("a beta notice", dg.BetaWarning, stacklevel=1)
        warnings.warn("a preview notice", dg.PreviewWarning, stacklevel=1)
        warnings.warn("anything else", UserWarning, stacklevel=1)
        warnings.warn("a deprecation", dg.SupersessionWarning, stacklevel=1)
    assert [str(w.message) for w in shown] == ["anything else", "a deprecation"]
