"""`barecount bench` on a BigQuery profile: the same forced runs (one period, then several in one run) on the
profile's BigQuery and on the local DuckDB file, with what BigQuery's jobs cost: jobs per run, per period and per
extra period. On BigQuery every job is a round trip, so the job count is what batching must bring down.

Jobs are counted by BigQuery itself (the jobs created since the run began, as `jobs.list` returns them), not by
BareCount's own accounting, which the run's materialization metadata and ledger already carry. On the emulator
profile each run starts from an empty emulator, held by the bench for the length of the run; on a cloud project,
runs overwrite the profile's datasets (forced) and the jobs are the caller's own, so nothing else should run
under the same account meanwhile.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from google.cloud import bigquery
from rich.table import Table

from barecount.config.profiles import DEFAULT_PROFILE, Settings, load_settings
from barecount.defs.bigquery_resource import build_bigquery_warehouse
from barecount.devtools.bench.suite import BenchRecord, sample_sources
from barecount.devtools.bench.workloads import BareCountWorkload
from barecount.devtools.sample_data import read_manifest
from barecount.warehouse.bigquery import JobCosts, bigquery_client
from barecount.warehouse.bigquery_emulator import EMULATOR_PYTHON_ENV, emulator_python, holding_emulator

JOBS_PAGE = 100_000
"""Jobs asked for per page of the job list: more than a run makes (see `jobs_since`)."""
Progress = Callable[[str], None]


@dataclass
class ProfileRun:
    """One forced `barecount run` of `periods` periods, on DuckDB and on BigQuery."""

    periods: int
    duckdb_wall: float
    duckdb_run_seconds: float
    bigquery_wall: float
    bigquery_run_seconds: float
    jobs: JobCosts


@dataclass
class BigQueryBenchReport(BenchRecord):
    profile: str = ""
    warehouse: str = ""
    scale: float = 0.0
    runs: list[ProfileRun] = field(default_factory=list)

    @property
    def jobs_per_period(self) -> float:
        """Jobs of the larger run over its periods."""
        last = self.runs[-1]
        return last.jobs.jobs / last.periods

    @property
    def jobs_per_extra_period(self) -> float:
        """What one more period adds to a run: (larger run - one period) / (its periods - 1)."""
        first, last = self.runs[0], self.runs[-1]
        return (last.jobs.jobs - first.jobs.jobs) / max(last.periods - first.periods, 1)

    def as_json(self) -> dict[str, object]:
        return asdict(self) | {
            "jobs_per_period": self.jobs_per_period,
            "jobs_per_extra_period": self.jobs_per_extra_period,
        }


def jobs_since(client: bigquery.Client, began: datetime) -> JobCosts:
    """The jobs this account created in the client's project since `began`."""
    count = JobCosts()
    # the emulator returns one page without a token for the next, however many jobs it has, and ignores the
    # least creation time: ask for pages larger than a run makes and filter here (BigQuery does both itself)
    for job in client.list_jobs(min_creation_time=began, page_size=JOBS_PAGE):
        if job.created is None or job.created < began.replace(microsecond=began.microsecond // 1000 * 1000):
            continue
        if job.job_type == "load":
            count.loads += 1
        elif isinstance(job, bigquery.QueryJob):
            count.add(job)
    return count


class BigQueryWorkload(BareCountWorkload):
    """`barecount run` on the BigQuery profile `profile` of a project copy, its jobs counted."""

    def __init__(self, settings: Settings, work: Path, emulator_python: Path) -> None:
        super().__init__(settings.paths, work, settings.profile.name)
        self.settings = settings
        self.emulator_python = emulator_python
        """The project's emulator environment (the copy under test has none of its own)."""

    def _env(self) -> dict[str, str]:
        return super()._env() | {EMULATOR_PYTHON_ENV: str(self.emulator_python)}

    @contextmanager
    def _client(self) -> Iterator[bigquery.Client]:
        """A client of the profile's BigQuery; on the emulator profile, an empty emulator held meanwhile."""
        target = self.settings.bigquery
        if not target.emulator:
            with build_bigquery_warehouse(self.settings).get_client() as client:
                yield client
            return
        shutil.rmtree(self.settings.emulator_dir, ignore_errors=True)
        with holding_emulator(self.emulator_python, self.settings.emulator_dir, target.project) as endpoint:
            yield bigquery_client(target.project, target.location, endpoint)

    def counted_run(self, *arguments: str) -> tuple[float, float, JobCosts]:
        """`barecount run --force ARGUMENTS` on BigQuery: wall, run seconds and the jobs it made."""
        self.reset()
        with self._client() as client:
            began = datetime.now(UTC)
            measured = self.run(*arguments)
            return measured.wall, measured.run_seconds or 0.0, jobs_since(client, began)

    def rows(self) -> dict[str, int]:
        return {}  # the rows are in BigQuery; the DuckDB side of the bench counts the same ones


def run_bigquery_bench(
    settings: Settings, work: Path, scale: float, periods: int, progress: Progress
) -> BigQueryBenchReport:
    """One period and then `periods` periods in one run, forced, on DuckDB and on the profile's BigQuery."""
    sources = sample_sources(settings, work, scale, progress)
    target = work / f"sf{scale:g}" / "project-bigquery"
    shutil.rmtree(target, ignore_errors=True)
    project = settings.paths.copy_to(target, sources)
    copied = load_settings(project, settings.profile.name)
    local = BareCountWorkload(project, work / f"sf{scale:g}", DEFAULT_PROFILE)
    remote = BigQueryWorkload(copied, work / f"sf{scale:g}" / "bigquery", emulator_python(settings.paths.root))
    known = read_manifest(sources).periods()  # type: ignore[union-attr]
    report = BigQueryBenchReport(
        profile=settings.profile.name,
        warehouse=copied.warehouse_shown,
        scale=scale,
    )
    for chosen in (known[:1], known[: max(periods, 2)]):
        span = ("--from", chosen[0], "--to", chosen[-1])
        progress(f"SF{scale:g}: {len(chosen)} period(s) in one run on DuckDB")
        local.reset()
        on_duckdb = local.run(*span)
        progress(f"SF{scale:g}: {len(chosen)} period(s) in one run on {copied.warehouse_shown}")
        wall, run_seconds, jobs = remote.counted_run(*span)
        duckdb_seconds = on_duckdb.run_seconds or 0.0
        report.runs.append(ProfileRun(len(chosen), on_duckdb.wall, duckdb_seconds, wall, run_seconds, jobs))
    return report


def _rows(report: BigQueryBenchReport) -> list[list[str]]:
    return [
        [
            str(run.periods),
            f"{run.duckdb_wall:.1f}",
            f"{run.bigquery_wall:.1f}",
            f"{run.bigquery_wall / run.duckdb_wall:.1f}x",
            f"{run.jobs.queries:,}",
            f"{run.jobs.loads:,}",
            f"{run.jobs.jobs / run.periods:,.0f}",
            f"{run.jobs.bytes_processed:,}",
            f"{run.jobs.bytes_billed:,}",
        ]
        for run in report.runs
    ]


HEADINGS = (
    "periods in the run",
    "DuckDB wall (s)",
    "BigQuery wall (s)",
    "ratio",
    "queries",
    "loads",
    "jobs per period",
    "bytes processed",
    "bytes billed",
)


def bigquery_table(report: BigQueryBenchReport) -> Table:
    table = Table(*HEADINGS, title=f"SF{report.scale:g}: {report.warehouse} against the local DuckDB file")
    for row in _rows(report):
        table.add_row(*row)
    return table


def bigquery_markdown(report: BigQueryBenchReport, command: str) -> str:
    lines = [
        f"# BareCount on BigQuery: {report.profile}",
        "",
        f"`{command}`, {report.created}. Machine: cores {report.machine['cores']}, memory {report.machine['memory']}, "
        f"{report.machine['system']}. Versions: "
        + ", ".join(f"{name} {version}" for name, version in report.versions.items())
        + ".",
        "",
        f"Forced runs of TPC-H SF{report.scale:g}, every asset and check, on {report.warehouse} and on the local "
        "DuckDB file; jobs as BigQuery lists them.",
        "",
        "| " + " | ".join(HEADINGS) + " |",
        "|" + "---|" * len(HEADINGS),
        *("| " + " | ".join(row) + " |" for row in _rows(report)),
        "",
        f"Jobs per period (the larger run): {report.jobs_per_period:,.0f}. "
        f"Jobs per extra period in one run: {report.jobs_per_extra_period:,.0f}.",
        "",
    ]
    return "\n".join(lines)
