"""The acceptance gate of a KPI: `thresholds` on kpi/<id>, judged period by period.

Bounds apply to every period. Changes are measured against the previous period and the same period of
the previous fiscal year (found through the fiscal calendar), but only against a baseline that is fully
covered by the data and did not itself fail the gate: one bad period must not fail its neighbours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from barecount.calendar import FiscalCalendar
from barecount.catalog.loader import LoadedSql
from barecount.evidence import holds, ledger
from barecount.pipeline.gates import GateVerdict, settle
from barecount.pipeline.scope import RunScope
from barecount.specs.kpi import KpiSpec
from barecount.sql.relation import in_list, quote_ident, sql_literal

THRESHOLD_CHECK = "thresholds"

Row = tuple[str, tuple[object, ...]]
"""(period, dimension values) of a KPI row."""


@dataclass(frozen=True)
class Verdict:
    period: str
    passed: bool
    detail: str


def _percent(change: float) -> str:
    return f"{abs(change):.1%} {'above' if change > 0 else 'below'}"


def judge_periods(
    spec: KpiSpec,
    calendar: FiscalCalendar,
    periods: Sequence[str],
    values: dict[Row, Decimal | float],
    coverage: dict[str, float],
    failed_before: set[str],
) -> list[Verdict]:
    """Each of `periods` (in calendar order) against the thresholds.

    `values` holds the KPI rows of the periods and of their baselines; `coverage` the share of days with
    data per period (absent: fully covered); `failed_before` the baselines that failed the gate earlier.
    """
    limits = spec.thresholds
    assert limits is not None
    minimum_share = spec.coverage.min_share if spec.coverage else 0.0
    failed = set(failed_before)
    rows_by_period: dict[str, dict[tuple[object, ...], Decimal | float]] = {}
    for (p, dims), v in values.items():  # grouped once: a scan of every value per period grows with its square
        rows_by_period.setdefault(p, {})[dims] = v
    verdicts = []
    for period in periods:
        problems: list[str] = []
        partial = coverage.get(period, 1.0) < minimum_share
        rows = rows_by_period.get(period, {})
        comparisons = [
            (calendar.previous(period).key, limits.max_change_vs_previous),
            (calendar.same_period_last_year(period).key, limits.max_change_vs_last_year),
        ]
        for dims, value in sorted(rows.items(), key=lambda item: str(item[0])):
            label = f"{value:,.2f}" + (f" for {', '.join(str(d) for d in dims)}" if dims else "")
            if limits.min is not None and float(value) < limits.min:
                problems.append(f"{label} is below the minimum {limits.min:g}")
            if limits.max is not None and float(value) > limits.max:
                problems.append(f"{label} is above the maximum {limits.max:g}")
            for baseline, allowed in comparisons:
                before = values.get((baseline, dims))
                usable = coverage.get(baseline, 1.0) >= minimum_share and baseline not in failed
                if partial or allowed is None or before is None or not usable or float(before) == 0:
                    continue
                change = float(value) / float(before) - 1
                if abs(change) > allowed:
                    problems.append(f"{label} is {_percent(change)} {baseline} (allowed {allowed:.0%})")
        if problems:
            failed.add(period)
            verdicts.append(Verdict(period, False, "; ".join(problems)))
        elif partial:
            verdicts.append(
                Verdict(period, True, f"partial period ({coverage[period]:.0%} of days have data): bounds only")
            )
        else:
            verdicts.append(Verdict(period, True, "within thresholds"))
    return verdicts


def coverage_shares(scope: RunScope, spec: KpiSpec, periods: Sequence[str]) -> dict[str, float]:
    """Period -> the share of its days that the KPI's input has rows for."""
    if spec.coverage is None or not periods:
        return {}
    table, column = spec.coverage.input.replace("/", "."), spec.coverage.date_column
    seen = scope.dates_seen.setdefault((table, column), {})
    unseen = [p for p in periods if p not in seen]
    if unseen:  # the thresholds ask for a few periods, the anomaly score for the series: each is counted once
        counted = dict(
            scope.conn.execute(
                f"SELECT fiscal_period, count(DISTINCT {quote_ident(column)}) FROM {table} "
                f"WHERE x_org_slug = {sql_literal(scope.org_slug)} AND fiscal_period IN {in_list(unseen)} GROUP BY 1"
            ).fetchall()
        )
        seen.update({period: int(counted.get(period, 0)) for period in unseen})
    # a period without rows has no share: it is not taken for a partial one
    return {p: seen[p] / scope.calendar.period(p).days for p in periods if seen[p]}


def evaluate_thresholds(scope: RunScope, item: LoadedSql, written: Sequence[str]) -> list[Verdict]:
    """Judge the partitions of kpi/<id> the run wrote (`written`, in calendar order)."""
    spec = item.spec
    assert isinstance(spec, KpiSpec)
    if not written:
        return []
    conn, calendar, org = scope.conn, scope.calendar, scope.org_slug
    wanted = sorted({k for p in written for k in (p, calendar.previous(p).key, calendar.same_period_last_year(p).key)})
    dims = ", ".join(quote_ident(d) for d in spec.dimensions)
    values: dict[Row, Decimal | float] = {}
    for row in conn.execute(
        f"SELECT fiscal_period, {quote_ident(spec.judged_measure)}{', ' + dims if dims else ''} "
        f"FROM kpi.{quote_ident(item.name)} "
        f"WHERE x_org_slug = {sql_literal(org)} AND fiscal_period IN {in_list(wanted)}"
    ).fetchall():
        if row[1] is not None:
            values[(str(row[0]), tuple(row[2:]))] = row[1]
    baselines = sorted(set(wanted) - set(written))
    failed_before = (
        {
            str(p)
            for p, passed in conn.execute(
                f"SELECT partition, arg_max(passed, checked_at) FROM {holds.GATE_RESULTS_TABLE} "
                "WHERE gate = ? AND asset = ? AND partition IN (SELECT unnest(?)) GROUP BY 1",
                [THRESHOLD_CHECK, item.asset_ref, baselines],
            ).fetchall()
            if not passed
        }
        if holds.gate_results_exist(conn)
        else set()
    )
    return judge_periods(spec, calendar, written, values, coverage_shares(scope, spec, wanted), failed_before)


def judge_thresholds(
    scope: RunScope, item: LoadedSql, written: Sequence[str], unchanged: Sequence[str] = ()
) -> GateVerdict:
    """`thresholds` on the partitions of kpi/<id> the run wrote, and on those it found unchanged whose baselines
    (the previous period, the same period last year) changed since their last verdict.

    Each verdict keeps the content hashes of the baselines it was judged against: a baseline rebuilt with other
    rows re-judges the period; one rebuilt with the same rows does not.
    """
    calendar = scope.calendar
    baselines = {k: (calendar.previous(k).key, calendar.same_period_last_year(k).key) for k in (*written, *unchanged)}
    content = ledger.latest_content_hashes(
        scope.conn, item.asset_ref, sorted({b for bs in baselines.values() for b in bs})
    )
    judged_against = {k: {b: content.get(b) for b in bs} for k, bs in baselines.items()}
    before = holds.judged_on(scope.conn, THRESHOLD_CHECK, item.asset_ref, list(unchanged), "baselines")
    rejudged = [k for k in unchanged if k not in before or json.loads(before[k]) != judged_against[k]]
    periods = scope.sort_keys({*written, *rejudged})
    verdicts = evaluate_thresholds(scope, item, periods)
    return settle(
        scope,
        THRESHOLD_CHECK,
        item.asset_ref,
        [(v.period, v.passed, v.detail) for v in verdicts],
        f"within the thresholds of {item.name}",
        {"failures": {v.period: v.detail for v in verdicts if not v.passed}},
        judged_on={v.period: {"baselines": judged_against[v.period]} for v in verdicts},
    )
