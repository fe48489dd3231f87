"""What applications read of the published KPIs (the service's `/kpis` endpoints): the catalog of KPIs with their
versions and owners, the published values per period with their gate verdicts and ledger hashes, and a period's
trace back to the source files. Reads only: the published tables and the evidence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from barecount.catalog.loader import ProjectSpecs
from barecount.errors import UsageError
from barecount.evidence import ledger
from barecount.evidence.trace import trace
from barecount.evidence.verdicts import latest_verdicts
from barecount.pipeline.build import gates_of
from barecount.specs.common import owner_ref
from barecount.specs.kpi import KpiSpec
from barecount.sql.relation import PARTITION_COLUMN, quote_ident
from barecount.warehouse.catalog import tables
from barecount.warehouse.connection import Connection


def kpi_catalog(specs: ProjectSpecs) -> list[dict[str, Any]]:
    """Every published KPI: its active version, owner, unit, definition, gates, and every version declared."""
    versions: dict[str, list[dict[str, str]]] = {}
    for item in specs.kpis:
        assert isinstance(item.spec, KpiSpec)
        versions.setdefault(item.spec.id, []).append({"version": item.spec.version, "status": item.spec.status})
    return [
        {
            "kpi": kpi,
            "label": spec.label,
            "version": spec.version,
            "owner": owner_ref(spec.owner),
            "unit": spec.unit,
            "description": spec.description.strip(),
            "dimensions": spec.dimensions,
            "measures": spec.measure_columns,
            "gates": gates_of(spec),
            "thresholds": spec.thresholds.describe() if spec.thresholds else None,
            "versions": versions[kpi],
        }
        for kpi, spec in sorted(specs.published_kpis().items())
    ]


def _json_value(value: object) -> object:
    """Exact values: a decimal as its string, dates and times in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def published_values(conn: Connection, org: str, spec: KpiSpec, periods: Sequence[str] | None) -> dict[str, Any]:
    """The rows of published.<kpi> for `periods` (None: every period), as stored, each period with the newest
    verdict of each gate and the ledger hash of its publication."""
    asset = f"published/{spec.id}"
    if ("published", spec.id) not in set(tables(conn, ["published"])):
        return {"kpi": spec.id, "version": spec.version, "unit": spec.unit, "rows": [], "periods": {}}
    where, params = "x_org_slug = ?", [org]
    if periods is not None:
        where += f" AND {PARTITION_COLUMN} IN (SELECT unnest(?))"
        params.append(list(periods))  # type: ignore[arg-type]
    cursor = conn.execute(
        f"SELECT * FROM published.{quote_ident(spec.id)} WHERE {where} ORDER BY ALL",
        params,
    )
    names = [d[0] for d in cursor.description]  # type: ignore[attr-defined]
    rows = [{n: _json_value(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]
    shown = sorted({str(r[PARTITION_COLUMN]) for r in rows})
    gates = gates_of(spec)
    verdicts = latest_verdicts(conn, f"kpi/{spec.id}", gates, shown)  # type: ignore[arg-type]
    hashes = ledger.latest_hashes(conn, [asset])  # type: ignore[arg-type]
    return {
        "kpi": spec.id,
        "version": spec.version,
        "unit": spec.unit,
        "rows": rows,
        "periods": {
            period: {
                "ledger_hash": hashes.get((asset, period)),
                "verdicts": {
                    gate: {"passed": verdicts[(gate, period)][0], "detail": verdicts[(gate, period)][1]}
                    for gate in gates
                    if (gate, period) in verdicts
                },
            }
            for period in shown
        },
    }


def period_evidence(conn: Connection, spec: KpiSpec, period: str) -> dict[str, Any]:
    """The published period's trace through the ledger down to the source files it was computed from."""
    asset = f"published/{spec.id}"
    entries = ledger.read_entries(conn)  # type: ignore[arg-type]
    if not any(e.kind == "materialization" and e.asset == asset and e.partition == period for e in entries):
        raise UsageError(f"{spec.id} has no published {period}")
    return {"kpi": spec.id, "period": period, "trace": trace(entries, asset, period).as_dict()}
