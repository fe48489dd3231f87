"""Asset checks generated from stream manifests: the accounting gate on every raw asset.

Dagster evaluates a check once for a whole single-run range, so the gate's result is also written per
partition to `evidence.gate_results` (and the ledger), and the check's metadata names failing periods.
"""

import dagster as dg

from barecount.factories.common import asset_key
from barecount.ledger import ledger
from barecount.specs.loader import LoadedStream
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import quote_ident
from barecount.warehouse.writes import transaction

ACCOUNTING_CHECK = "rows_accounted"
GATE_RESULTS_TABLE = "evidence.gate_results"


def _ensure_gate_results(conn: object) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS evidence")  # type: ignore[attr-defined]
    conn.execute(  # type: ignore[attr-defined]
        f"CREATE TABLE IF NOT EXISTS {GATE_RESULTS_TABLE} (gate VARCHAR NOT NULL, asset VARCHAR NOT NULL, "
        "partition VARCHAR, run_id VARCHAR NOT NULL, passed BOOLEAN NOT NULL, detail VARCHAR NOT NULL, "
        "checked_at TIMESTAMP NOT NULL DEFAULT now())"
    )


def build_accounting_check(stream: LoadedStream) -> dg.AssetChecksDefinition:
    """`rows_accounted` on raw/<stream>: rows in = rows landed + rows quarantined, for every period written."""
    name = stream.spec.name
    key = asset_key(stream.asset_ref)
    period = "fiscal_period" if stream.spec.partitioned else "NULL"

    @dg.asset_check(
        asset=key,
        name=ACCOUNTING_CHECK,
        blocking=True,
        description=(
            f"Nothing lost at the door: for every period of raw.{name} written by the run, the rows read from the "
            f"extract equal the rows landed in raw.{name} plus the rows held in quarantine.{name}."
        ),
    )
    def rows_accounted(context: dg.AssetCheckExecutionContext, warehouse: DuckDBWarehouse) -> dg.AssetCheckResult:
        run_id = context.run.run_id
        with warehouse.get_connection() as conn, transaction(conn):
            counted = {}
            for schema in ("raw", "quarantine"):
                rows = conn.execute(
                    f"SELECT {period}, count(*) FROM {schema}.{quote_ident(name)} WHERE x_run_id = ? GROUP BY ALL",
                    [run_id],
                ).fetchall()
                counted[schema] = {p: int(n) for p, n in rows}
            written = [
                e
                for e in ledger.read_entries(conn, stream.asset_ref)
                if e.run_id == run_id and e.kind == "materialization"
            ]
            results = []
            for entry in written:
                f = entry.facts
                stored = (counted["raw"].get(entry.partition, 0), counted["quarantine"].get(entry.partition, 0))
                passed = f["rows_in"] == f["rows_landed"] + f["rows_quarantined"] and stored == (
                    f["rows_landed"],
                    f["rows_quarantined"],
                )
                detail = (
                    f"{f['rows_in']} in = {f['rows_landed']} landed + {f['rows_quarantined']} quarantined; "
                    f"tables hold {stored[0]} + {stored[1]}"
                )
                results.append((entry.partition, passed, detail))
            _ensure_gate_results(conn)
            conn.executemany(
                f"INSERT INTO {GATE_RESULTS_TABLE} (gate, asset, partition, run_id, passed, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(ACCOUNTING_CHECK, stream.asset_ref, p, run_id, ok, d) for p, ok, d in results],
            )
            ledger.append(
                conn,
                [
                    ledger.NewEntry(
                        "check", stream.asset_ref, p, run_id, {"check": ACCOUNTING_CHECK, "passed": ok, "detail": d}
                    )
                    for p, ok, d in results
                ],
            )
        failing = [p or "snapshot" for p, ok, _ in results if not ok]
        return dg.AssetCheckResult(
            passed=bool(results) and not failing,
            metadata={
                "partitions_checked": dg.MetadataValue.int(len(results)),
                "failing_partitions": dg.MetadataValue.json(failing),
                "rows_in": dg.MetadataValue.int(sum(int(e.facts["rows_in"]) for e in written)),
                "rows_quarantined": dg.MetadataValue.int(sum(int(e.facts["rows_quarantined"]) for e in written)),
            },
            description=f"{len(results) - len(failing)} of {len(results)} period(s) fully accounted for",
        )

    return rows_accounted
