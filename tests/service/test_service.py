"""The pipeline-run service over loopback, with its state on SQLite and on PostgreSQL: concurrent requests with
idempotency keys across two organisations, access, quotas, a run killed mid-way, isolation, logs, notices."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import sqlalchemy as sa

from barecount.config.profiles import load_settings
from barecount.config.project import DAGSTER_HOME_ENV
from barecount.service.state import api_keys, pipeline_runs, reservations
from tests.cli import barecount
from tests.service.conftest import BUILT, PUBLISH_ONLY, Service

pytestmark = pytest.mark.long

NET_REVENUE = "tpch/finance/net_revenue"
CLOSE = "tpch/finance/close_period"
FLOW = ("pending", "validating", "running")


def _run_path(org: str, pipeline: str = NET_REVENUE) -> str:
    return f"/pipelines/run/{org}/{pipeline}"


def _in_order(transitions: list[dict[str, object]]) -> bool:
    """pending -> validating -> running -> completed | failed, any tail of the flow cut short by a failure."""
    statuses = [str(t["status"]) for t in transitions]
    *before, last = statuses
    return (
        last in ("completed", "failed")
        and before == list(FLOW[: len(before)])
        and (last == "failed" or before == list(FLOW))
    )


def test_concurrent_requests_with_duplicated_idempotency_keys_make_one_run_each(service: Service) -> None:
    """50 POSTs at once across two organisations, 10 of them repeating another's Idempotency-Key and body."""
    requests = [(org, f"{org}-{n}") for org in ("acme", "globex") for n in range(20)]
    requests += [requests[n * 4] for n in range(10)]  # 10 duplicates, spread over both organisations
    assert len(requests) == 50
    clients = {org: service.client(service.keys[org]) for org in ("acme", "globex")}

    def post(org_and_key: tuple[str, str]) -> tuple[str, str, int, dict[str, object]]:
        org, key = org_and_key
        answer = clients[org].post(
            _run_path(org, PUBLISH_ONLY), json={"period": BUILT}, headers={"Idempotency-Key": key}
        )
        return org, key, answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(post, requests))
    by_key: dict[str, list[tuple[int, dict[str, object]]]] = {}
    for _, key, status, body in answers:
        by_key.setdefault(key, []).append((status, body))
    assert len(by_key) == 40
    for key, seen in by_key.items():
        statuses = Counter(status for status, _ in seen)
        assert statuses[202] == 1 and set(statuses) <= {202, 200, 409}, (key, seen)
        first = next(body["run_id"] for status, body in seen if status == 202)
        assert all(body["run_id"] == first for status, body in seen if status == 200), (key, seen)
    with service.engine().connect() as conn:
        made = conn.execute(
            sa.select(pipeline_runs.c.idempotency_key, sa.func.count()).group_by(pipeline_runs.c.idempotency_key)
        )
        assert {key: n for key, n in made} == dict.fromkeys(by_key, 1)  # one run per key, never a second
    runs = {str(body["run_id"]): org for org, _, status, body in answers if status == 202}
    ended = {run_id: service.wait_final(clients[org], org, run_id) for run_id, org in runs.items()}
    for found in ended.values():
        assert _in_order(found["transitions"]), found  # type: ignore[arg-type]
        assert found["status"] == "completed", found
    # each step of each run is one Dagster run, in the instance the UI shows, tagged with the run and its org
    home = str(service.paths.root / ".dagster")  # the service's instance: it runs without DAGSTER_HOME set
    with pytest.MonkeyPatch.context() as env:
        env.setenv(DAGSTER_HOME_ENV, home)  # the project's dagster.yaml reads it
        with dg.DagsterInstance.from_config(home) as instance:
            for run_id, org in runs.items():
                dagster_runs = instance.get_runs(filters=dg.RunsFilter(tags={"barecount/pipeline_run": run_id}))
                assert len(dagster_runs) == len(ended[run_id]["steps"]) == 1, run_id  # type: ignore[arg-type]
                assert all(r.tags["barecount/org"] == org for r in dagster_runs)
    with service.engine().connect() as conn:
        open_slots = conn.execute(sa.select(sa.func.count()).where(reservations.c.released_at.is_(None))).scalar()
    assert open_slots == 0


def test_keys_orgs_roles_and_bodies_are_checked(service: Service) -> None:
    acme, globex = service.client(service.keys["acme"]), service.client(service.keys["globex"])
    viewer, stranger = service.client(service.keys["acme:viewer"]), service.client("bc_0000_not-a-key")
    started = acme.post(_run_path("acme"), json={"period": BUILT})
    assert started.status_code == 202 and started.headers["Location"].endswith(started.json()["run_id"])
    run_id = started.json()["run_id"]

    refused = stranger.get(f"/pipelines/status/acme/{run_id}")
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    assert service.client(None).get("/pipelines").status_code == 401
    # another organisation's run, history and pipelines do not exist for a key
    assert globex.get(f"/pipelines/status/acme/{run_id}").status_code == 404
    assert globex.get(f"/pipelines/status/globex/{run_id}").status_code == 404
    assert globex.get("/pipelines/history/acme").status_code == 404
    assert globex.post(_run_path("acme"), json={"period": BUILT}).status_code == 404
    # a viewer reads, and may not launch
    assert viewer.get(f"/pipelines/status/acme/{run_id}").status_code == 200
    forbidden = viewer.post(_run_path("acme"), json={"period": BUILT})
    assert forbidden.status_code == 403 and "viewer" in forbidden.json()["detail"]
    suspended = service.client(service.keys["hooli"]).post(_run_path("hooli"), json={"period": BUILT})
    assert suspended.status_code == 403 and "SUSPENDED" in suspended.json()["detail"]
    # malformed bodies name the field
    for body, field in (
        ({"perod": BUILT}, "perod"),
        ({"period": "1995-03"}, "period"),
        ({"run_date": "soon"}, "run_date"),
    ):
        wrong = acme.post(_run_path("acme"), json=body)
        assert wrong.status_code == 422 and wrong.json()["detail"].startswith(f"{field}: "), wrong.json()
    outside = acme.post(_run_path("acme"), json={"period": "FY2031-P01"})
    assert outside.status_code == 422 and outside.json()["field"] == "period", outside.json()
    # unknown organisation, pipeline
    assert acme.post(_run_path("initrode"), json={"period": BUILT}).status_code == 404
    assert acme.post(_run_path("acme", "tpch/finance/nope"), json={"period": BUILT}).status_code == 404
    # the same key with another body
    keyed = {"Idempotency-Key": f"body-{run_id}"}
    assert acme.post(_run_path("acme"), json={"period": BUILT}, headers=keyed).status_code == 202
    again = acme.post(_run_path("acme"), json={"period": "FY1995-P02"}, headers=keyed)
    assert again.status_code == 422 and "another request body" in again.json()["detail"]
    service.wait_final(acme, "acme", run_id)
    catalog = acme.get("/pipelines").json()
    assert {p["path"] for p in catalog["pipelines"]} == {NET_REVENUE, CLOSE, PUBLISH_ONLY} and catalog["org"] == "acme"


def _worker_pid(service: Service, run_id: str) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with service.engine().connect() as conn:
            pid = conn.execute(sa.select(pipeline_runs.c.worker_pid).where(pipeline_runs.c.run_id == run_id)).scalar()
        if pid:
            return int(pid)
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} has no process")


def test_quotas_and_a_run_killed_mid_way(service: Service, tmp_path: Path) -> None:
    initech = service.client(service.keys["initech"])
    warehouse = load_settings(service.paths, "local", org="initech").warehouse_path
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    # the test holds initech's warehouse: its run waits for the file in `validating`, mid-way
    with duckdb.connect(str(warehouse)) as holder:
        holder.execute("CREATE SCHEMA IF NOT EXISTS held_by_the_test")
        first = initech.post(_run_path("initech", CLOSE), json={"period": BUILT})
        assert first.status_code == 202
        run_id = first.json()["run_id"]
        busy = initech.post(_run_path("initech", CLOSE), json={"period": BUILT}, headers={"Idempotency-Key": "k"})
        assert busy.status_code == 429 and busy.json()["limit"] == "concurrent_runs", busy.json()
        assert int(busy.headers["Retry-After"]) > 0
        os.kill(_worker_pid(service, run_id), signal.SIGKILL)
        killed = service.wait_final(initech, "initech", run_id, timeout=60)
    assert killed["status"] == "failed" and "killed by signal SIGKILL" in str(killed["reason"]), killed
    with service.engine().connect() as conn:
        slot = conn.execute(sa.select(reservations.c.released_at).where(reservations.c.run_id == run_id)).scalar()
    assert slot is not None
    # its slot is free: the refused key was given back, and the next request runs, to the end
    second = initech.post(_run_path("initech", CLOSE), json={"period": BUILT}, headers={"Idempotency-Key": "k"})
    assert second.status_code == 202
    done = service.wait_final(initech, "initech", second.json()["run_id"])
    assert done["status"] == "completed" and [s["step_id"] for s in done["steps"]] == [
        "ingest",
        "conform",
        "kpis",
        "publish",
    ]  # type: ignore[union-attr]
    daily = initech.post(_run_path("initech", CLOSE), json={"period": BUILT})
    assert daily.status_code == 429 and daily.json()["limit"] == "daily_runs"
    assert 0 < int(daily.headers["Retry-After"]) <= 86400
    umbrella = service.client(service.keys["umbrella"])
    month = umbrella.post(_run_path("umbrella"), json={"period": BUILT})
    assert month.status_code == 202
    service.wait_final(umbrella, "umbrella", month.json()["run_id"])
    monthly = umbrella.post(_run_path("umbrella"), json={"period": BUILT})
    assert monthly.status_code == 429 and monthly.json()["limit"] == "monthly_runs", monthly.json()
    assert int(monthly.headers["Retry-After"]) >= int(daily.headers["Retry-After"]) - 60
    # the killed run's end reached the alert targets, with its pipeline run
    noticed = [a for a in service.receiver.accepted if a.get("pipeline_run") == run_id]
    assert [a["kind"] for a in noticed] == ["run_failed"], service.receiver.accepted


def test_organisations_never_see_each_others_rows_or_runs(service: Service) -> None:
    acme, globex = service.client(service.keys["acme"]), service.client(service.keys["globex"])
    for org, client in (("acme", acme), ("globex", globex)):
        ran = client.post(_run_path(org), json={"period": BUILT})
        service.wait_final(client, org, ran.json()["run_id"])
    for org in ("acme", "globex"):
        warehouse = load_settings(service.paths, "local", org=org).warehouse_path
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            tables = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.columns WHERE column_name = 'x_org_slug'"
            ).fetchall()
            assert len(tables) > 20
            for schema, table in tables:
                foreign = conn.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE x_org_slug <> ?', [org])
                assert foreign.fetchone() == (0,), (org, schema, table)
    for org, client in (("acme", acme), ("globex", globex)):
        history = client.get(f"/pipelines/history/{org}", params={"limit": 200}).json()
        assert history["total"] >= 1 and all(r["run_id"] for r in history["runs"])
        with service.engine().connect() as conn:
            theirs = conn.scalars(sa.select(pipeline_runs.c.run_id).where(pipeline_runs.c.org != org)).all()
        assert not {r["run_id"] for r in history["runs"]} & set(theirs)


def test_logs_steps_transitions_and_pages(service: Service) -> None:
    acme = service.client(service.keys["acme"])
    run_id = acme.post(_run_path("acme"), json={"period": BUILT}).json()["run_id"]
    found = service.wait_final(acme, "acme", run_id)
    steps = acme.get(f"/pipelines/logs/acme/{run_id}/steps").json()["steps"]
    assert [(s["step_id"], s["status"]) for s in steps] == [("compute", "completed"), ("publish", "completed")]
    assert steps == found["steps"] and all(s["dagster_run_id"] for s in steps)
    moved = acme.get(f"/pipelines/logs/acme/{run_id}/transitions").json()["transitions"]
    assert [t["status"] for t in moved] == [*FLOW, "completed"]
    lines = acme.get(f"/pipelines/logs/acme/{run_id}").json()["lines"]
    assert any("step compute: attempt 1 started" in line["message"] for line in lines)
    download = acme.get(f"/pipelines/logs/acme/{run_id}/download")
    assert download.headers["content-disposition"].endswith(f'barecount-run-{run_id}.log"')
    assert "completed: 2 step(s) completed" in download.text
    first = acme.get("/pipelines/history/acme", params={"limit": 2}).json()
    second = acme.get("/pipelines/history/acme", params={"limit": 2, "offset": first["next_offset"]}).json()
    assert len(first["runs"]) == 2 and first["runs"][0]["run_id"] == run_id
    assert not {r["run_id"] for r in first["runs"]} & {r["run_id"] for r in second["runs"]}
    assert acme.get("/docs").status_code == 200 and "/pipelines/run/{org}/{provider}/{domain}/{pipeline}" in str(
        acme.get("/openapi.json").json()["paths"]
    )


def test_a_key_is_printed_once_as_the_last_line_and_revoked_from_the_cli(service: Service) -> None:
    made = barecount("apikeys", "create", "--org", "globex", "--role", "viewer", "--db", service.state_url)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("bc_") and key not in made.stderr
    with service.engine().connect() as conn:  # only its hash is kept
        assert key not in str(conn.execute(sa.select(api_keys)).all())
    viewer = service.client(key)
    assert viewer.get("/pipelines/history/globex").status_code == 200
    key_id = key.split("_")[1]
    listed = barecount("apikeys", "list", "--org", "globex", "--json", "--db", service.state_url)
    assert key_id in listed.stdout and key not in listed.stdout
    revoked = barecount("apikeys", "revoke", key_id, "--db", service.state_url)
    assert revoked.returncode == 0 and f"Revoked key {key_id} of globex" in revoked.stdout
    assert viewer.get("/pipelines/history/globex").status_code == 401
    again = barecount("apikeys", "revoke", key_id, "--db", service.state_url)
    assert again.returncode == 2 and "revoked already" in again.stderr


def _idle(service: Service, org: str) -> None:
    """Wait until none of the organisation's runs is going: a run holds its DuckDB file while it writes."""
    client = service.client(service.keys[org])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = client.get(f"/pipelines/history/{org}", params={"limit": 200}).json()["runs"]
        if all(r["status"] in ("completed", "failed") for r in runs):
            return
        time.sleep(0.25)
    raise TimeoutError(f"{org} still has runs going")


def _sources(node: dict[str, object]) -> list[object]:
    inputs = node["inputs"]
    assert isinstance(inputs, list)
    return [*node["source_files"], *(s for i in inputs for s in _sources(i))]  # type: ignore[misc]


def test_published_kpis_their_evidence_and_the_catalog_are_read_with_a_viewer_key(service: Service) -> None:
    _idle(service, "acme")
    viewer, globex = service.client(service.keys["acme:viewer"]), service.client(service.keys["globex"])
    listed = viewer.get("/kpis/acme")
    assert listed.status_code == 200
    net = next(k for k in listed.json()["kpis"] if k["kpi"] == "net_revenue")
    assert net["version"] == "1.0.0" and net["owner"] == "team:finance" and "thresholds" in net["gates"]

    values = viewer.get("/kpis/acme/net_revenue", params={"from": BUILT, "to": BUILT})
    assert values.status_code == 200, values.json()
    warehouse = load_settings(service.paths, "local", org="acme").warehouse_path
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        stored = conn.execute(
            "SELECT fiscal_period, value::VARCHAR, kpi_version, x_run_id, x_org_slug FROM published.net_revenue "
            "WHERE fiscal_period = ?",
            [BUILT],
        ).fetchall()
        published_hash = conn.execute(
            "SELECT arg_max(entry_hash, seq) FROM evidence.ledger WHERE kind = 'materialization' "
            "AND asset = 'published/net_revenue' AND partition = ?",
            [BUILT],
        ).fetchone()
    rows = values.json()["rows"]
    assert [(r["fiscal_period"], r["value"], r["kpi_version"], r["x_run_id"], r["x_org_slug"]) for r in rows] == stored
    assert len(stored) == 1
    period = values.json()["periods"][BUILT]
    assert period["ledger_hash"] == published_hash[0]  # type: ignore[index]
    assert period["verdicts"]["thresholds"]["passed"] is True

    etag = values.headers["ETag"]
    cached = viewer.get("/kpis/acme/net_revenue", params={"from": BUILT, "to": BUILT}, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["ETag"] == etag

    evidence = viewer.get(f"/kpis/acme/net_revenue/{BUILT}/evidence")
    assert evidence.status_code == 200
    trace = evidence.json()["trace"]
    assert trace["asset"] == "published/net_revenue" and trace["ledger_hash"] == published_hash[0]  # type: ignore[index]
    assert _sources(trace), "the trace reaches the source files"
    assert viewer.get("/kpis/acme/net_revenue/FY1995-P09/evidence").status_code == 404

    # another organisation's KPIs and catalog do not exist for this key; an unknown KPI neither
    assert globex.get("/kpis/acme/net_revenue").status_code == 404
    assert globex.get("/kpis/acme").status_code == 404
    assert globex.get("/catalog/acme").status_code == 404
    assert viewer.get("/kpis/acme/gross_margin_of_nothing").status_code == 404

    catalog = viewer.get("/catalog/acme")
    assert catalog.status_code == 200
    datasets = {d["ref"]: d for d in catalog.json()["datasets"]}
    assert datasets["published/net_revenue"]["rows"] == 1 and datasets["published/net_revenue"]["last_period"] == BUILT
    assert {"raw/orders", "gdp/order_lines", "kpi/net_revenue", "calendar/fiscal_days"} <= set(datasets)
