"""Readable output on the session's built project: query formats, the quarantine summary, who and why in the
ledger, and a KPI's values with their verdicts and publication."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import duckdb
import pytest

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.evidence import holds, ledger
from barecount.evidence.backfills import BackfillRecord, record_backfill
from tests.cli import barecount

HELD = "FY1995-P03"
FAILED = f"21,741,084.20 is 90.0% below {HELD} last year (allowed 50%)"


def _warehouse(paths: ProjectPaths) -> Path:
    return load_settings(paths).warehouse_path


def _rows(printed: str) -> list[list[str]]:
    """The header and rows of the rich table printed, each a list of cells (a cell wrapped over lines joined)."""
    rows: list[list[str]] = []
    for line in printed.splitlines():
        if line.startswith(("│", "┃")):
            cells = [c.strip() for c in re.split("[│┃]", line)[1:-1]]
            if rows and not cells[0]:  # the next line of a row whose cells wrap
                cells = [f"{before} {more}".strip() for before, more in zip(rows.pop(), cells, strict=True)]
            rows.append(cells)
    return rows


def test_query_formats_numbers_in_tables_and_keeps_them_exact_in_csv_and_json(built_project: ProjectPaths) -> None:
    sql = (
        "SELECT fiscal_period, value, 1234567::BIGINT AS orders, 0.04981::DOUBLE AS share, NULL AS nothing "
        "FROM kpi.net_revenue WHERE fiscal_period = 'FY1995-P01'"
    )
    table = barecount("query", sql)
    assert table.returncode == 0, table.stderr
    assert _rows(table.stdout)[1:] == [["FY1995-P01", "24,129,928.08", "1,234,567", "0.0498", "NULL"]]
    (row,) = [line for line in table.stdout.splitlines() if "FY1995-P01" in line]
    assert "│ 24,129,928.08 │" in row and row.index("1,234,567") > row.index("24,129,928.08")
    header = next(line for line in table.stdout.splitlines() if "fiscal_period" in line)
    # numbers are right-aligned under their header: each ends where its column ends
    assert header.index("orders") + len("orders") == row.index("1,234,567") + len("1,234,567")

    exact = barecount("query", sql, "--format", "csv")
    assert list(csv.reader(io.StringIO(exact.stdout))) == [
        ["fiscal_period", "value", "orders", "share", "nothing"],
        ["FY1995-P01", "24129928.0813", "1234567", "0.04981", ""],
    ]
    assert json.loads(barecount("query", sql, "--format", "json").stdout) == [
        {"fiscal_period": "FY1995-P01", "value": "24129928.0813", "orders": 1234567, "share": 0.04981, "nothing": None}
    ]
    lines = barecount("query", sql, "--format", "line").stdout.splitlines()
    assert "value:         24,129,928.08" in lines and "nothing:       NULL" in lines
    conflict = barecount("query", sql, "--json", "--format", "csv")
    assert conflict.returncode == 2 and "--json asks for JSON and --format for csv" in conflict.stderr


def test_a_table_wider_than_the_terminal_is_shown_one_column_per_line(built_project: ProjectPaths) -> None:
    shown = barecount("query", "SELECT * FROM raw.orders ORDER BY o_orderkey LIMIT 2")
    assert shown.returncode == 0, shown.stderr
    said = shown.stdout.splitlines()
    assert said[0].startswith("Too wide for the terminal (") and "> 200 characters): one column per line." in said[0]
    first, second = (i for i, line in enumerate(said) if line.startswith("row "))
    columns = [line.split(":")[0] for line in said[first + 1 : second]]
    assert first == 1 and columns == [line.split(":")[0] for line in said[second + 1 : -1]]
    assert "o_comment" in columns and "x_run_id" in columns and said[-1] == "2 row(s)"
    assert not any("┃" in line for line in said)


def _quarantine(paths: ProjectPaths, stream: str, counts: dict[tuple[str | None, str], int]) -> None:
    """Copy real rows of raw.<stream> to its quarantine as rows that broke a rule: how many by (period, rule)."""
    with duckdb.connect(str(_warehouse(paths))) as conn:
        for (period, rule), rows in counts.items():
            conn.execute(
                f"INSERT INTO quarantine.{stream} BY NAME SELECT *, ? AS quarantine_rule, 'broke it' AS "
                f"quarantine_reason, [?] AS quarantine_rules FROM raw.{stream} "
                f"{'WHERE fiscal_period = ?' if period else ''} LIMIT ?",
                [rule, rule, *([period] if period else []), rows],
            )


def test_quarantine_list_summarises_by_rule_with_periods_as_ranges(built_project: ProjectPaths) -> None:
    counts = {
        ("FY1995-P01", "valid_values__o_orderstatus"): 3,
        ("FY1995-P02", "valid_values__o_orderstatus"): 2,
        ("FY1995-P04", "valid_values__o_orderstatus"): 1,
        ("FY1995-P02", "not_null__o_custkey"): 5,
    }
    _quarantine(built_project, "orders", counts)
    _quarantine(built_project, "crm_customers", {(None, "type__customer_id"): 1})
    summary = barecount("quarantine", "list")
    assert summary.returncode == 0, summary.stderr
    assert _rows(summary.stdout) == [
        ["stream", "rule", "periods", "rows"],
        ["crm_customers", "type__customer_id", "snapshot", "1"],
        ["orders", "not_null__o_custkey", "FY1995-P02", "5"],
        ["orders", "valid_values__o_orderstatus", "FY1995-P01..FY1995-P02 (2 periods), FY1995-P04", "6"],
        ["total", "3 rule(s)", "FY1995-P01..FY1995-P02 (2 periods), FY1995-P04", "12"],
    ]
    by_period = barecount("quarantine", "list", "--rows", "--stream", "orders")
    assert _rows(by_period.stdout) == [
        ["stream", "period", "rule", "rows"],
        ["orders", "FY1995-P01", "valid_values__o_orderstatus", "3"],
        ["orders", "FY1995-P02", "not_null__o_custkey", "5"],
        ["orders", "FY1995-P02", "valid_values__o_orderstatus", "2"],
        ["orders", "FY1995-P04", "valid_values__o_orderstatus", "1"],
        ["total", "3 period(s)", "", "11"],
    ]
    listed = json.loads(barecount("quarantine", "list", "--period", "FY1995-P02", "--json").stdout)
    assert listed == [
        {"stream": "orders", "period": "FY1995-P02", "rule": "not_null__o_custkey", "rows": 5},
        {"stream": "orders", "period": "FY1995-P02", "rule": "valid_values__o_orderstatus", "rows": 2},
    ]


@pytest.fixture
def held_period(built_project: ProjectPaths) -> ProjectPaths:
    """The built project after net_revenue's HELD period failed its thresholds and was held back from published,
    and after a backfill someone asked for: on the record as the pipeline itself records them."""
    with duckdb.connect(str(_warehouse(built_project))) as conn:
        holds.record_gate_results(conn, "thresholds", "kpi/net_revenue", "run-b", [(HELD, False, FAILED)])
        why = f"kpi/net_revenue {HELD} failed its thresholds: {FAILED}"
        ledger.append(conn, [ledger.NewEntry("hold", "published/net_revenue", HELD, "run-b", {"reason": why})])
        backfill = BackfillRecord("bf-1", "alice", "late ERP extract", "FY1995-P01", "FY1995-P02", 2, (), "cli")
        record_backfill(conn, backfill, "requested")
    return built_project


def test_ledger_show_says_when_who_and_why(held_period: ProjectPaths) -> None:
    shown = barecount("ledger", "show", "--limit", "3")
    assert shown.returncode == 0, shown.stderr
    header, *rows = _rows(shown.stdout)
    assert header == ["seq", "when (UTC)", "kind", "asset", "partition", "who", "why", "rows", "version", "hash"]
    (check, hold, backfill) = (dict(zip(header, row, strict=True)) for row in rows)
    assert (check["kind"], check["asset"], check["why"]) == ("check ✗ thresholds", "kpi/net_revenue", FAILED)
    assert (hold["kind"], hold["why"]) == ("hold", f"kpi/net_revenue {HELD} failed its thresholds: {FAILED}")
    assert (backfill["kind"], backfill["who"], backfill["why"]) == ("backfill", "alice", "late ERP extract")
    # the time each was recorded, to the second
    assert all(len(r["when (UTC)"]) == 19 and r["when (UTC)"][10] == " " for r in (check, hold, backfill))
    with duckdb.connect(str(_warehouse(held_period)), read_only=True) as conn:
        assert ledger.verify(ledger.read_entries(conn)) is None  # entries appended as the pipeline appends them


def test_kpi_show_gives_values_verdicts_and_publication_per_period(held_period: ProjectPaths) -> None:
    shown = barecount("kpi", "show", "net_revenue")
    assert shown.returncode == 0, shown.stderr
    header, *printed = _rows(shown.stdout)
    assert header == ["period", "value (USD)", "thresholds", "reconciliation", "published"]
    rows = {r[0]: r for r in printed}
    assert rows["FY1995-P01"] == ["FY1995-P01", "24,129,928.08", "✓ passed", "✓ passed", "published"]
    assert rows[HELD] == [HELD, "21,741,084.20", "✗ failed", "✓ passed", "held (shows an earlier build)"]
    assert f"{HELD} held back: kpi/net_revenue {HELD} failed its thresholds: {FAILED}" in shown.stdout
    spark = next(line for line in shown.stdout.splitlines() if "low 21,741,084.20, high 26,751,188.25" in line)
    assert spark.split()[0] == "▄▆▁█"  # P01..P04: the lowest is P03, the highest P04

    records = json.loads(barecount("kpi", "show", "net_revenue", "--from", "FY1995-P02", "--to", HELD, "--json").stdout)
    assert [(r["fiscal_period"], r["value"], r["thresholds"], r["published"], r["held_because"]) for r in records] == [
        ("FY1995-P02", "25479243.3007", "passed", True, None),
        (HELD, "21741084.1977", "failed", True, f"kpi/net_revenue {HELD} failed its thresholds: {FAILED}"),
    ]
    assert records[1]["thresholds_detail"] == FAILED and records[1]["reconciliation"] == "passed"
    table = list(csv.DictReader(io.StringIO(barecount("kpi", "show", "return_rate", "--csv").stdout)))
    assert [r["fiscal_period"] for r in table] == ["FY1995-P01", "FY1995-P02", "FY1995-P03", "FY1995-P04"]
    assert set(table[0]) == {"fiscal_period", "value", "thresholds", "thresholds_detail", "published", "held_because"}
    assert 0 < float(table[0]["value"]) < 1


def test_kpi_show_names_the_known_kpis_and_needs_a_warehouse(built_project: ProjectPaths) -> None:
    unknown = barecount("kpi", "show", "net_revenu")
    assert unknown.returncode == 2
    assert "unknown KPI 'net_revenu' (known: average_order_value, discount_revenue, gross_profit, net_revenue," in (
        " ".join(unknown.stderr.split())
    )
    _warehouse(built_project).unlink()
    missing = barecount("kpi", "show", "net_revenue")
    assert missing.returncode == 2 and "no warehouse at" in missing.stderr
