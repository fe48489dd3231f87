"""The pipeline-run service on a real project: sample data for three organisations, acme and globex built for
one period, and `barecount serve` started over loopback with its state on SQLite or on a real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from barecount.config.instance import open_instance
from barecount.config.processes import free_port, stop_process_group
from barecount.config.profiles import load_settings
from barecount.config.project import DAGSTER_HOME_ENV, PROJECT_ROOT_ENV, WAREHOUSE_ENV, ProjectPaths
from barecount.devtools.sample_data import generate_sample_data
from barecount.service.keys import create_key
from barecount.service.state import open_state
from tests.cli import BARECOUNT
from tests.conftest import TEST_SCALE, copy_project
from tests.postgres import fresh_database, postgres_server
from tests.webhook_receiver import Receiver

BUILT = "FY1995-P03"
"""The period acme and globex are built for before the service starts: a run of it is quick."""
ROOMY = "subscription: {status: ACTIVE, limits: {daily_runs: 500, monthly_runs: 1000, concurrent_runs: 40}}"
EXTRA_TENANTS = {
    # one run at a time, two a day: the concurrent and daily limits, and a run killed mid-way
    "initech": "subscription: {status: ACTIVE, limits: {daily_runs: 2, monthly_runs: 100, concurrent_runs: 1}}",
    # one run a month
    "umbrella": "subscription: {status: TRIAL, limits: {daily_runs: 10, monthly_runs: 1, concurrent_runs: 5}}",
    # no runs at all
    "hooli": "subscription: {status: SUSPENDED}",
}


PUBLISH_ONLY = "tpch/finance/publish_net_revenue"
PUBLISH_ONLY_YAML = """\
pipeline_id: tpch_finance_publish_net_revenue
name: Publish net revenue
description: One step, cheap once the period is built, for the tests that launch many runs.
provider: tpch
domain: finance
version: 1.0.0
steps:
  - step_id: publish
    ps_type: publish
    config: {select: [published/net_revenue]}
    timeout_seconds: 300
"""


def _tenant(slug: str, subscription: str, seed: int) -> str:
    return (
        f"slug: {slug}\nname: {slug.title()} (test organisation)\ncalendar: nrf-4-5-4\n"
        f"fiscal_years: {{first: 1991, last: 2027}}\ndomains: [finance]\n{subscription}\n"
        f"sample_data: {{seed: {seed}}}\n"
    )


@pytest.fixture(scope="session")
def service_project(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """A project copy with acme's and globex's limits roomy, three more organisations, sample data for acme,
    globex and initech, and acme and globex built for BUILT."""
    paths = copy_project(tmp_path_factory.mktemp("service") / "project")
    for org in ("acme", "globex"):
        tenant = paths.tenants / f"{org}.yaml"
        text = tenant.read_text(encoding="utf-8")
        start = text.index("subscription:")
        end = text.index("\n", text.index("concurrent_runs", start))
        tenant.write_text(text[:start] + ROOMY + text[end:], encoding="utf-8")
    for seed, (org, subscription) in enumerate(EXTRA_TENANTS.items(), start=3):
        (paths.tenants / f"{org}.yaml").write_text(_tenant(org, subscription, seed), encoding="utf-8")
    for org in ("acme", "globex", "initech"):
        settings = load_settings(paths, "local", org=org)
        generate_sample_data(settings.sources_dir, TEST_SCALE, settings.tenant.sample_data.seed, settings.calendar)
    (paths.pipelines / PUBLISH_ONLY).with_suffix(".yml").write_text(PUBLISH_ONLY_YAML, encoding="utf-8")
    env = {**os.environ, PROJECT_ROOT_ENV: str(paths.root)}
    env.pop(DAGSTER_HOME_ENV, None)
    env.pop(WAREHOUSE_ENV, None)
    with pytest.MonkeyPatch.context() as instance_env:  # made once: two runs making it at once would race
        instance_env.setenv(PROJECT_ROOT_ENV, str(paths.root))
        instance_env.delenv(DAGSTER_HOME_ENV, raising=False)
        open_instance(paths).dispose()
    # each organisation has a warehouse of its own: both are built at once
    builds = [
        subprocess.Popen(
            [BARECOUNT, "run", "--org", org, "--period", BUILT, "-q"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for org in ("acme", "globex")
    ]
    for build in builds:
        output, _ = build.communicate(timeout=600)
        assert build.returncode == 0, output
    return paths


@dataclass
class Service:
    url: str
    state_url: str
    paths: ProjectPaths
    receiver: Receiver
    keys: dict[str, str]
    """`<org>` -> a runner key, `<org>:viewer` -> a viewer key."""

    def client(self, key: str | None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": key} if key else {}, timeout=60)

    def engine(self) -> sa.Engine:
        return open_state(self.state_url)

    def wait_final(self, client: httpx.Client, org: str, run_id: str, timeout: float = 300) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = client.get(f"/pipelines/status/{org}/{run_id}").json()
            if found["status"] in ("completed", "failed"):
                return found  # type: ignore[no-any-return]
            time.sleep(0.25)
        raise TimeoutError(f"run {run_id} of {org} did not end in {timeout:.0f} s")


@contextmanager
def _serve(paths: ProjectPaths, state_url: str, receiver: Receiver, log: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        PROJECT_ROOT_ENV: str(paths.root),
        "BARECOUNT_ALERT_WEBHOOK_URL": receiver.url,
    }
    env.pop(DAGSTER_HOME_ENV, None)
    env.pop(WAREHOUSE_ENV, None)
    with log.open("w") as output:
        process = subprocess.Popen(
            [BARECOUNT, "serve", "--port", str(port), "--db", state_url],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/docs", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"barecount serve did not start: {log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        stop_process_group(process, grace_seconds=20)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, service_project: ProjectPaths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """`barecount serve` on the project, its state on SQLite or PostgreSQL, alerts to a receiver on loopback."""
    base = tmp_path_factory.mktemp(f"serve-{request.param}")
    if request.param == "sqlite":
        state_url = f"sqlite:///{base / 'service.sqlite'}"
    else:
        state_url = fresh_database(request.getfixturevalue("postgres_url"), f"barecount_{base.name}")
    receiver = Receiver([200])
    engine = open_state(state_url)
    orgs = ("acme", "globex", "initech", "umbrella", "hooli")
    keys = {org: create_key(engine, org, "runner", "tests")[1] for org in orgs}
    keys["acme:viewer"] = create_key(engine, "acme", "viewer", "tests")[1]
    engine.dispose()
    try:
        with _serve(service_project, state_url, receiver, base / "serve.log") as url:
            yield Service(url, state_url, service_project, receiver, keys)
    finally:
        receiver.close()
