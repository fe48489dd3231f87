"""Commands on the emulator profile: the project's emulator is started on first use, keeps its tables in the
project's data folder, and is stopped when the command ends."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from barecount.config.project import ProjectPaths
from barecount.warehouse.bigquery_emulator import EMULATOR_PYTHON_ENV, emulator_python
from tests.cli import barecount
from tests.conftest import REPO


def test_commands_on_the_emulator_profile_read_its_warehouse_refuse_writes_and_leave_no_emulator_running(
    project_copy: ProjectPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EMULATOR_PYTHON_ENV, str(emulator_python(REPO.root)))
    verified = barecount("ledger", "verify", "--profile", "bigquery-emulator")
    assert verified.returncode == 0, verified.stderr
    assert "ledger intact: 0 entries" in verified.stdout
    shown = barecount("ledger", "show", "--profile", "bigquery-emulator", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout) == [], shown.stderr
    queried = barecount("query", "--profile", "bigquery-emulator", "--json", "select 1.5 * 2 as x, 'a' as y")
    assert queried.returncode == 0, queried.stderr
    (row,) = json.loads(queried.stdout)
    assert (Decimal(row["x"]), row["y"]) == (Decimal(3), "a"), "1.5 is exact, as in DuckDB"
    emulator_dir = project_copy.root / "data" / "bqemulator"
    assert (emulator_dir / "bqemulator.duckdb").is_file(), "the emulator keeps its tables in the project"
    assert not (emulator_dir / "endpoint").exists(), "the emulator a command started stops with it"
    refused = barecount("query", "--profile", "bigquery-emulator", "delete from evidence.ledger where true")
    assert refused.returncode == 2 and "DELETE is not a read" in refused.stderr, refused.stderr
    missing = barecount("query", "--profile", "bigquery-emulator", "select * from gdp.no_such_table")
    assert missing.returncode == 2 and "not a table of the warehouse" in missing.stderr, missing.stderr
    failed = barecount("query", "--profile", "bigquery-emulator", "select no_such_column")
    assert failed.returncode == 2 and "query failed" in failed.stderr, failed.stderr
    replay = barecount("quarantine", "replay", "orders", "--profile", "bigquery-emulator")
    assert replay.returncode == 2 and "works on a DuckDB warehouse only" in replay.stderr, replay.stderr
