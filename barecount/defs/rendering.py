"""Evidence as people read it in the Dagster UI: markdown tables for metadata that would otherwise be JSON."""

from collections.abc import Iterable, Sequence


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table of `rows`, or `none` when there are none (a table with no rows reads as broken)."""
    body = ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    if not body:
        return "none"
    return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers), *body])
