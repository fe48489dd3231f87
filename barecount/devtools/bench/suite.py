"""The benchmark: per scale, the reference and BareCount's forced single-run backfill; then partition scaling."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from barecount.config.profiles import Settings
from barecount.devtools.bench.workloads import BareCountWorkload, Measured, Spread, reference
from barecount.devtools.sample_data import generate_sample_data, read_manifest

STEPS = ("raw", "gdp", "kpi")
"""The work both sides do; BareCount's checks count for their asset's step, publishing for kpi."""
SCALING_PERIODS = 12
"""The middle point of the partition scaling."""
ONE_AT_A_TIME = 4
"""Periods also run one per command: each pays the whole start-up, so a few show the cost per period."""
VERSIONS = ("barecount", "dagster", "duckdb", "pandera", "pydantic", "sqlglot")

Progress = Callable[[str], None]


@dataclass
class StepResult:
    """One step (or the total) of one workload at one scale, over the repeats."""

    seconds: Spread
    rows: int
    rows_per_second: float


@dataclass
class WorkloadResult:
    steps: dict[str, StepResult]
    total: StepResult
    peak_rss_mb: Spread
    run_seconds: Spread | None = None


@dataclass
class ScaleResult:
    scale: float
    periods: int
    reference: WorkloadResult
    barecount: WorkloadResult
    ratios: dict[str, float]
    """BareCount / reference, by step and in total (medians)."""
    dagster_floor: WorkloadResult | None = None
    """The same graph and periods with bodies that do nothing: what Dagster alone costs."""


@dataclass
class ScalingRun:
    periods: int
    runs: int
    run_seconds: float
    """Inside the Dagster run(s): no process start-up."""
    wall: float


@dataclass
class ScalingResult:
    scale: float
    runs: list[ScalingRun]
    per_extra_partition_ms: float
    """(all periods in one run - one period) / (all - 1), inside the run."""
    per_extra_partition_overhead_ms: float
    """The same less the reference's work per period (its SQL time over the periods): what BareCount adds."""
    one_at_a_time_ms: float
    """Per period, run one at a time (each its own command), wall."""
    floor_per_extra_partition_ms: float
    """Dagster's floor (hollow bodies) per extra partition in one run: (all periods - one) / (all - 1), inside the
    run. What no body, however quick, can take away from `per_extra_partition_ms`."""
    floor_one_period_ms: float
    """Dagster's floor for one period, wall from process start: the least a one-period command can take."""


@dataclass
class BenchRecord:
    """When a bench ran, on which machine, with which versions: the head of every report."""

    created: str = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0).isoformat())
    machine: dict[str, str] = field(default_factory=lambda: machine())
    versions: dict[str, str] = field(default_factory=lambda: versions())


@dataclass
class BenchReport(BenchRecord):
    repeat: int = 1
    scales: list[ScaleResult] = field(default_factory=list)
    scaling: ScalingResult | None = None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def sql_work(reference: WorkloadResult) -> float:
    """The reference's SQL work (the median of each step, summed, no process start-up): what ratios divide by."""
    return sum(reference.steps[s].seconds.median for s in STEPS)


def _step(seconds: list[float], rows: int) -> StepResult:
    spread = Spread.of(seconds)
    return StepResult(spread, rows, rows / spread.median if spread.median else 0.0)


def _workload(measured: list[Measured], steps: tuple[str, ...]) -> WorkloadResult:
    last = measured[-1]
    by_step = {s: _step([m.steps.get(s, 0.0) for m in measured], last.rows.get(s, 0)) for s in steps}
    total_rows = sum(last.rows.values())
    return WorkloadResult(
        steps=by_step,
        total=_step([m.wall for m in measured], total_rows),
        peak_rss_mb=Spread.of([m.peak_rss / 2**20 for m in measured]),
        run_seconds=Spread.of([m.run_seconds for m in measured if m.run_seconds is not None])
        if any(m.run_seconds is not None for m in measured)
        else None,
    )


def machine() -> dict[str, str]:
    """Cores, memory and system of this machine, for the record."""
    memory = "?"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f"{total_kb / 2**20:.1f} GiB"
    return {
        "cores": str(os.cpu_count()),
        "memory": memory,
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in VERSIONS}


def sample_sources(settings: Settings, work: Path, scale: float, progress: Progress) -> Path:
    """TPC-H sample data at `scale` under `work`, made once and reused while its manifest matches."""
    target = work / f"sf{scale:g}" / "sources"
    manifest = read_manifest(target)
    if manifest is None or manifest.scale != scale or manifest.scenarios.any:
        progress(f"generating TPC-H SF{scale:g} sample data")
        generate_sample_data(target, scale, seed=0, calendar=settings.calendar)
    return target


def run_bench(
    settings: Settings,
    work: Path,
    scales: list[float],
    repeat: int,
    scaling: bool,
    progress: Progress,
) -> BenchReport:
    """Measure every scale `repeat` times, then (at the first scale) the cost per partition."""
    report = BenchReport(repeat=repeat)
    for scale in scales:
        sources = sample_sources(settings, work, scale, progress)
        target = work / f"sf{scale:g}" / "project"
        shutil.rmtree(target, ignore_errors=True)
        project = settings.paths.copy_to(target, sources)
        barecount = BareCountWorkload(project, work / f"sf{scale:g}", settings.profile.name)
        references, runs, floors = [], [], []
        for attempt in range(1, repeat + 1):
            progress(f"SF{scale:g} {attempt}/{repeat}: plain DuckDB reference")
            references.append(reference(settings.paths, sources, work / f"sf{scale:g}"))
            progress(f"SF{scale:g} {attempt}/{repeat}: barecount run --force (every asset and check, every period)")
            barecount.reset()
            runs.append(barecount.run())
            progress(f"SF{scale:g} {attempt}/{repeat}: Dagster's floor (the same graph, bodies that do nothing)")
            barecount.reset()
            floors.append(barecount.floor())
        ours, theirs = _workload(runs, (*STEPS, "orchestration")), _workload(references, STEPS)
        ratios = {s: ours.steps[s].seconds.median / theirs.steps[s].seconds.median for s in STEPS}
        # the reference's total is its SQL work (no process start-up); BareCount's is what a user waits for
        reference_work = sql_work(theirs)
        ratios["total"] = ours.total.seconds.median / reference_work
        periods = read_manifest(sources).periods()  # type: ignore[union-attr]
        report.scales.append(ScaleResult(scale, len(periods), theirs, ours, ratios, _workload(floors, ())))
        if scaling and report.scaling is None:
            report.scaling = _scaling(barecount, periods, runs, floors, progress, scale, reference_work / len(periods))
    return report


def _scaling(
    barecount: BareCountWorkload,
    periods: list[str],
    full: list[Measured],
    full_floors: list[Measured],
    progress: Progress,
    scale: float,
    work_per_period: float,
) -> ScalingResult:
    middle = periods[: min(SCALING_PERIODS, len(periods))]
    points: list[ScalingRun] = []
    for chosen in ([periods[0]], middle):
        progress(f"SF{scale:g} scaling: {len(chosen)} period(s) in one run")
        barecount.reset()
        measured = barecount.run("--from", chosen[0], "--to", chosen[-1])
        points.append(ScalingRun(len(chosen), 1, measured.run_seconds or 0.0, measured.wall))
    whole = statistics.median(m.run_seconds or 0.0 for m in full)
    points.append(ScalingRun(len(periods), 1, whole, statistics.median(m.wall for m in full)))
    barecount.reset()
    one_by_one: list[Measured] = []
    singles = periods[:ONE_AT_A_TIME]
    for index, key in enumerate(singles, 1):
        progress(f"SF{scale:g} scaling: one period at a time, {index}/{len(singles)}")
        one_by_one.append(barecount.run("--period", key))
    points.append(
        ScalingRun(
            len(singles),
            len(singles),
            sum(m.run_seconds or 0.0 for m in one_by_one),
            sum(m.wall for m in one_by_one),
        )
    )
    progress(f"SF{scale:g} scaling: Dagster's floor for one period")
    barecount.reset()
    floor_one = barecount.floor(periods[0])
    first, last = points[0], points[2]
    extra = max(last.periods - first.periods, 1)
    per_extra = (last.run_seconds - first.run_seconds) / extra
    floor_all = statistics.median(m.run_seconds or 0.0 for m in full_floors)
    return ScalingResult(
        scale,
        points,
        per_extra * 1000,
        (per_extra - work_per_period) * 1000,
        points[3].wall / len(singles) * 1000,
        (floor_all - (floor_one.run_seconds or 0.0)) / extra * 1000,
        floor_one.wall * 1000,
    )
