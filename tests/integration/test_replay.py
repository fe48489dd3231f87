"""Dead-letter replay: once the cause is fixed, quarantined rows land; nothing is made, lost or landed twice."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from barecount.config.profiles import load_settings
from barecount.devtools.sample_data import generate_sample_data
from tests.cli import barecount
from tests.conftest import TEST_SCALE, copy_project, use_project

STATUS_RULE = "valid_values__o_orderstatus"


def _counts(warehouse: Path, stream: str) -> dict[str, tuple[int, int]]:
    """Period -> (rows landed, rows quarantined)."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute(
            f"SELECT fiscal_period, count(*) FILTER (WHERE layer = 'raw'), count(*) FILTER (WHERE layer = 'q') FROM "
            f"(SELECT fiscal_period, 'raw' AS layer FROM raw.{stream} UNION ALL "
            f"SELECT fiscal_period, 'q' FROM quarantine.{stream}) GROUP BY 1"
        ).fetchall()
    return {str(p): (int(landed), int(held)) for p, landed, held in rows}


def _replay(*args: str) -> dict[str, object]:
    done = barecount("quarantine", "replay", *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_replay_lands_what_now_passes_once_and_keeps_every_row_accounted_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "sources"
    paths = copy_project(tmp_path / "project", sources)
    calendar = load_settings(paths).calendar
    manifest = generate_sample_data(sources, TEST_SCALE, seed=3, calendar=calendar, bad_rows=14)
    use_project(paths, monkeypatch)
    bad_status = {i.key: i.period for i in manifest.injected if i.rule == STATUS_RULE}
    assert len(bad_status) == 2
    periods = sorted({p for p in bad_status.values() if p}, key=lambda k: calendar.period(k).start)
    raw = [
        arg
        for stream in ("orders", "lineitem", "customer", "nation", "region", "part", "supplier", "partsupp")
        for arg in ("--select", f"raw/{stream}")
    ]
    built = barecount("run", "--from", periods[0], "--to", periods[-1], *raw)
    assert built.returncode == 0, built.stdout + built.stderr
    warehouse = paths.root / "data" / "acme" / "warehouse.duckdb"
    orders_before, lines_before = _counts(warehouse, "orders"), _counts(warehouse, "lineitem")

    # nothing has changed yet: every row that is replayed fails again and stays where it was
    unchanged = _replay("orders")
    assert unchanged["landed"] == {} and _counts(warehouse, "orders") == orders_before
    still = {rule for rules in unchanged["still_quarantined"].values() for rule in rules}  # type: ignore[union-attr]
    failing = sum(n for rules in unchanged["still_quarantined"].values() for n in rules.values())  # type: ignore[union-attr]
    assert STATUS_RULE in still and failing == sum(held for _, held in orders_before.values())

    # the data owner accepts the new status code from the first period on
    folder = paths.contracts / "erp" / "orders"
    text = (folder / "1.0.0.yaml").read_text().replace("version: 1.0.0", "version: 1.1.0")
    text = re.sub(r"(?m)^status: \w+$", "status: proposed", text).replace("value: FY1991-P01", f"value: {periods[0]}")
    (folder / "1.1.0.yaml").write_text(text.replace("        - P\n", "        - P\n        - Z\n", 1))
    approved = barecount("contracts", "approve", "erp.orders", "1.1.0", "--by", "dana.owner", "--note", "Z is valid")
    assert approved.returncode == 0, approved.stderr

    replayed = _replay("orders", "--rule", STATUS_RULE)
    assert sum(replayed["landed"].values()) == len(bad_status)  # type: ignore[union-attr]
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        landed = conn.execute(
            "SELECT CAST(o_orderkey AS VARCHAR), fiscal_period, x_contract_version, x_run_id FROM raw.orders "
            "WHERE o_orderstatus = 'Z' ORDER BY 1"
        ).fetchall()
        assert {k: p for k, p, _, _ in landed} == bad_status
        assert {(v, r) for _, _, v, r in landed} == {("1.1.0", replayed["replay_id"])}
        assert conn.execute(
            f"SELECT count(*) FROM quarantine.orders WHERE quarantine_rule = '{STATUS_RULE}'"
        ).fetchone() == (0,)
    # rows moved, none were made or lost: per period, landed + quarantined is what the extract delivered
    after = _counts(warehouse, "orders")
    assert {p: sum(n) for p, n in after.items()} == {p: sum(n) for p, n in orders_before.items()}
    assert sum(after[p][0] - orders_before[p][0] for p in after) == len(bad_status)

    # replaying again lands nothing twice
    again = _replay("orders", "--rule", STATUS_RULE)
    assert again["landed"] == {} and _counts(warehouse, "orders") == after

    # the line items of those orders were orphans of quarantined parents: their parents have landed now
    lines = _replay("lineitem", "--rule", "orphan_of_quarantined_parent")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        expected = conn.execute(
            f"SELECT count(*) FROM read_parquet('{sources}/erp/lineitem/*.parquet') "
            f"WHERE CAST(l_orderkey AS VARCHAR) IN ({', '.join(repr(k) for k in bad_status)})"
        ).fetchone()
    assert expected is not None and sum(lines["landed"].values()) == expected[0] > 0  # type: ignore[union-attr]
    lines_after = _counts(warehouse, "lineitem")
    assert {p: sum(n) for p, n in lines_after.items()} == {p: sum(n) for p, n in lines_before.items()}

    entries = json.loads(barecount("ledger", "show", "--limit", "0", "--json").stdout)
    replays = [e for e in entries if e["kind"] == "replay"]
    assert {e["run_id"] for e in replays} == {
        unchanged["replay_id"],
        replayed["replay_id"],
        again["replay_id"],
        lines["replay_id"],
    }
    for entry in replays:
        facts = entry["facts"]
        if entry["run_id"] == again["replay_id"]:
            assert facts["rows_replayed"] == 0
        else:
            assert facts["rows_in"] == facts["rows_landed_now"] + facts["rows_quarantined_now"], entry
    assert barecount("ledger", "verify").returncode == 0
    # the replayed rows are part of their period now: the gates of a rebuild account for them at the door
    rebuilt = barecount("run", "--from", periods[0], "--to", periods[-1], *raw)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert _counts(warehouse, "orders") == after
