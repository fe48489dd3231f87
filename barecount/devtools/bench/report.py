"""The benchmark's report: rich tables for the terminal, markdown for `bench/results.md`, targets checked."""

from __future__ import annotations

from rich.table import Table

from barecount.devtools.bench.suite import STEPS, BenchReport, ScaleResult, StepResult, sql_work
from barecount.devtools.bench.workloads import Spread

TARGET_RATIO = {0.1: 2.0, 1.0: 1.3}
"""BareCount's whole run over the reference's SQL work, all periods, by scale (other scales: the nearest)."""
TARGET_PER_PARTITION_MS = 30.0
"""Per extra partition in one run, over the reference's work per period."""
ONE_PERIOD_SCALE = 0.1
"""One period, wall time from process start, may take at most the reference's whole run at this scale."""


def target_ratio(scale: float) -> float:
    return TARGET_RATIO[min(TARGET_RATIO, key=lambda s: abs(s - scale))]


def _spread(spread: Spread) -> str:
    if spread.low == spread.high:
        return f"{spread.median:.2f}"
    return f"{spread.median:.2f} ({spread.low:.2f}-{spread.high:.2f})"


def _rate(step: StepResult) -> str:
    return f"{step.rows_per_second:,.0f}" if step.rows else "-"


def _scale_rows(result: ScaleResult) -> list[list[str]]:
    rows = []
    for step in (*STEPS, "orchestration"):
        ours = result.barecount.steps[step]
        theirs = result.reference.steps.get(step)
        rows.append(
            [
                step,
                _spread(theirs.seconds) if theirs else "-",
                _spread(ours.seconds),
                f"{result.ratios[step]:.2f}x" if step in result.ratios else "-",
                f"{ours.rows:,}" if ours.rows else "-",
                _rate(theirs) if theirs else "-",
                _rate(ours),
            ]
        )
    reference_work = sql_work(result.reference)
    rows.append(
        [
            "total",
            f"{reference_work:.2f}",
            _spread(result.barecount.total.seconds),
            f"{result.ratios['total']:.2f}x",
            f"{result.barecount.total.rows:,}",
            f"{result.reference.total.rows / reference_work:,.0f}",
            _rate(result.barecount.total),
        ]
    )
    rows.append(
        [
            "peak memory (MB)",
            _spread(result.reference.peak_rss_mb),
            _spread(result.barecount.peak_rss_mb),
            f"{result.barecount.peak_rss_mb.median / result.reference.peak_rss_mb.median:.2f}x",
            "",
            "",
            "",
        ]
    )
    return rows


SCALE_HEADER = ("step", "reference (s)", "barecount (s)", "ratio", "rows", "reference rows/s", "barecount rows/s")
SCALING_HEADER = ("periods", "runs", "inside the run(s) (s)", "wall (s)")


def _scaling_rows(report: BenchReport) -> list[list[str]]:
    assert report.scaling is not None
    return [[str(r.periods), str(r.runs), f"{r.run_seconds:.2f}", f"{r.wall:.2f}"] for r in report.scaling.runs]


def _verdict(measured: float, wanted: float, least: float | None) -> str:
    """met (at most `wanted`) or missed; a target below what Dagster alone costs (`least`) is said to be so."""
    if measured <= wanted:
        return "met"
    return "missed: below Dagster's floor" if least is not None and least > wanted else "missed"


TARGETS_HEADER = ("target", "wanted", "least possible on Dagster", "measured", "")


def _targets(report: BenchReport) -> list[list[str]]:
    """Each target with the least any run on Dagster could measure: Dagster's floor (the same graph with bodies
    that do nothing) plus, for ratios, the reference's own SQL work, which BareCount does too."""
    rows = []
    for result in report.scales:
        ratio, wanted = result.ratios["total"], target_ratio(result.scale)
        peak, their_peak = result.barecount.peak_rss_mb.median, result.reference.peak_rss_mb.median
        work = sql_work(result.reference)
        floor = result.dagster_floor
        least_ratio = (floor.total.seconds.median + work) / work if floor else None
        least_peak = max(floor.peak_rss_mb.median, their_peak) if floor else None
        rows.append([f"SF{result.scale:g} total ratio", f"≤ {wanted}x",
                     f"{least_ratio:.2f}x (floor + the reference's work)" if least_ratio else "-", f"{ratio:.2f}x",
                     _verdict(ratio, wanted, least_ratio)])  # fmt: skip
        rows.append([f"SF{result.scale:g} peak memory", f"≤ {their_peak:,.0f} MB (the reference's)",
                     f"{least_peak:,.0f} MB (the larger of the floor's and the reference's)" if least_peak else "-",
                     f"{peak:,.0f} MB", _verdict(peak, their_peak, least_peak)])  # fmt: skip
        if floor is not None:
            ours = result.barecount.total.seconds.median
            rows.append([f"SF{result.scale:g} Dagster's floor (hollow bodies)", "-", "-",
                         f"{floor.total.seconds.median:.2f} s of {ours:.2f} s "
                         f"({floor.total.seconds.median / ours:.0%})", "measured"])  # fmt: skip
    if report.scaling is not None:
        scaling = report.scaling
        per, least_per = scaling.per_extra_partition_overhead_ms, scaling.floor_per_extra_partition_ms
        rows.append(["per extra partition (overhead)", f"≤ {TARGET_PER_PARTITION_MS:g} ms",
                     f"{least_per:.0f} ms (the floor's)", f"{per:.0f} ms",
                     _verdict(per, TARGET_PER_PARTITION_MS, least_per)])  # fmt: skip
        base = next((r for r in report.scales if r.scale == ONE_PERIOD_SCALE), None)
        one, least_one = scaling.one_at_a_time_ms / 1000, scaling.floor_one_period_ms / 1000
        if base is not None:
            whole = base.reference.total.seconds.median
            rows.append(["one period, wall from process start", f"≤ {whole:.2f} s (reference, SF{ONE_PERIOD_SCALE:g})",
                         f"{least_one:.2f} s (the floor's)", f"{one:.2f} s",
                         _verdict(one, whole, least_one)])  # fmt: skip
    return rows


def tables(report: BenchReport) -> list[Table]:
    """The report for the terminal."""
    shown = []
    for result in report.scales:
        table = Table(*SCALE_HEADER, title=f"TPC-H SF{result.scale:g}, {result.periods} periods, "
                      f"median of {report.repeat}", title_justify="left")  # fmt: skip
        for row in _scale_rows(result):
            table.add_row(*row)
        shown.append(table)
    if report.scaling is not None:
        table = Table(*SCALING_HEADER, title=f"Partitions in one run (SF{report.scaling.scale:g}): "
                      f"{report.scaling.per_extra_partition_ms:.0f} ms per extra partition "
                      f"({report.scaling.per_extra_partition_overhead_ms:.0f} ms over the work); one at a time "
                      f"{report.scaling.one_at_a_time_ms:.0f} ms per period", title_justify="left")  # fmt: skip
        for row in _scaling_rows(report):
            table.add_row(*row)
        shown.append(table)
    targets = Table(*TARGETS_HEADER, title="Targets", title_justify="left")
    for row in _targets(report):
        targets.add_row(*row)
    shown.append(targets)
    return shown


def _markdown_table(header: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: BenchReport, command: str) -> str:
    """`bench/results.md`: the numbers, the machine and the versions they were measured with."""
    parts = [
        "# BareCount benchmark",
        "",
        f"Measured {report.created} with `{command}` (median of {report.repeat}; min-max in brackets).",
        "The reference is the same work as hand-written DuckDB SQL (barecount/devtools/bench/reference.py); its total "
        "is the SQL work alone. BareCount's total is `barecount run --force` over every asset, check and period in one "
        "single-run backfill, from process start to exit, on an empty warehouse and Dagster instance. Checks count for "
        "their asset's step, published KPIs for kpi; orchestration is the rest of the wall time (process start, "
        "definitions, run creation, between steps). Peak memory is the largest resident set of the measured process.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in report.machine.items()) + ".",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()) + ".",
    ]
    for result in report.scales:
        parts += ["", f"## TPC-H SF{result.scale:g} ({result.periods} periods)", ""]
        parts.append(_markdown_table(SCALE_HEADER, _scale_rows(result)))
    if report.scaling is not None:
        scaling = report.scaling
        parts += [
            "",
            f"## Partitions (SF{scaling.scale:g})",
            "",
            f"Per extra partition in one run: {scaling.per_extra_partition_ms:.0f} ms (all periods minus one, "
            f"inside the run), of which {scaling.per_extra_partition_overhead_ms:.0f} ms is more than the "
            "reference's work per period. One period at a time: "
            f"{scaling.one_at_a_time_ms:.0f} ms per period (wall, each its own command). Dagster's floor: "
            f"{scaling.floor_per_extra_partition_ms:.0f} ms per extra partition, {scaling.floor_one_period_ms:.0f} ms "
            "for one period (wall).",
            "",
            _markdown_table(SCALING_HEADER, _scaling_rows(report)),
        ]
    parts += ["", "## Targets", "", _markdown_table(TARGETS_HEADER, _targets(report)), ""]
    return "\n".join(parts)
