"""What the warehouse holds, on either engine: its tables by layer, and a table's columns. DuckDB answers in SQL
(its catalog); BigQuery through its client (a dataset per layer), with types by their DuckDB names."""

from __future__ import annotations

from collections.abc import Sequence

from barecount.sql.relation import Column, sql_literal
from barecount.warehouse.connection import Connection, on_bigquery


def tables(conn: Connection, layers: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(layer, table) of the tables and views in `layers` (None: every layer), sorted."""
    if on_bigquery(conn):
        return conn.tables(layers)
    within = "" if layers is None else f" WHERE schema_name IN ({', '.join(sql_literal(x) for x in layers)})"
    rows = conn.execute(
        "SELECT * FROM (SELECT schema_name, table_name FROM duckdb_tables() "
        f"UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal){within} ORDER BY ALL"
    ).fetchall()
    return [(str(layer), str(name)) for layer, name in rows]


def table_columns(conn: Connection, schema: str, table: str) -> list[Column] | None:
    """A table's columns in order, or None when it does not exist."""
    if on_bigquery(conn):
        return conn.columns(schema, table)
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return [Column(str(r[0]), str(r[1])) for r in rows] or None
