"""Broken files are broken files: a CSV's unparsable lines are quarantined one by one with their line number and
the rest lands; an empty or header-less file, or a Parquet value that cannot be decoded, fails its period at once
with the reason. None of them is schema drift, none drafts a contract, none is retried, and no personal value of
a broken line reaches the ledger or the Dagster event log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from barecount.config.profiles import Settings
from barecount.defs.assembly import build_definitions
from barecount.defs.runner import RunOutcome, run_partitions
from barecount.evidence import ledger
from barecount.pipeline.periods import source_periods
from tests.conftest import copy_project, settings_for

CRM = ["raw/region", "raw/nation", "raw/crm_customers"]
ORDERS = ["raw/region", "raw/nation", "raw/customer", "raw/orders"]
SECRET_NAME = "Zelda Quarantinesecret"
SECRET_PHONE = "99-999-555-0101"
"""Personal values on the broken lines: they may sit in quarantine, nowhere else."""


@pytest.fixture
def broken(sample_sources: Path, tmp_path: Path, warehouse_file: Path) -> Settings:
    """Settings of a project copy (its contracts folder its own) reading a copy of the sample sources."""
    sources = tmp_path / "sources"
    shutil.copytree(sample_sources, sources)
    paths = copy_project(tmp_path / "project", sources)
    return settings_for(paths, sources)


def _run(settings: Settings, instance: dg.DagsterInstance, selection: list[str], period: str) -> RunOutcome:
    return run_partitions(build_definitions(settings), instance, [period], selection=selection)


def _retries(instance: dg.DagsterInstance) -> int:
    return sum(
        len(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)) for run in instance.get_runs()
    )


def _contract_files(settings: Settings) -> list[str]:
    return sorted(p.relative_to(settings.paths.root).as_posix() for p in settings.paths.contracts.rglob("*.yaml"))


def _outside_raw_and_quarantine(warehouse: Path, instance: dg.DagsterInstance) -> str:
    """Everything the evidence and the event log hold, as text."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        stored = [
            str(row)
            for (schema, table) in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('raw', 'quarantine')"
            ).fetchall()
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
        ]
    events = [
        str(e.dagster_event or e.user_message) for run in instance.get_runs() for e in instance.all_logs(run.run_id)
    ]
    return "\n".join(stored + events)


def _assert_nothing_personal_leaked(warehouse: Path, instance: dg.DagsterInstance, outcome: RunOutcome) -> None:
    text = _outside_raw_and_quarantine(warehouse, instance) + str(outcome.failure)
    assert SECRET_NAME not in text and SECRET_PHONE not in text


def test_unparsable_csv_lines_are_quarantined_by_line_and_the_rest_lands(
    broken: Settings, warehouse_file: Path, instance: dg.DagsterInstance
) -> None:
    extract = broken.sources_dir / "crm" / "customers.csv"
    lines = extract.read_text(encoding="utf-8").splitlines(keepends=True)
    bad = {
        3: f"900001,{SECRET_NAME},{SECRET_PHONE},HOUSEHOLD\n",  # ragged: too few fields
        5: f"900002,{SECRET_NAME},{SECRET_PHONE},HOUSEHOLD,addr,1,2020-01-01 00:00:00,extra\n",  # too many
        8: f'900003,"{SECRET_NAME}"x,{SECRET_PHONE},HOUSEHOLD,addr,1,2020-01-01 00:00:00\n',  # text after a quote
    }
    body = list(lines)
    for number in sorted(bad):  # file line numbers, the header being line 1
        body.insert(number - 1, bad[number])
    encoded = "".join(body).encode("utf-8")
    undecodable = f"900004,Zel\xffda,{SECRET_PHONE},HOUSEHOLD,addr,1,2020-01-01 00:00:00\n".encode("latin-1")
    extract.write_bytes(encoded + undecodable)
    bad[len(body) + 1] = "undecodable"
    good_rows = len(lines) - 1
    contracts_before = _contract_files(broken)

    outcome = _run(broken, instance, CRM, source_periods(broken)[0])

    assert outcome.success, outcome.failure
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        landed = conn.execute("SELECT count(*) FROM raw.crm_customers").fetchone()
        held = conn.execute(
            "SELECT quarantine_rule, quarantine_reason FROM quarantine.crm_customers ORDER BY quarantine_reason"
        ).fetchall()
        (entry,) = ledger.read_entries(conn, "raw/crm_customers", kind="materialization")
    unparsable = [reason for rule, reason in held if rule == "unparsable_line"]
    assert sorted(int(reason.split()[1].rstrip(":")) for reason in unparsable) == sorted(bad)
    assert landed is not None
    assert landed[0] + len(held) == good_rows + len(bad)  # rows in = landed + quarantined
    assert entry.facts["rows_in"] == good_rows + len(bad)
    assert entry.facts["rows_landed"] + entry.facts["rows_quarantined"] == entry.facts["rows_in"]
    assert _contract_files(broken) == contracts_before  # not drift: nothing drafted
    _assert_nothing_personal_leaked(warehouse_file, instance, outcome)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (f"1,{SECRET_NAME},{SECRET_PHONE},HOUSEHOLD,addr,1,2020-01-01 00:00:00\n".encode(), "header"),
        ("customer_id,name\n".encode("utf-16"), "UTF-8"),
    ],
    ids=["empty", "no-header", "utf-16"],
)
def test_a_bad_csv_file_fails_at_once_and_is_not_drift(
    broken: Settings, warehouse_file: Path, instance: dg.DagsterInstance, content: bytes, reason: str
) -> None:
    period = source_periods(broken)[0]
    assert _run(broken, instance, CRM, period).success
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        before = conn.execute("SELECT * FROM raw.crm_customers ORDER BY ALL").fetchall()
    contracts_before = _contract_files(broken)
    (broken.sources_dir / "crm" / "customers.csv").write_bytes(content)

    failed = _run(broken, instance, CRM, period)

    assert not failed.success and failed.assets["raw/crm_customers"].status == "failed"
    assert failed.failure is not None and "crm/customers.csv" in failed.failure and reason in failed.failure
    assert "drift" not in failed.failure
    assert _retries(instance) == 0
    assert _contract_files(broken) == contracts_before
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        assert conn.execute("SELECT * FROM raw.crm_customers ORDER BY ALL").fetchall() == before
        (attempt,) = ledger.read_entries(conn, "raw/crm_customers", kind="attempt")
        assert conn.execute("SELECT count(*) FROM evidence.blocked_partitions").fetchone() == (0,)
    assert (attempt.facts["transient"], attempt.facts["retrying"]) == (False, False)
    _assert_nothing_personal_leaked(warehouse_file, instance, failed)


def test_an_undecodable_parquet_value_fails_its_period_at_once_without_quoting_it(
    broken: Settings, warehouse_file: Path, instance: dg.DagsterInstance
) -> None:
    period = source_periods(broken)[3]
    extract = broken.sources_dir / "erp" / "orders" / f"{period}.parquet"
    orders = pq.read_table(extract)
    marker = "QQQQ" + SECRET_NAME
    clerks = orders.column("o_clerk").to_pylist()
    clerks[1] = marker
    orders = orders.set_column(orders.schema.get_field_index("o_clerk"), "o_clerk", pa.array(clerks))
    pq.write_table(orders, extract, compression="none", use_dictionary=False, write_statistics=False)
    raw_bytes = extract.read_bytes()
    extract.write_bytes(raw_bytes.replace(b"QQQQ", b"\xff\xfe\xff\xfe"))

    failed = _run(broken, instance, ORDERS, period)

    assert not failed.success and failed.assets["raw/orders"].status == "failed"
    assert failed.failure is not None and f"erp/orders/{period}.parquet" in failed.failure
    assert "o_clerk" in failed.failure and "UTF-8" in failed.failure
    assert _retries(instance) == 0
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        (attempt,) = ledger.read_entries(conn, "raw/orders", kind="attempt")
    assert (attempt.facts["transient"], attempt.facts["retrying"]) == (False, False)
    assert "\\xFF" not in json.dumps(attempt.facts)
    _assert_nothing_personal_leaked(warehouse_file, instance, failed)
