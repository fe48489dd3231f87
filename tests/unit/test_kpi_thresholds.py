"""KPI acceptance thresholds, judged period by period (the rules of the `thresholds` gate)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.pipeline.gates.thresholds import Verdict, judge_periods
from barecount.specs.kpi import KpiSpec

SPEC = KpiSpec.model_validate(
    {
        "id": "net_revenue",
        "version": "1.0.0",
        "status": "active",
        "label": "Net revenue",
        "description": "test",
        "owner": "team:test",
        "unit": "USD",
        "depends_on": ["gdp/order_lines"],
        "thresholds": {"min": 0, "max_change_vs_previous": 0.5, "max_change_vs_last_year": 0.5},
        "coverage": {"input": "gdp/order_lines", "date_column": "order_date", "min_share": 0.9},
    }
)


def _values(series: dict[str, float]) -> dict[tuple[str, tuple[object, ...]], Decimal | float]:
    return {(p, ()): Decimal(str(v)) for p, v in series.items()}


def test_one_bad_period_fails_alone(repo_paths: ProjectPaths) -> None:
    calendar = load_settings(repo_paths).calendar
    periods = ["FY1995-P02", "FY1995-P03", "FY1995-P04"]
    values = _values({"FY1994-P02": 100, "FY1994-P03": 100, "FY1994-P04": 100, "FY1995-P01": 100})
    values |= _values({"FY1995-P02": 110, "FY1995-P03": 300, "FY1995-P04": 105})
    verdicts = judge_periods(SPEC, calendar, periods, values, {}, set())
    assert [(v.period, v.passed) for v in verdicts] == [
        ("FY1995-P02", True),
        ("FY1995-P03", False),
        ("FY1995-P04", True),
    ]
    assert verdicts[1].detail == (
        "300.00 is 172.7% above FY1995-P02 (allowed 50%); 300.00 is 200.0% above FY1994-P03 (allowed 50%)"
    )


def test_bounds_partial_periods_and_failed_baselines(repo_paths: ProjectPaths) -> None:
    calendar = load_settings(repo_paths).calendar
    values = _values({"FY1995-P01": 10, "FY1995-P02": 100, "FY1995-P03": -1, "FY1994-P02": 100})
    coverage = {"FY1995-P01": 0.2}
    verdicts = judge_periods(SPEC, calendar, ["FY1995-P01", "FY1995-P02", "FY1995-P03"], values, coverage, set())
    assert verdicts == [
        Verdict("FY1995-P01", True, "partial period (20% of days have data): bounds only"),
        # a partial previous period is no baseline: +900% against it is not a failure
        Verdict("FY1995-P02", True, "within thresholds"),
        Verdict("FY1995-P03", False, "-1.00 is below the minimum 0; -1.00 is 101.0% below FY1995-P02 (allowed 50%)"),
    ]
    # a baseline that failed its own gate earlier is not compared with either
    again = judge_periods(
        SPEC, calendar, ["FY1995-P02"], _values({"FY1995-P01": 10, "FY1995-P02": 100}), {}, {"FY1995-P01"}
    )
    assert again == [Verdict("FY1995-P02", True, "within thresholds")]


def test_min_above_max_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"min \(5\) is greater than max \(1\)"):
        KpiSpec.model_validate({**SPEC.model_dump(), "thresholds": {"min": 5, "max": 1}})
