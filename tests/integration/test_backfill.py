"""A governed backfill from the CLI: who asked, the range, the reason, the runs and the outcome are on the record."""

from __future__ import annotations

import json

from barecount.config.project import ProjectPaths
from tests.cli import barecount

SELECTION = [arg for a in ("raw/region", "raw/nation", "raw/customer", "raw/orders") for arg in ("--select", a)]


def _backfills() -> list[dict[str, object]]:
    entries = json.loads(barecount("ledger", "show", "--limit", "0", "--json").stdout)
    return [e for e in entries if e["kind"] == "backfill"]


def test_a_backfill_is_recorded_with_who_why_its_runs_and_outcome(project: ProjectPaths) -> None:
    unexplained = barecount("backfill", "--from", "FY1995-P01", "--to", "FY1995-P02", "--reason", " ")
    assert unexplained.returncode == 2 and "--reason" in unexplained.stderr
    assert barecount("backfill", "--from", "FY1995-P01", "--to", "FY1995-P02").returncode == 2

    done = barecount(
        "backfill", "--from", "FY1995-P01", "--to", "FY1995-P02", "--reason", "restated prices", "--by", "alice",
        *SELECTION,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    requested, ended = _backfills()
    assert requested["run_id"] == ended["run_id"] and str(ended["run_id"]).startswith("backfill-")
    facts = ended["facts"]
    assert (requested["facts"]["state"], facts["state"]) == ("requested", "succeeded")  # type: ignore[index]
    assert facts["requested_by"] == "alice" and facts["reason"] == "restated prices"  # type: ignore[index]
    assert (facts["first_period"], facts["last_period"], facts["periods"]) == ("FY1995-P01", "FY1995-P02", 2)  # type: ignore[index]
    assert facts["launched_from"] == "cli" and facts["selection"] == SELECTION[1::2]  # type: ignore[index]
    (run,) = facts["runs"]  # type: ignore[index]
    assert run["status"] == "SUCCESS"
    # the run itself carries the backfill and its reason, and wrote the periods
    rows = barecount("query", "SELECT DISTINCT x_run_id FROM raw.orders", "--json")
    assert json.loads(rows.stdout) == [{"x_run_id": run["run_id"]}]

    assert "The backfill rebuilds" in done.stdout and "raw/orders FY1995-P01..FY1995-P02 (2 periods)" in done.stdout

    # the same request again: nothing changed, so it is refused before anything goes on the record
    again = barecount(
        "backfill", "--from", "FY1995-P01", "--to", "FY1995-P02", "--reason", "once more", "--by", "bob", *SELECTION
    )
    assert again.returncode == 2 and "nothing to rebuild" in again.stderr and "--force" in again.stderr, again.stderr
    assert len(_backfills()) == 2
    # forced, it rebuilds and is recorded
    forced = barecount(
        "backfill", "--from", "FY1995-P01", "--to", "FY1995-P02", "--reason", "once more", "--by", "bob", "--force",
        *SELECTION,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stdout + forced.stderr
    last = _backfills()[-1]["facts"]
    assert (last["state"], last["requested_by"]) == ("succeeded", "bob")  # type: ignore[index]
    (forced_run,) = last["runs"]  # type: ignore[index]
    assert forced_run["status"] == "SUCCESS"
    assert json.loads(barecount("query", "SELECT DISTINCT x_run_id FROM raw.orders", "--json").stdout) == [
        {"x_run_id": forced_run["run_id"]}
    ]
    assert barecount("ledger", "verify").returncode == 0
