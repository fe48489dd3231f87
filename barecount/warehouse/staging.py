"""Rows made on this machine (source extracts on disk, the fiscal calendar, a system of record recomputed from
the extracts) as SQL the warehouse reads.

DuckDB reads them itself. BigQuery reads no local file, and plans a long list of literal rows slowly, so there
the SELECT runs on a scratch DuckDB and its rows are loaded into a `staging` table with one load job.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from barecount.warehouse.connection import Connection, on_bigquery


def staged(conn: Connection, name: str, local_sql: Callable[[duckdb.DuckDBPyConnection], str]) -> str:
    """A SELECT on `conn` of the rows of `local_sql(c)`, DuckDB SQL built for the DuckDB connection `c` (it may
    make temporary tables on it first); `name` names the staging table on BigQuery."""
    if not on_bigquery(conn):
        return local_sql(conn)  # type: ignore[arg-type]
    with duckdb.connect() as scratch:
        return f"SELECT * FROM {conn.stage(name, local_sql(scratch), scratch)}"
