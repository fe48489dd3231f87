"""Rows as people and programs read them: a table with its numbers formatted and right-aligned, one column per
line where a table would not fit the terminal, or CSV and JSON with the exact values."""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Literal, TypeGuard

from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from barecount.cli.console import out, print_json

RowFormat = Literal["table", "line", "csv", "json"]
Column = tuple[Sequence[str | Text], bool]
"""A column's cells (plain text, or rich Text to style one) and whether it holds numbers, to be right-aligned."""
MOST_PLACES = 6
UNBOUNDED = 1_000_000
"""A width to measure a table at: how wide it is with no cell wrapped."""


def _places(value: float | Decimal) -> int:
    """Two decimals, three significant digits below 1 (0.0498), never more than a decimal holds (its scale)."""
    magnitude = abs(value)
    places = 2 if magnitude >= 1 or magnitude == 0 else min(MOST_PLACES, 2 - math.floor(math.log10(magnitude)))
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        places = min(places, max(0, -exponent)) if isinstance(exponent, int) else places
    return places


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _is_fraction(value: object) -> TypeGuard[float | Decimal]:
    return isinstance(value, float | Decimal) and math.isfinite(value)


def format_column(values: Sequence[object]) -> Column:
    """A column's cells for people, and whether it holds numbers (to be right-aligned): integers with thousands
    separators, fractions to the same number of places down the column, NULL for a missing value."""
    present = [v for v in values if v is not None]
    numeric = bool(present) and all(_is_number(v) for v in present)
    places = max((_places(v) for v in present if _is_fraction(v)), default=0)
    cells: list[str | Text] = []
    for value in values:
        if value is None:
            cells.append("NULL")
        elif numeric and isinstance(value, int):
            cells.append(f"{value:,}")
        elif numeric and _is_fraction(value):
            cells.append(f"{value:,.{places}f}")
        else:
            cells.append(str(value))
    return cells, numeric


def _rows_of(columns: Sequence[Column]) -> Iterator[tuple[str | Text, ...]]:
    return zip(*(cells for cells, _ in columns), strict=True)


def _table(names: Sequence[str], columns: Sequence[Column], title: str | None) -> Table:
    table = Table(title=title, title_justify="left")
    for name, (_, numeric) in zip(names, columns, strict=True):
        table.add_column(name, justify="right" if numeric else "left")
    for row in _rows_of(columns):
        table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in row))  # a value is never markup
    return table


def print_lines(names: Sequence[str], columns: Sequence[Column]) -> None:
    """Each row as `column: value` lines, rows separated by a rule: for rows too wide for a table."""
    width = max((len(n) for n in names), default=0) + 1
    for number, row in enumerate(_rows_of(columns), start=1):
        out.rule(f"row {number}", align="left", style="dim")
        for name, cell in zip(names, row, strict=True):
            out.print(Text.assemble(f"{name + ':':<{width}} ", cell))


def print_columns(names: Sequence[str], columns: Sequence[Column], title: str | None = None) -> None:
    """A table of the columns or, if it would not fit the terminal without wrapping a cell, lines, saying so."""
    table = _table(names, columns, title)
    unwrapped = Measurement.get(out, out.options.update_width(UNBOUNDED), table).maximum
    if unwrapped <= out.width:
        out.print(table)
        return
    out.print(f"[dim]Too wide for the terminal ({unwrapped} > {out.width} characters): one column per line.[/]")
    if title:
        out.print(title)
    print_lines(names, columns)


def print_csv(names: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A header and the rows, values exact (NULL is an empty field)."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(["" if v is None else v for v in row] for row in rows)


def print_rows(names: Sequence[str], rows: Sequence[Sequence[object]], output: RowFormat, limit: int) -> None:
    """`rows` in the chosen format: a table or lines show the first `limit` (0: all), csv and json every row."""
    if output == "json":
        print_json([dict(zip(names, row, strict=True)) for row in rows])
        return
    if output == "csv":
        print_csv(names, rows)
        return
    shown = rows[:limit] if limit else rows
    columns = [format_column([row[i] for row in shown]) for i in range(len(names))]
    if output == "line":
        print_lines(names, columns)
    else:
        print_columns(names, columns)
    out.print(f"{len(rows)} row(s)" + (f", first {limit} shown" if limit and len(rows) > limit else ""))
