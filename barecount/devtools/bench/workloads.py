"""The workloads `barecount bench` times: the plain-DuckDB reference and BareCount's own runs.

Each runs in its own process, started by a small launcher, so its peak memory is its own (the largest
resident set of the process and anything it waited for, from `wait4`), and so is its start-up.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from barecount.config.project import DAGSTER_HOME_ENV, PROFILE_ENV, PROJECT_ROOT_ENV, WAREHOUSE_ENV, ProjectPaths
from barecount.defs.runner import EventFold
from barecount.errors import BareCountError
from barecount.sql.pii import PII_KEY_ENV

LAYER_OF_SCHEMA = {"raw": "raw", "quarantine": "raw", "gdp": "gdp", "calendar": "gdp", "kpi": "kpi", "published": "kpi"}
"""The layer a table (and the asset of the same name) counts for; `published` belongs with the KPIs it publishes."""


@dataclass
class Measured:
    """One timed workload: wall time and peak memory of its process, seconds and rows per step."""

    wall: float
    peak_rss: int
    """Bytes."""
    steps: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    run_seconds: float | None = None
    """BareCount only: the Dagster run from its start to its end (no process start-up)."""


@dataclass(frozen=True)
class Spread:
    """Median, min and max of repeated measurements."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


_LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
begin = time.monotonic()
pid = os.posix_spawnp(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    exit_code = os.waitstatus_to_exitcode(status)
    json.dump({"wall": time.monotonic() - begin, "maxrss": usage.ru_maxrss, "exit": exit_code}, out)
"""
"""Starts a measured command and reports its wall time and peak memory. On Linux a child's peak resident set
starts at its parent's when it is forked, and the bench's own process grows to gigabytes (it makes the sample
data): measured from that process, every command's peak would be at least the bench's. This small process
starts each command instead, so each peak is the command's own."""


def _timed(command: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    """Run `command`; its wall time, peak resident set (bytes) and standard output. A failure is an error."""
    with tempfile.TemporaryDirectory() as scratch, open(Path(scratch) / "out", "w+") as stdout:
        report = Path(scratch) / "report.json"
        launch = [sys.executable, "-S", "-c", _LAUNCHER, str(report), *command]
        with open(Path(scratch) / "err", "w+") as stderr:
            subprocess.run(launch, env=env, cwd=cwd, stdout=stdout, stderr=stderr, check=False)
            stdout.seek(0)
            stderr.seek(0)
            output, errors = stdout.read(), stderr.read()
        measured = json.loads(report.read_text()) if report.exists() else {"exit": "not started"}
    if measured["exit"] != 0:
        tail = "\n".join((errors or output).strip().splitlines()[-15:])
        raise BareCountError(f"{' '.join(command[:4])} … failed (exit {measured['exit']}):\n{tail}")
    return float(measured["wall"]), int(measured["maxrss"]) * 1024, output


def rows_by_step(database: Path) -> dict[str, int]:
    """Rows in the warehouse file, counted per step (raw with quarantine, gdp, kpi with published)."""
    rows: dict[str, int] = {}
    with duckdb.connect(str(database), read_only=True) as conn:
        tables = conn.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        for schema, table in tables:
            step = LAYER_OF_SCHEMA.get(schema)
            if step is not None:
                (count,) = conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()  # type: ignore[misc]
                rows[step] = rows.get(step, 0) + int(count)
    return rows


def reference(paths: ProjectPaths, sources: Path, work: Path) -> Measured:
    """The plain-DuckDB reference over `sources`, into a new DuckDB file in `work`."""
    database = work / "reference.duckdb"
    database.unlink(missing_ok=True)
    command = [sys.executable, "-m", "barecount.devtools.bench.reference", str(paths.root), str(sources), str(database)]
    wall, peak, stdout = _timed(command, dict(os.environ), paths.root)
    return Measured(wall, peak, steps=json.loads(stdout), rows=rows_by_step(database))


class BareCountWorkload:
    """`barecount run` as a user runs it, in a project copy with its own warehouse and Dagster home."""

    def __init__(self, project: ProjectPaths, work: Path, profile: str) -> None:
        self.project = project
        self.profile = profile
        self.work = work
        self.warehouse = work / "warehouse.duckdb"
        self.dagster_home = work / "dagster_home"

    def reset(self) -> None:
        """An empty warehouse and Dagster instance: every run starts from nothing, like the reference."""
        for path in (self.warehouse, self.warehouse.with_suffix(".duckdb.wal")):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.dagster_home, ignore_errors=True)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ) | {
            PROJECT_ROOT_ENV: str(self.project.root),
            WAREHOUSE_ENV: str(self.warehouse),
            DAGSTER_HOME_ENV: str(self.dagster_home),
            PROFILE_ENV: self.profile,
        }
        env.setdefault(PII_KEY_ENV, "bench-only-key")
        return env

    def floor(self, *first_and_last: str) -> Measured:
        """Dagster's floor (barecount/devtools/bench/floor.py): the same graph with bodies that do nothing, over
        every period, or one period, or a range (its first and last)."""
        command = [sys.executable, "-m", "barecount.devtools.bench.floor", str(self.project.root), *first_and_last]
        wall, peak, stdout = _timed(command, self._env(), self.project.root)
        return Measured(wall, peak, run_seconds=float(json.loads(stdout.strip().splitlines()[-1])["run_seconds"]))

    def run(self, *arguments: str) -> Measured:
        """`barecount run --force ARGUMENTS`, timed; steps from the run's Dagster event log."""
        command = [str(Path(sys.executable).with_name("barecount")), "run", "--force", *arguments]
        wall, peak, _ = _timed(command, self._env(), self.project.root)
        steps, run_seconds = self._latest_run_steps()
        steps["orchestration"] = max(wall - sum(steps.values()), 0.0)
        return Measured(wall, peak, steps=steps, rows=self.rows(), run_seconds=run_seconds)

    def rows(self) -> dict[str, int]:
        """The rows the run left, per step."""
        return rows_by_step(self.warehouse)

    def _latest_run_steps(self) -> tuple[dict[str, float], float]:
        # the project's dagster.yaml places the storage under $DAGSTER_HOME, as for every Dagster process
        os.environ[DAGSTER_HOME_ENV] = str(self.dagster_home)
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            (run,) = instance.get_runs(limit=1)
            records = instance.all_logs(run.run_id)
        # each asset's time, as `barecount run` reports it, summed by layer (a step computes many layers)
        fold = EventFold({})
        for record in records:
            fold.add(record)
        steps: dict[str, float] = {}
        for name, outcome in fold.outcomes.items():
            layer = LAYER_OF_SCHEMA.get(name.split("/", 1)[0], "other")
            steps[layer] = steps.get(layer, 0.0) + outcome.seconds
        return steps, records[-1].timestamp - records[0].timestamp
