"""`anomaly`: how unusual each period of a KPI is against a seasonal baseline; a flag, never a hold.

A period's expected value is the median of the trailing periods (the level), moved by how far the same period
last year stood from the median of its own trailing periods (the season, found through the fiscal calendar, so
a 4-5-4 period meets the period of the same weeks). Its score is its distance from that expectation in robust
deviations: 1.4826 x the median absolute deviation of the earlier periods' distances from theirs, which one
earlier outlier cannot widen. Beyond ± the rule's threshold the period is flagged.

The series is scored from its start in calendar order, so a period's score depends only on the periods before
it, whichever run computes it. A flagged period enters later baselines, its season included, at its expected
value: one anomaly does not make its successors, nor the same period next year, look anomalous. A partial
period (see the KPI's `coverage`) is neither scored nor a baseline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median

from barecount.calendar import FiscalCalendar
from barecount.catalog.loader import LoadedSql
from barecount.evidence import holds
from barecount.evidence.holds import ANOMALY_GATE
from barecount.pipeline.gates import GateVerdict, Verdicts, settle
from barecount.pipeline.gates.thresholds import coverage_shares
from barecount.pipeline.scope import RunScope
from barecount.specs.kpi import AnomalyRule, KpiSpec
from barecount.sql.relation import quote_ident, sql_literal

ANOMALY_CHECK = ANOMALY_GATE
MAD_TO_SIGMA = 1.4826
"""Scales a median absolute deviation to a standard deviation's size for normal noise."""


@dataclass(frozen=True)
class Score:
    """One period of one series, scored (or why not)."""

    period: str
    value: float
    expected: float | None = None
    """In the value's own terms (the period's total when the rule compares per day)."""
    score: float | None = None
    flagged: bool = False
    season_from: str | None = None
    """The same period last year, when it moved the expectation."""
    unscored: str | None = None


def score_series(series: Sequence[tuple[str, float]], rule: AnomalyRule, calendar: FiscalCalendar) -> dict[str, Score]:
    """Period -> its score, for a series of fully covered periods in calendar order."""
    trailing = rule.trailing_periods
    clean: list[float] = []  # the baseline: a flagged period at its expected value
    position: dict[str, int] = {}
    residuals: list[float] = []
    scores: dict[str, Score] = {}
    for period, value in series:
        days = calendar.period(period).days if rule.per_day else 1
        x = value / days
        if len(clean) < trailing:
            scores[period] = Score(period, value, unscored=f"its baseline has {len(clean)} of {trailing} periods")
            x_clean = x
        else:
            expected = median(clean[-trailing:])
            season_from = calendar.same_period_last_year(period).key
            before = position.get(season_from, 0)
            if season_from in position and before >= trailing:
                expected += clean[before] - median(clean[before - trailing : before])
            else:
                season_from = None
            residual = x - expected
            if len(residuals) < trailing:
                scores[period] = Score(
                    period,
                    value,
                    expected * days,
                    season_from=season_from,
                    unscored=f"{len(residuals)} of {trailing} earlier deviations are known",
                )
                residuals.append(residual)
                x_clean = x
            else:
                window = residuals[-2 * trailing :]
                centre = median(window)
                spread = MAD_TO_SIGMA * median(abs(r - centre) for r in window)
                # a series that never deviated: any deviation is as far out as a number allows
                spread = spread or 1e-9 * max(abs(expected), 1.0)
                z = (residual - centre) / spread
                flagged = abs(z) > rule.threshold
                scores[period] = Score(period, value, (expected + centre) * days, z, flagged, season_from)
                if flagged:
                    x_clean = expected + centre
                else:
                    x_clean = x
                    residuals.append(residual)
        position[period] = len(clean)
        clean.append(x_clean)
    return scores


def narrative(spec: KpiSpec, score: Score, dims: tuple[object, ...]) -> str:
    """One sentence a finance reader can act on."""
    rule = spec.anomaly
    assert rule is not None
    what = f"{spec.label}{' for ' + ' / '.join(str(d) for d in dims) if dims else ''} in {score.period}"
    if score.score is None or score.expected is None:
        return f"{what} is not scored yet: {score.unscored}."
    baseline = f"the trailing {rule.trailing_periods} periods" + (
        f" and {score.season_from}" if score.season_from else ""
    )
    direction = "above" if score.score > 0 else "below"
    verdict = "an anomaly" if score.flagged else f"within ±{rule.threshold:g}"
    return (
        f"{what} is {score.value:,.2f} {spec.unit}, {abs(score.score):.1f} robust deviations {direction} the "
        f"{score.expected:,.2f} expected from {baseline}: {verdict}."
    )


def read_series(scope: RunScope, item: LoadedSql) -> dict[tuple[object, ...], list[tuple[str, float]]]:
    """Dimension values -> the KPI's scored measure per fully covered period, in calendar order."""
    spec = item.spec
    assert isinstance(spec, KpiSpec)
    dims = "".join(f", {quote_ident(d)}" for d in spec.dimensions)
    measure = quote_ident(spec.scored_measure)
    rows = scope.conn.execute(
        f"SELECT fiscal_period, {measure}{dims} FROM kpi.{quote_ident(item.name)} "
        f"WHERE x_org_slug = {sql_literal(scope.org_slug)} AND {measure} IS NOT NULL"
    ).fetchall()
    known = set(scope.partition_keys or [])
    periods = scope.sort_keys({str(r[0]) for r in rows if not known or str(r[0]) in known})
    shares = coverage_shares(scope, spec, periods)
    minimum = spec.coverage.min_share if spec.coverage else 0.0
    covered = {p for p in periods if shares.get(p, 1.0) >= minimum}
    order = {p: i for i, p in enumerate(periods)}
    series: dict[tuple[object, ...], list[tuple[str, float]]] = {}
    for period, value, *combination in sorted(rows, key=lambda r: order.get(str(r[0]), -1)):
        if str(period) in covered:
            series.setdefault(tuple(combination), []).append((str(period), float(value)))
    return series


def judge_anomalies(
    scope: RunScope, item: LoadedSql, written: Sequence[str], unchanged: Sequence[str] = ()
) -> GateVerdict:
    """`anomaly` on the partitions of kpi/<id> the run wrote, and on those it found unchanged whose score moved
    (an earlier period restated) since their last verdict. Non-blocking: a flagged period is still published if
    its blocking gates pass."""
    spec = item.spec
    assert isinstance(spec, KpiSpec) and spec.anomaly is not None
    scored = {
        dims: score_series(series, spec.anomaly, scope.calendar) for dims, series in read_series(scope, item).items()
    }
    asked = scope.sort_keys({*written, *unchanged})
    verdicts: dict[str, tuple[bool, str, dict[str, object]]] = {}
    for period in asked:
        found = [(dims, s[period]) for dims, s in sorted(scored.items(), key=lambda i: str(i[0])) if period in s]
        if not found:
            verdicts[period] = (True, f"{spec.label} in {period} is not scored: a partial period", {})
            continue
        flagged = [(dims, s) for dims, s in found if s.flagged]
        shown = flagged or found
        basis = {
            " / ".join(str(d) for d in dims) or "value": None if s.score is None else round(s.score, 2)
            for dims, s in found
        }
        verdicts[period] = (not flagged, " ".join(narrative(spec, s, dims) for dims, s in shown), basis)
    before = holds.judged_on(scope.conn, ANOMALY_CHECK, item.asset_ref, list(unchanged), "scores")
    rule = spec.anomaly.model_dump(mode="json")
    judged = [
        p
        for p in asked
        if p in written or p not in before or json.loads(before[p]) != {"rule": rule, "by": verdicts[p][2]}
    ]
    results: Verdicts = [(p, verdicts[p][0], verdicts[p][1]) for p in judged]
    single = _single(scored, results)
    return settle(
        scope,
        ANOMALY_CHECK,
        item.asset_ref,
        results,
        f"within ±{spec.anomaly.threshold:g} robust deviations of their seasonal baseline",
        {"flagged": {p: why for p, ok, why in results if not ok}, **single},
        judged_on={p: {"scores": {"rule": rule, "by": verdicts[p][2]}} for p in judged},
        blocking=False,
    )


def _single(scored: Mapping[tuple[object, ...], Mapping[str, Score]], results: Verdicts) -> dict[str, str]:
    """The score, baseline and narrative of a one-period, one-series verdict, as metadata entries of their own."""
    if len(results) != 1 or len(scored) != 1:
        return {}
    period, _, sentence = results[0]
    score = next(iter(scored.values())).get(str(period))
    if score is None or score.score is None or score.expected is None:
        return {"narrative": sentence}
    return {
        "score": f"{score.score:+.2f}",
        "expected": f"{score.expected:,.2f}",
        "baseline": f"the trailing periods' median{', moved by ' + score.season_from if score.season_from else ''}",
        "narrative": sentence,
    }
