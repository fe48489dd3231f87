"""Where the warehouse stands, from its evidence alone: per asset its newest build, the checks whose newest
verdict failed, the periods drift blocks, the rows in quarantine; the alerts not delivered; the ledger's head.
What `barecount status` shows, and what makes it say a person is needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from barecount.evidence import holds, ledger
from barecount.evidence.schema import ALERTS_TABLE, GATE_RESULTS_TABLE, LEDGER_TABLE, evidence_table_exists
from barecount.sql.relation import quote_ident
from barecount.warehouse import catalog
from barecount.warehouse.connection import Connection


@dataclass
class AssetStatus:
    """One asset as its evidence has it."""

    asset: str
    last_period: str | None = None
    """The newest period (in calendar order) it was built for; None for a snapshot or never built."""
    last_run: str | None = None
    built_at: str | None = None
    """When its newest build was recorded (UTC)."""
    periods_built: int = 0
    failing_checks: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[dict[str, Any]] = field(default_factory=list)
    quarantined_rows: int = 0
    freshness: dict[str, Any] | None = None
    """Against its SLA, for a stream with a latency: the newest period due, and `fresh`, `late` or `missing`."""

    @property
    def missing(self) -> bool:
        return self.freshness is not None and self.freshness["verdict"] == "missing"

    @property
    def needs_a_person(self) -> bool:
        return bool(self.failing_checks or self.blocked or self.missing)


@dataclass
class WarehouseStatus:
    assets: list[AssetStatus]
    undelivered_alerts: list[dict[str, Any]]
    ledger_head: tuple[int, str] | None

    def attention(self) -> list[str]:
        """What needs a person, one line each (empty: nothing)."""
        said = [
            f"{a.asset} {b['period'] or 'snapshot'} is blocked by {b['contract']} {b['contract_version']}: "
            f"approve or reject {b['proposal']}"
            for a in self.assets
            for b in a.blocked
        ]
        said += [
            f"{a.asset} {c['period'] or 'snapshot'} failed its {c['gate']}: {c['detail']}"
            for a in self.assets
            for c in a.failing_checks
        ]
        said += [
            f"{a.asset} {a.freshness['period']} is missing: {a.freshness['detail']}"
            for a in self.assets
            if a.freshness is not None and a.missing
        ]
        said += [
            f"alert {x['kind']} {x['asset'] or ''} {x['period'] or ''} not delivered to {x['target']} "
            f"({x['attempts']} attempt(s): {x['last_error']})".replace("  ", " ")
            for x in self.undelivered_alerts
        ]
        return said

    def as_dict(self) -> dict[str, Any]:
        head = self.ledger_head
        return {
            "assets": [asdict(a) | {"needs_a_person": a.needs_a_person} for a in self.assets],
            "undelivered_alerts": self.undelivered_alerts,
            "ledger_head": None if head is None else {"seq": head[0], "hash": head[1]},
            "needs_a_person": self.attention(),
        }


def warehouse_status(
    conn: Connection,
    assets: Sequence[str],
    streams: Sequence[str],
    due: Mapping[str, tuple[str, datetime]] | None = None,
) -> WarehouseStatus:
    """The status of `assets` (in the order given); `streams` name the quarantine tables to count; `due` holds,
    per stream asset with a latency SLA, its newest period due and when it was due."""
    found = {asset: AssetStatus(asset) for asset in assets}
    if evidence_table_exists(conn, "ledger"):
        for asset, last_period, run, built_at, periods in conn.execute(
            f"SELECT asset, max(partition), arg_max(run_id, seq), max(recorded_at), count(DISTINCT partition) "
            f"FROM {LEDGER_TABLE} WHERE kind = 'materialization' GROUP BY asset"
        ).fetchall():
            if asset in found:
                item = found[asset]
                item.last_period, item.last_run, item.built_at = last_period, run, str(built_at)
                item.periods_built = int(periods)
    if evidence_table_exists(conn, "gate_results"):
        for gate, asset, period, detail in conn.execute(
            "SELECT gate, asset, partition, detail FROM (SELECT gate, asset, partition, "
            "arg_max(passed, checked_at) AS passed, arg_max(detail, checked_at) AS detail "
            f"FROM {GATE_RESULTS_TABLE} GROUP BY gate, asset, partition) WHERE NOT passed "
            "ORDER BY asset, partition, gate"
        ).fetchall():
            if asset in found:
                found[asset].failing_checks.append({"gate": gate, "period": period, "detail": detail})
    for block in holds.open_blocks(conn):
        if block.asset in found:
            found[block.asset].blocked.append(
                {
                    "period": block.fiscal_period,
                    "contract": block.contract,
                    "contract_version": block.contract_version,
                    "proposal": block.proposal,
                    "drift": block.describe(),
                }
            )
    quarantined = {table for _, table in catalog.tables(conn, ["quarantine"])}
    for stream in streams:
        if stream in quarantined and f"raw/{stream}" in found:
            (count,) = conn.execute(f"SELECT count(*) FROM quarantine.{quote_ident(stream)}").fetchone() or (0,)
            found[f"raw/{stream}"].quarantined_rows = int(count)
    for asset, (period, when) in (due or {}).items():
        if asset in found:
            found[asset].freshness = _freshness(conn, asset, period, when, found[asset].last_period)
    undelivered = []
    if evidence_table_exists(conn, "alerts"):
        undelivered = [
            {"target": t, "kind": k, "asset": a, "period": p, "attempts": int(n), "last_error": e}
            for t, k, a, p, n, e in conn.execute(
                f"SELECT target, kind, asset, partition, attempts, last_error FROM {ALERTS_TABLE} "
                "WHERE NOT delivered ORDER BY recorded_at"
            ).fetchall()
        ]
    return WarehouseStatus([found[a] for a in assets], undelivered, ledger.head(conn))


def _freshness(conn: Connection, asset: str, period: str, due: datetime, newest: str | None) -> dict[str, Any]:
    """The newest due period of a stream: `missing` if it never landed, else its newest freshness verdict."""
    said = {"period": period, "due": due.isoformat()}
    verdict = (
        conn.execute(
            f"SELECT arg_max(passed, checked_at), arg_max(detail, checked_at) FROM {GATE_RESULTS_TABLE} "
            "WHERE gate = ? AND asset = ? AND partition = ?",
            [holds.FRESHNESS_GATE, asset, period],
        ).fetchone()
        if evidence_table_exists(conn, "gate_results")
        else None
    )
    if verdict is not None and verdict[0] is not None:
        return said | {"verdict": "fresh" if verdict[0] else "late", "detail": str(verdict[1])}
    landed = f"the newest landed period is {newest}" if newest else "no period has landed"
    return said | {"verdict": "missing", "detail": f"due {due:%Y-%m-%d %H:%M} UTC and not landed; {landed}"}
