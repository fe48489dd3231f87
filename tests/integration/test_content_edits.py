"""An edit made directly in the warehouse file is found: `ledger verify --data` names each edited partition
(table, period, the rows and content hash on record and found), and the next `run` rebuilds it with a `repair`
ledger entry instead of calling it unchanged."""

from __future__ import annotations

import json
import sys

import duckdb
import pytest

from barecount.cli.main import main
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.evidence import ledger
from tests.cli import barecount
from tests.conftest import BUILT_PERIODS

# an UPDATE, a DELETE and an INSERT of one row in a table of each layer, each kind in a period of its own
TABLES = {
    "raw.orders": "o_totalprice",
    "gdp.order_lines": "extended_price",
    "kpi.net_revenue": "value",
    "published.net_revenue": "value",
}
ONE_ROW = "rowid = (SELECT min(rowid) FROM {table} WHERE fiscal_period = '{period}')"
EDITS = {
    "FY1995-P01": "UPDATE {table} SET {column} = {column} + 1 WHERE " + ONE_ROW,
    "FY1995-P02": "DELETE FROM {table} WHERE " + ONE_ROW,
    "FY1995-P03": "INSERT INTO {table} SELECT * FROM {table} WHERE " + ONE_ROW,
}
ROWS_CHANGED = {"FY1995-P01": 0, "FY1995-P02": -1, "FY1995-P03": 1}
INTACT_INPUTS = ("gdp.order_lines", "FY1995-P04")
"""An edit whose inputs are intact: the run would call the partition unchanged, but for its content."""
UNSTAMPED = "x_run_id, x_ingested_at, x_ingestion_date"
"""Lineage a rebuild stamps anew (the rows are the same)."""


def _verify_data(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    """`barecount ledger verify --data --json …` through its entry point, in this process."""
    monkeypatch.setattr(sys, "argv", ["barecount", "ledger", "verify", "--data", "--json", *args])
    code = 0
    try:
        main()
    except SystemExit as exited:
        code = int(exited.code or 0)
    said = capsys.readouterr()
    return code, json.loads(said.out) if said.out.strip() else {"error": said.err}


def _contents(warehouse: str) -> dict[str, list[tuple[object, ...]]]:
    with duckdb.connect(warehouse, read_only=True) as conn:
        return {
            table: conn.execute(
                f"SELECT * EXCLUDE ({UNSTAMPED}{', published_at' if table.startswith('published') else ''}) "
                f"FROM {table} WHERE fiscal_period IN {BUILT_PERIODS} ORDER BY ALL"
            ).fetchall()
            for table in TABLES
        }


def test_edits_in_every_layer_are_found_and_the_next_run_repairs_them(
    built_project: ProjectPaths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = str(load_settings(built_project).warehouse_path)
    code, clean = _verify_data(monkeypatch, capsys)
    assert code == 0 and clean["edited"] == [] and clean["partitions_checked"] > 40, clean
    before = _contents(warehouse)
    edited = {(table, period) for table in TABLES for period in EDITS} | {INTACT_INPUTS}
    with duckdb.connect(warehouse) as conn:
        for table, period in sorted(edited):
            edit = EDITS.get(period, EDITS["FY1995-P01"])
            conn.execute(edit.format(table=table, column=TABLES[table], period=period))

    code, found = _verify_data(monkeypatch, capsys)
    assert code == 1, found
    assert {(e["table"], e["period"]) for e in found["edited"]} == edited
    for e in found["edited"]:
        assert e["expected"]["content_hash"] != e["found"]["content_hash"]
        assert e["found"]["rows"] - e["expected"]["rows"] == ROWS_CHANGED.get(e["period"], 0), e
    code, one = _verify_data(monkeypatch, capsys, "--table", "kpi.net_revenue", "--period", "FY1995-P03")
    assert code == 1 and [(e["table"], e["period"]) for e in one["edited"]] == [("kpi.net_revenue", "FY1995-P03")]
    code, other = _verify_data(monkeypatch, capsys, "--table", "kpi/net_revenue", "--period", "FY1995-P04")
    assert code == 0 and other["partitions_checked"] == 1

    ran = barecount("run", "--from", BUILT_PERIODS[0], "--to", BUILT_PERIODS[1])
    assert ran.returncode == 0, ran.stdout + ran.stderr

    code, after = _verify_data(monkeypatch, capsys)
    assert code == 0 and after["edited"] == [], after
    assert _contents(warehouse) == before
    with duckdb.connect(warehouse, read_only=True) as conn:
        repairs = [e for e in ledger.read_entries(conn) if e.kind == "repair"]
    # the raw partitions, and the one whose inputs were intact: what is built from a repaired raw period is rebuilt
    # because its input changed
    assert {(e.asset.replace("/", ".", 1), e.partition) for e in repairs} == {
        ("raw.orders", period) for period in EDITS
    } | {INTACT_INPUTS}
    assert all("changed outside barecount" in e.facts["reason"] for e in repairs)
