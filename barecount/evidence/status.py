"""Where the warehouse stands, from its evidence alone: per asset its newest build, the checks whose newest
verdict failed, the periods drift blocks, the rows in quarantine; the alerts not delivered; the ledger's head.
What `barecount status` shows, and what makes it say a person is needed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
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

    @property
    def needs_a_person(self) -> bool:
        return bool(self.failing_checks or self.blocked)


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


def warehouse_status(conn: Connection, assets: Sequence[str], streams: Sequence[str]) -> WarehouseStatus:
    """The status of `assets` (in the order given); `streams` name the quarantine tables to count."""
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
