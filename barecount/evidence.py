"""The `evidence` schema of the warehouse: the ledger, gate results, blocks, contract versions, run tokens."""

import duckdb

EVIDENCE_SCHEMA = "evidence"


def evidence_table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether `evidence.<table>` exists yet (readers must not create it: they may be read-only)."""
    found = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [EVIDENCE_SCHEMA, table],
    ).fetchone()
    return bool(found and found[0])
