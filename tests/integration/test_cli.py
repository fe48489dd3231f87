"""The `barecount` command as users run it: a subprocess, exit codes, messages, JSON."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from barecount.config.project import ProjectPaths
from tests import published_values
from tests.cli import BARECOUNT, barecount
from tests.dagster_server import wait_until

pytestmark = pytest.mark.long


def test_calendar_periods_json() -> None:
    result = barecount("calendar", "periods", "--calendar", "nrf-4-5-4", "--year", "2024", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["calendar"] == "nrf-4-5-4" and data["fiscal_year"] == 2024
    periods = data["periods"]
    assert [p["key"] for p in periods] == [f"FY2024-P{n:02d}" for n in range(1, 13)]
    assert (periods[0]["start"], periods[-1]["end"]) == ("2024-02-04", "2025-02-01")
    assert [p["weeks"] for p in periods] == [4, 5, 4] * 4
    assert all(0 < p["working_days"] <= 25 for p in periods)


def test_calendar_which() -> None:
    result = barecount("calendar", "which", "2024-12-25", "--calendar", "nrf-4-5-4", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["key"] == "FY2024-P11"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("calendar", "periods", "--calendar", "nope", "--year", "2024"), "unknown calendar 'nope'"),
        (("calendar", "which", "2024-13-01"), "'2024-13-01' is not a date"),
        (("run", "--period", "FY95-P1"), "malformed period key 'FY95-P1'"),
        (("run", "--period", "FY2050-P01"), "outside the configured fiscal years 1991..2027"),
        (("run", "--period", "FY1995-P01", "--from", "FY1995-P02"), "either --period or --from/--to"),
        (("calendar", "periods"), "Missing option '--year'"),
    ],
)
def test_bad_usage_exits_2_with_a_message(args: tuple[str, ...], message: str) -> None:
    result = barecount(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_bad_calendar_file_names_file_field_and_value(project_copy: ProjectPaths) -> None:
    nrf = (project_copy.calendars / "nrf-4-5-4.yaml").read_text()
    (project_copy.calendars / "nrf-4-5-4.yaml").write_text(nrf.replace("pattern: 4-5-4", "pattern: 4-4-4"))
    result = barecount("check")
    assert result.returncode == 2
    text = " ".join(result.stderr.split())
    assert "resources/calendars/nrf-4-5-4.yaml:" in text and "pattern" in text and "'4-4-4'" in text


def test_every_command_takes_the_profile_it_runs_under(project_copy: ProjectPaths) -> None:
    local = project_copy.profiles / "local.yaml"
    (project_copy.profiles / "staging.yaml").write_text(local.read_text().replace("name: local", "name: staging"))
    assert "profile staging," in " ".join(barecount("check", "--profile", "staging").stdout.split())
    assert "profile local," in " ".join(barecount("check").stdout.split())
    unknown = barecount("ledger", "verify", "--profile", "nope")
    assert unknown.returncode == 2
    assert "known profiles: bigquery, bigquery-emulator, local, staging" in unknown.stderr


def test_a_bigquery_profile_is_checked_and_a_run_without_its_variables_names_the_one_missing(
    project_copy: ProjectPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = barecount("check", "--profile", "bigquery-emulator")
    assert checked.returncode == 0 and "ok: profile bigquery-emulator," in " ".join(checked.stdout.split())
    monkeypatch.delenv("BARECOUNT_BIGQUERY_PROJECT", raising=False)
    refused = barecount("run", "--profile", "bigquery", "--period", "FY1995-P01")
    assert refused.returncode == 2
    text = " ".join(refused.stderr.split())
    assert "resources/profiles/bigquery.yaml: warehouse.project" in text, text
    assert "BARECOUNT_BIGQUERY_PROJECT is not set" in text, text
    # credentials Google refuses: the command says which file and variable, and nothing of what is in the file
    key = project_copy.root.parent / "key.json"
    secrets = ("PRIVATE-KEY-ID-SECRET-123", "SECRET-KEY-MATERIAL-456")
    key.write_text(json.dumps({
        "type": "service_account", "project_id": "p", "private_key_id": secrets[0],
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{secrets[1]}\n-----END PRIVATE KEY-----\n",
        "client_email": "svc@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": "https://token.invalid",
    }))  # fmt: skip
    for name, value in {"PROJECT": "p", "LOCATION": "EU", "DATASET_PREFIX": "acme"}.items():
        monkeypatch.setenv(f"BARECOUNT_BIGQUERY_{name}", value)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    unauthorised = barecount("check", "--profile", "bigquery")
    said = unauthorised.stdout + unauthorised.stderr
    assert unauthorised.returncode == 2 and "Google Cloud credentials" in said and str(key) in said, said
    assert "Traceback" not in said and not any(secret in said for secret in secrets), said
    emulator = project_copy.profiles / "bigquery-emulator.yaml"
    emulator.write_text(emulator.read_text().replace('dataset_prefix: "{org}"', "dataset_prefix: Acme-Prod"))
    broken = barecount("check", "--profile", "bigquery-emulator")
    assert broken.returncode == 2
    text = " ".join(broken.stderr.split())
    assert "resources/profiles/bigquery-emulator.yaml:" in text and "dataset_prefix" in text, text


def test_sql_that_cannot_run_on_bigquery_is_refused_by_check_on_a_bigquery_profile(
    project_copy: ProjectPaths,
) -> None:
    """Valid DuckDB SQL (the local profile checks it) with a construct sqlglot cannot write for BigQuery and a
    function BigQuery does not have."""
    for kpi, measure, extra in (
        ("net_revenue", "SUM(extended_price * (1 - discount))", "list_sort([1])[1]"),
        ("order_count", "COUNT(DISTINCT order_key)", "even(1.0)"),
    ):
        sql = project_copy.root / "kpis" / kpi / "1.0.0.sql"
        sql.write_text(sql.read_text().replace(measure, f"{measure} + 0 * {extra}"))
    assert barecount("check").returncode == 0
    refused = barecount("check", "--profile", "bigquery-emulator")
    assert refused.returncode == 2
    text = " ".join(refused.stderr.split())
    assert "kpis/net_revenue/1.0.0.sql: does not run on BigQuery: no BigQuery translation: ARRAY_SORT" in text, text
    assert "kpis/order_count/1.0.0.sql: does not run on BigQuery: even() is not a BigQuery function" in text, text


def test_bad_model_file_is_reported_by_check(project_copy: ProjectPaths) -> None:
    model = project_copy.assets / "erp" / "gdp" / "order_lines.yaml"
    model.write_text(model.read_text().replace("raw/orders,", "raw/ordrs,"))
    result = barecount("check")
    assert result.returncode == 2
    text = " ".join(result.stderr.split())
    assert "assets/erp/gdp/order_lines.yaml:11:18: depends_on[1]: unknown asset" in text
    assert "unknown asset 'raw/ordrs' (did you mean 'raw/orders'?)" in text
    assert "order_lines.yaml:10:1: depends_on: the SQL reads raw.orders but depends_on does not list raw/orders" in text


def test_a_period_outside_the_active_ones_or_without_its_extract_exits_2(project: ProjectPaths) -> None:
    outside = barecount("run", "--period", "FY2020-P01")
    assert outside.returncode == 2
    assert "outside the active periods" in outside.stderr and "active_periods" in outside.stderr, outside.stderr
    # made active by the tenant's file, the period has no extract: the missing file is named
    tenant = project.tenants / "acme.yaml"
    tenant.write_text(tenant.read_text() + "active_periods:\n  first: FY1992-P01\n  last: FY2020-P12\n")
    missing = barecount("run", "--period", "FY2020-P01")
    assert missing.returncode == 2
    assert "missing source file" in missing.stderr and "FY2020-P01.parquet" in missing.stderr, missing.stderr


def test_run_skips_unchanged_periods_and_force_rebuilds(project: ProjectPaths) -> None:
    first = barecount("run", "--from", "FY1995-P01", "--to", "FY1995-P03")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "gdp/order_lines" in first.stdout and "3 period(s) FY1995-P01 .. FY1995-P03" in first.stdout
    again = barecount("run", "--from", "FY1995-P01", "--to", "FY1995-P04")
    assert again.returncode == 0, again.stderr
    # FY1995-P04's extract may carry late orders of FY1995-P03: that period is rebuilt with it
    assert "2 of 4 period(s) unchanged" in again.stdout and "4 period(s) FY1995-P01 .. FY1995-P04" in again.stdout
    forced = barecount("run", "--period", "FY1995-P02", "--force")
    assert forced.returncode == 0 and "unchanged" not in forced.stdout
    counted = barecount(
        "query",
        "SELECT fiscal_period, count(DISTINCT x_run_id) AS runs FROM gdp.order_lines GROUP BY 1 ORDER BY 1",
        "--json",
    )
    assert json.loads(counted.stdout) == [{"fiscal_period": f"FY1995-P0{n}", "runs": 1} for n in range(1, 5)]
    refused = barecount("query", "DELETE FROM gdp.order_lines")
    assert refused.returncode == 2 and "refused: DELETE is not a read" in refused.stderr
    assert (project.root / ".dagster" / "dagster.yaml").is_file()


def test_demo_runs_twice_and_publishes_what_the_version_before_the_layer_steps_published(
    project: ProjectPaths,
) -> None:
    first = barecount("demo", "--scale", "0.01")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "already in" in first.stdout and "kpi/net_revenue" in first.stdout and "barecount ui" in first.stdout
    # the demo's sample data (scale 0.01, seed 0) is the data the values were kept from
    changed = published_values.differences(
        published_values.published_values(project.root / "data" / "acme" / "warehouse.duckdb"), published_values.load()
    )
    assert not changed, "\n".join(changed[:20])
    second = barecount("demo", "--scale", "0.01")
    assert second.returncode == 0, second.stderr
    assert "unchanged since their last build" in second.stdout and "Up to date" in second.stdout
    assert "gdp/order_lines" in second.stdout  # the warehouse summary stands in for the run summary


@contextlib.contextmanager
def _held_lock(warehouse: Path) -> Iterator[Callable[[], None]]:
    """Another process holding the DuckDB file until the test calls the function it is given, or the block
    ends: it has the lock once this is entered, and lets go when its stdin closes."""
    code = (
        "import duckdb, sys\n"
        f"c = duckdb.connect({str(warehouse)!r})\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
        "c.close()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    stdin, stdout = holder.stdin, holder.stdout
    assert stdin is not None and stdout is not None

    def release() -> None:
        stdin.close()
        holder.wait(timeout=60)

    try:
        assert stdout.readline().strip() == "held"
        yield release
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        stdin.close()
        stdout.close()


class _Lines:
    """A stream read line by line in the background, so a test can wait for a line without blocking for good."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._ended = False
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def _next(self, timeout: float) -> str | None:
        try:
            line = self._lines.get(timeout=max(timeout, 0))
        except queue.Empty:
            raise AssertionError(f"nothing more within {timeout:.0f} s; so far: {self.text()}") from None
        if line is None:
            self._ended = True
        else:
            self.seen.append(line)
        return line

    def wait_for(self, text: str, timeout: float = 300) -> None:
        """Until a line contains `text`; fails if the stream ends first. `timeout` only guards against a hang."""
        deadline = time.monotonic() + timeout
        while not self._ended:
            line = self._next(deadline - time.monotonic())
            if line is not None and text in line:
                return
        raise AssertionError(f"the output ended without a line with {text!r}: {self.text()}")

    def rest(self, timeout: float = 300) -> str:
        """Everything the stream gave, once it has ended."""
        deadline = time.monotonic() + timeout
        while not self._ended:
            self._next(deadline - time.monotonic())
        return self.text()

    def text(self) -> str:
        return "".join(self.seen)


def test_a_run_started_with_sigterm_ignored_ends_and_leaves_no_process_behind(project: ProjectPaths) -> None:
    # Dagster's log capture tails its log files in child processes; they must stop with the run, or they hold
    # the caller's pipe open (this call would then wait for its timeout) and outlive it
    ignoring = subprocess.run(
        [BARECOUNT, "run", "--period", "FY1995-P01", "--select", "raw/region"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    assert ignoring.returncode == 0, ignoring.stdout + ignoring.stderr
    home = str(project.dagster_home())
    tails = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert not [t for t in tails if t.startswith("tail -F") and home in t]


def test_the_ui_started_in_the_background_stops_on_sigterm(project: ProjectPaths) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen(
        [BARECOUNT, "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as a shell's `&` starts it
    )
    try:

        def serving() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    return True
            except OSError:
                return False

        wait_until("the UI to answer", serving, timeout=120)
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=60)

        def gone() -> bool:  # the webserver, the daemon and the code servers, too
            try:
                os.killpg(ui.pid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_until("every process of the UI to stop", gone, timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(ui.pid, signal.SIGKILL)


def test_a_busy_warehouse_is_waited_for_with_a_message(built_project: ProjectPaths, tmp_path: Path) -> None:
    project = built_project
    warehouse = project.root / "data" / "acme" / "warehouse.duckdb"
    answer = tmp_path / "answer.json"
    with _held_lock(warehouse) as release, answer.open("w") as stdout:
        query = subprocess.Popen(
            [BARECOUNT, "query", "SELECT count(*) AS n FROM raw.orders", "--json"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        )
        try:
            assert query.stderr is not None
            stderr = _Lines(query.stderr)
            stderr.wait_for("waiting for the warehouse")  # it found the file held, and said so
            release()
            query.wait(timeout=300)
        finally:
            if query.poll() is None:
                query.kill()
                query.wait()
    said = stderr.rest()
    assert query.returncode == 0, said
    assert "another process holds it" in " ".join(said.split())
    assert json.loads(answer.read_text())[0]["n"] > 0

    profile = project.profiles / "local.yaml"
    profile.write_text(profile.read_text().replace("wait_timeout_seconds: 120", "wait_timeout_seconds: 1"))
    with _held_lock(warehouse):  # held until the run has given up
        gave_up = barecount("run", "--period", "FY1995-P02")
    assert gave_up.returncode == 1
    assert "still held by another process after 1 s" in " ".join(gave_up.stderr.split())
    assert "Traceback" not in gave_up.stderr


def test_a_failed_run_keeps_the_previous_rows(
    built_project: ProjectPaths, sample_sources: Path, tmp_path: Path
) -> None:
    project, sources = built_project, tmp_path / "sources"
    shutil.copytree(sample_sources, sources)
    profile = project.profiles / "local.yaml"
    profile.write_text(profile.read_text().replace(f"sources_dir: {sample_sources}", f"sources_dir: {sources}"))
    query = "SELECT fiscal_period, count(*) AS n, min(x_run_id) AS run FROM {} GROUP BY 1 ORDER BY 1"
    before = {t: barecount("query", query.format(t), "--json").stdout for t in ("raw.orders", "raw.lineitem")}
    (sources / "erp" / "lineitem" / "FY1995-P02.parquet").write_bytes(b"not a parquet file")
    failed = barecount("run", "--from", "FY1995-P01", "--to", "FY1995-P02", "--force")
    assert failed.returncode == 1
    assert "raw/lineitem" in failed.stderr and "FY1995-P02.parquet" in failed.stderr
    after = {t: barecount("query", query.format(t), "--json").stdout for t in ("raw.orders", "raw.lineitem")}
    assert after["raw.lineitem"] == before["raw.lineitem"]


def test_contracts_list_show_and_diff(project_copy: ProjectPaths) -> None:
    listed = json.loads(barecount("contracts", "list", "--json").stdout)
    assert len(listed) == 9 and {c["status"] for c in listed} == {"active"}
    shown = json.loads(barecount("contracts", "show", "erp.orders", "--json").stdout)
    assert shown["columns"][0] == {
        "name": "o_orderkey",
        "source_name": "o_orderkey",
        "type": "BIGINT",
        "rules": ["required", "primary key #1"],
    }
    single = barecount("contracts", "diff", "erp.orders")
    assert single.returncode == 2 and "has one version (1.0.0): nothing to compare" in single.stderr
    folder = project_copy.contracts / "erp" / "orders"
    text = (folder / "1.0.0.yaml").read_text().replace("version: 1.0.0", "version: 2.0.0")
    text = text.replace("status: active", "status: proposed").replace(
        "physicalType: DECIMAL(15,2)", "physicalType: DOUBLE"
    )
    (folder / "2.0.0.yaml").write_text(text)
    changed = json.loads(barecount("contracts", "diff", "erp.orders", "--json").stdout)
    assert changed == {
        "id": "erp.orders",
        "from": "1.0.0",
        "to": "2.0.0",
        "breaking": True,
        "changes": [
            {"column": "o_totalprice", "change": "type", "before": "DECIMAL(15,2)", "after": "DOUBLE", "breaking": True}
        ],
    }


def test_check_reports_a_stream_naming_an_unknown_contract(project_copy: ProjectPaths) -> None:
    streams = project_copy.assets / "erp" / "streams.yaml"
    streams.write_text(streams.read_text().replace("contract: erp.nation", "contract: erp.natoin"))
    result = barecount("check")
    assert result.returncode == 2
    assert "assets/erp/streams.yaml:" in result.stderr
    assert "nation.contract: unknown contract 'erp.natoin' (did you mean 'erp.nation'?)" in " ".join(
        result.stderr.split()
    )


def test_bad_rows_are_quarantined_and_listed(project: ProjectPaths, sample_sources: Path, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(sample_sources, sources)
    profile = project.profiles / "local.yaml"
    profile.write_text(profile.read_text().replace(f"sources_dir: {sample_sources}", f"sources_dir: {sources}"))
    with (sources / "crm" / "customers.csv").open("a") as csv:
        csv.write("x1,Bad Id,,BUILDING,Somewhere,1,1998-01-01 00:00:00\n")
        csv.write("77,Bad Date,,BUILDING,Somewhere,1,yesterday\n")
    result = barecount("run", "--period", "FY1995-P01")
    assert result.returncode == 0, result.stderr  # quarantined rows are not a failure
    listed = json.loads(barecount("quarantine", "list", "--stream", "crm_customers", "--json").stdout)
    assert listed == [
        {"stream": "crm_customers", "period": None, "rule": "type__customer_id", "rows": 1},
        {"stream": "crm_customers", "period": None, "rule": "type__updated_at", "rows": 1},
    ]
    assert json.loads(barecount("quarantine", "list", "--period", "FY1995-P01", "--json").stdout) == []


def test_a_new_contract_version_makes_its_periods_stale(built_project: ProjectPaths) -> None:
    folder = built_project.contracts / "erp" / "orders"
    text = (folder / "1.0.0.yaml").read_text().replace("version: 1.0.0", "version: 1.1.0")
    (folder / "1.1.0.yaml").write_text(text.replace("value: FY1991-P01", "value: FY1995-P03"))
    again = barecount("run", "--from", "FY1995-P01", "--to", "FY1995-P04")
    assert again.returncode == 0, again.stderr
    # P03 and P04 land under 1.1.0; P02 is built with the late rows of P03's extract, so it is rebuilt too
    assert "1 of 4 period(s) unchanged" in again.stdout and "4 period(s) FY1995-P01 .. FY1995-P04" in again.stdout
    versions = barecount(
        "query", "SELECT fiscal_period, x_contract_version FROM raw.orders GROUP BY ALL ORDER BY 1", "--json"
    )
    assert [row["x_contract_version"] for row in json.loads(versions.stdout)] == ["1.0.0", "1.0.0", "1.1.0", "1.1.0"]


def test_an_active_contract_version_is_immutable_once_used(built_project: ProjectPaths) -> None:
    contract = built_project.contracts / "erp" / "orders" / "1.0.0.yaml"
    original = contract.read_text()
    contract.write_text(original.replace("status: active", "status: deprecated"))
    assert barecount("check").returncode == 0  # only the status changed: allowed
    contract.write_text(original.replace("        - P\n", "        - P\n        - X\n"))
    checked = barecount("check")
    said = " ".join(checked.stderr.split())
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "contracts/erp/orders/1.0.0.yaml: content: erp.orders 1.0.0 changed after run" in said
    assert "put the change in a new version" in said
    refused = barecount("run", "--period", "FY1995-P01", "--force")
    assert refused.returncode == 1 and "is immutable" in refused.stderr, refused.stdout + refused.stderr
