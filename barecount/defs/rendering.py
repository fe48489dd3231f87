"""Evidence as people read it in the Dagster UI: markdown tables for metadata that would otherwise be JSON."""

from collections.abc import Iterable, Sequence


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table of `rows`, or `none` when there are none (a table with no rows reads as broken)."""
    body = ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    if not body:
        return "none"
    return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers), *body])


def bounds(name: str, low: object | None, high: object | None) -> list[str]:
    """A range rule as a person reads it: `0 ≤ x ≤ 1`, `x ≥ 0`, `x ≤ 1`, or nothing without bounds."""
    if low is not None and high is not None:
        return [f"{low} ≤ {name} ≤ {high}"]
    if low is not None:
        return [f"{name} ≥ {low}"]
    return [f"{name} ≤ {high}"] if high is not None else []
