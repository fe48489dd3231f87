"""Every `published.*` table as plain values, to compare a warehouse with what an earlier version of BareCount
published from the same sample data (tests/fixtures/published_before_layer_steps.json, scale 0.01, seed 0)."""

from __future__ import annotations

import datetime
import decimal
import json
import math
from collections.abc import Callable
from pathlib import Path

import duckdb

from barecount.warehouse import catalog
from barecount.warehouse.connection import Connection

PUBLISHED_BEFORE = Path(__file__).parent / "fixtures" / "published_before_layer_steps.json"
VOLATILE = frozenset({"published_at", "x_run_id", "x_ingested_at", "x_ingestion_date"})
"""Columns that say when and by which run a row was written, not what it holds."""

Table = dict[str, list[object]]


def _plain(value: object) -> object:
    return str(value) if isinstance(value, decimal.Decimal | datetime.date) else value


def published_values(warehouse: Path | Connection) -> dict[str, dict[str, list[object]]]:
    """Table -> {"columns": [...], "rows": [[...], ...]} for every published table, rows in order: of a DuckDB file, or
    of a connection to either engine."""
    if isinstance(warehouse, Path):
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            return published_values(conn)
    found: dict[str, dict[str, list[object]]] = {}
    for _, table in catalog.tables(warehouse, ["published"]):
        described = catalog.table_columns(warehouse, "published", table) or []
        columns = [c.name for c in described if c.name not in VOLATILE]
        listed = ", ".join(f'"{c}"' for c in columns)
        rows = warehouse.execute(f"SELECT {listed} FROM published.{table} ORDER BY ALL").fetchall()
        found[table] = {"columns": columns, "rows": [[_plain(v) for v in row] for row in rows]}
    return found


def _agree(x: object, y: object) -> bool:
    return math.isclose(x, y, rel_tol=1e-12) if isinstance(x, float) and isinstance(y, float) else x == y  # type: ignore[arg-type]


def differences(
    now: dict[str, dict[str, list[object]]],
    before: dict[str, dict[str, list[object]]],
    agree: Callable[[object, object], bool] = _agree,
) -> list[str]:
    """Where `now` differs from `before`, value by value as `agree` judges (by default doubles, averages summed in
    no fixed order, agree to 1e-12, and everything else is equal)."""
    found = [f"{t}: missing" for t in before if t not in now] + [f"{t}: new" for t in now if t not in before]
    for table in sorted(set(now) & set(before)):
        a, b = now[table], before[table]
        if a["columns"] != b["columns"] or len(a["rows"]) != len(b["rows"]):
            found.append(f"{table}: {a['columns']} x {len(a['rows'])} rows, before {b['columns']} x {len(b['rows'])}")
            continue
        for row, kept in zip(a["rows"], b["rows"], strict=True):
            same = all(agree(x, y) for x, y in zip(row, kept, strict=True))  # type: ignore[call-overload]
            if not same:
                found.append(f"{table}: {row} was {kept}")
    return found


def write(values: dict[str, dict[str, list[object]]], path: Path) -> None:
    """One row per line, so that a changed number shows as one changed line in review."""
    lines = ["{"]
    for i, (table, content) in enumerate(values.items()):
        rows = ",\n".join(f"    {json.dumps(r)}" for r in content["rows"])
        comma = "," if i < len(values) - 1 else ""
        lines.append(f' "{table}": {{"columns": {json.dumps(content["columns"])}, "rows": [\n{rows}\n  ]}}{comma}')
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load(path: Path = PUBLISHED_BEFORE) -> dict[str, dict[str, list[object]]]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
