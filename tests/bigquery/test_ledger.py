"""The evidence ledger on BigQuery: its tables made in the evidence dataset with their layout version, entries
chained inside the writer's transaction, and the chain verified there; an edit made directly in the
emulator's table is found."""

from __future__ import annotations

from barecount.evidence import LEDGER_TABLE, SCHEMA_VERSION, SCHEMA_VERSION_TABLE, ensure_evidence
from barecount.evidence.ledger import NewEntry, append, read_entries, verify
from barecount.warehouse.bigquery import BigQueryConnection
from barecount.warehouse.writes import transaction


def _entries(run_id: str) -> list[NewEntry]:
    return [
        NewEntry("materialization", "gdp/orders", period, run_id, {"rows": rows, "amount": "12.50"})
        for period, rows in (("FY1995-P01", 10), ("FY1995-P02", 12))
    ]


def test_the_chain_is_kept_and_verified_in_bigquery_and_an_edit_there_is_found(conn: BigQueryConnection) -> None:
    with transaction(conn):
        ensure_evidence(conn)
        append(conn, _entries("run-1"))
    append(conn, _entries("run-2"))
    assert conn.execute(f"SELECT max(version) FROM {SCHEMA_VERSION_TABLE}").fetchall() == [(SCHEMA_VERSION,)]
    entries = read_entries(conn)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert verify(entries) is None
    assert {e.dataset_id for e in conn.client.list_datasets()} >= {conn.dataset("evidence")}

    conn.execute(f"UPDATE {LEDGER_TABLE} SET facts = replace(facts, '12', '13') WHERE seq = 3")
    assert (
        verify(read_entries(conn))
        == "entry 3 (materialization gdp/orders FY1995-P01) was edited: its hash does not match its content"
    )
