"""Anomaly scores on a KPI series: a seasonal baseline through the fiscal calendar, a robust score, and exactly the
outliers flagged; one anomaly does not make the same period next year look anomalous; a 53-week year's longer
last period is ordinary when the KPI is compared per day, and scores as an outlier when it is not."""

from __future__ import annotations

import random

from barecount.calendar import FiscalCalendar
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.pipeline.gates.anomaly import score_series
from barecount.specs.kpi import AnomalyRule

SEASON = {11: 1.3, 12: 1.7}
"""A retail year: the holiday periods sell more per day."""
SPIKES = {"FY2020-P05": 3.0, "FY2022-P12": 3.0, "FY2024-P02": 0.3}


def _daily_sales(calendar: FiscalCalendar, spikes: dict[str, float]) -> list[tuple[str, float]]:
    """Ten NRF fiscal years (FY2023 has 53 weeks) of a sum: growing 0.5% a period, seasonal, 3% noise."""
    noise = random.Random(7)
    series = []
    for n, period in enumerate(calendar.periods(2016, 2025)):
        per_day = 1000 * 1.005**n * SEASON.get(period.number, 1.0) * (1 + noise.gauss(0, 0.03))
        series.append((period.key, per_day * period.days * spikes.get(period.key, 1.0)))
    return series


def test_exactly_the_outliers_are_flagged_against_a_seasonal_baseline(repo_paths: ProjectPaths) -> None:
    calendar = load_settings(repo_paths).calendar
    assert (calendar.period("FY2022-P12").days, calendar.period("FY2023-P12").days) == (28, 35)  # the 53rd week
    scores = score_series(_daily_sales(calendar, SPIKES), AnomalyRule(per_day=True), calendar)
    assert {p for p, s in scores.items() if s.flagged} == set(SPIKES)
    # scored from the third year on (a year of baseline, a year of deviations), the holiday peaks included
    assert min(p for p, s in scores.items() if s.score is not None) == "FY2018-P01"
    assert all(scores[f"FY{y}-P12"].score is not None and not scores[f"FY{y}-P12"].flagged for y in (2019, 2021))
    spike = scores["FY2020-P05"]
    assert spike.score is not None and spike.score > 5 and spike.expected is not None
    assert 0.9 < spike.value / 3 / spike.expected < 1.1  # expected near what the period would have been
    assert scores["FY2024-P02"].score is not None and scores["FY2024-P02"].score < -5
    # the year after a spike is ordinary: its season comes from what the spike's period was expected to be
    assert scores["FY2021-P05"].season_from == "FY2020-P05" and not scores["FY2021-P05"].flagged
    assert scores["FY2023-P12"].season_from == "FY2022-P12" and not scores["FY2023-P12"].flagged


def test_a_longer_period_is_an_outlier_only_when_totals_are_compared(repo_paths: ProjectPaths) -> None:
    calendar = load_settings(repo_paths).calendar
    series = _daily_sales(calendar, {})
    per_day = score_series(series, AnomalyRule(per_day=True), calendar)
    assert not any(s.flagged for s in per_day.values())
    totals = score_series(series, AnomalyRule(per_day=False), calendar)
    assert "FY2023-P12" in {p for p, s in totals.items() if s.flagged}  # 5 weeks against last year's 4


def test_unscored_periods_say_why(repo_paths: ProjectPaths) -> None:
    calendar = load_settings(repo_paths).calendar
    scores = score_series(_daily_sales(calendar, {}), AnomalyRule(trailing_periods=6), calendar)
    assert scores["FY2016-P01"].unscored == "its baseline has 0 of 6 periods"
    assert scores["FY2016-P08"].unscored == "1 of 6 earlier deviations are known"
    assert scores["FY2017-P01"].score is not None
