"""How the CLI writes values for people: numbers formatted down a column, a series as a sparkline."""

from __future__ import annotations

import math
from decimal import Decimal

from barecount.cli.kpi_cmd import sparkline
from barecount.cli.tabular import format_column


def test_numbers_are_formatted_to_the_same_places_down_a_column() -> None:
    assert format_column([1234567, None, -5]) == (["1,234,567", "NULL", "-5"], True)
    # money: two places; a small fraction: three significant digits; a decimal never beyond its scale
    assert format_column([Decimal("24129928.0813"), Decimal("12.50")]) == (["24,129,928.08", "12.50"], True)
    assert format_column([0.04981, 12.0]) == (["0.0498", "12.0000"], True)
    assert format_column([Decimal("0.05"), Decimal("1.25")]) == (["0.05", "1.25"], True)
    assert format_column([Decimal("7"), Decimal("1200")]) == (["7", "1,200"], True)
    assert format_column([0.0, math.nan]) == (["0.00", "nan"], True)
    assert format_column([True, False]) == (["True", "False"], False)  # a flag is no number
    assert format_column(["FY1995-P01", None]) == (["FY1995-P01", "NULL"], False)


def test_a_series_is_drawn_from_its_lowest_to_its_highest_value() -> None:
    assert sparkline([2.0, 3.0, 1.0, 4.0]) == "▃▆▁█"
    assert sparkline([5.0, None, 5.0]) == "▄ ▄"
    assert sparkline([]) == ""
