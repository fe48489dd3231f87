"""Periods held back: blocked by schema drift, failed at a gate, or built from one of those.

A blocked period is recorded in `evidence.blocked_partitions` until a later run lands it; every
period held back in a run (blocked or not) is a ledger entry of that run, so the steps after it in
the same run leave the period alone and the run's summary can name it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from barecount.contracts.diff import ColumnChange, describe_changes
from barecount.evidence import BLOCKED_TABLE, GATE_RESULTS_TABLE, LEDGER_TABLE, ensure_evidence, evidence_table_exists
from barecount.evidence.ledger import NewEntry, append
from barecount.sql.relation import HeldBack, in_list
from barecount.warehouse.writes import insert_rows

HELD_KINDS = ("block", "hold")


def record_gate_results(
    conn: duckdb.DuckDBPyConnection,
    gate: str,
    asset: str,
    run_id: str,
    results: Sequence[tuple[str | None, bool, str]],
    judged_on: Mapping[str | None, Mapping[str, object]] | None = None,
) -> None:
    """Keep a gate's verdict per partition, (partition, passed, detail), in the table and the ledger, with what
    each verdict was judged on (`judged_on`, e.g. the thresholds' baselines) in its ledger entry."""
    judged_on = judged_on or {}
    if not results:
        return
    ensure_evidence(conn)
    insert_rows(
        conn,
        GATE_RESULTS_TABLE,
        ["gate", "asset", "partition", "run_id", "passed", "detail"],
        [(gate, asset, p, run_id, ok, detail) for p, ok, detail in results],
    )
    append(
        conn,
        [
            NewEntry("check", asset, p, run_id, {"check": gate, "passed": ok, "detail": d, **judged_on.get(p, {})})
            for p, ok, d in results
        ],
    )


def judged_on(
    conn: duckdb.DuckDBPyConnection, gate: str, asset: str, partitions: Sequence[str], fact: str
) -> dict[str, str]:
    """Partition -> `fact` (JSON text) of the newest verdict of `gate` on it: what that verdict was judged on."""
    if not partitions or not evidence_table_exists(conn, "ledger"):
        return {}
    rows = conn.execute(
        f"SELECT partition, arg_max(CAST(json_extract(facts, '$.{fact}') AS VARCHAR), seq) FROM {LEDGER_TABLE} "
        "WHERE kind = 'check' AND asset = ? AND json_extract_string(facts, '$.check') = ? "
        "AND partition IN (SELECT unnest(?)) GROUP BY ALL",
        [asset, gate, list(partitions)],
    ).fetchall()
    return {str(p): str(v) for p, v in rows if v is not None}


def hold_back(conn: duckdb.DuckDBPyConnection, asset: str, run_id: str, held: Mapping[str | None, HeldBack]) -> None:
    """Put every period a run left as it was on the record: a ledger entry of the run each, and the blocked
    ones in `evidence.blocked_partitions`."""
    append(conn, [NewEntry(h.kind, asset, key, run_id, {"reason": h.reason, **h.facts}) for key, h in held.items()])
    record_blocks(conn, asset, run_id, held)


def record_blocks(
    conn: duckdb.DuckDBPyConnection, asset: str, run_id: str, held: Mapping[str | None, HeldBack]
) -> None:
    """Note each period this write held back because its extract drifted (resolve_blocks clears them later)."""
    blocks = [(k, h) for k, h in held.items() if h.kind == "block"]
    if not blocks:
        return
    ensure_evidence(conn)
    insert_rows(
        conn,
        BLOCKED_TABLE,
        ("contract", "contract_version", "asset", "fiscal_period", "diff", "proposal", "run_id"),
        [
            (
                h.facts["contract"],
                h.facts["contract_version"],
                asset,
                key,
                json.dumps(h.facts["changes"]),
                h.facts["proposal"],
                run_id,
            )
            for key, h in blocks
        ],
    )


def resolve_blocks(
    conn: duckdb.DuckDBPyConnection,
    asset: str,
    landed: Sequence[str | None],
    run_id: str,
    launched_by: Mapping[str, str] | None = None,
) -> None:
    """Periods that landed are no longer blocked: each one's resumption goes on the record, with what launched
    the run that landed it (`launched_by`: the approval a sensor's run was requested for, say)."""
    if not landed:
        return
    ensure_evidence(conn)
    still_blocked = (
        "asset = ? AND resolved_run_id IS NULL AND run_id <> ? AND (fiscal_period IN (SELECT unnest(?)) OR "
        "(fiscal_period IS NULL AND ?))"
    )
    found = [asset, run_id, [k for k in landed if k is not None], None in landed]
    # read, then resolve (in the caller's transaction): BigQuery's DML returns no rows, and most writes resolve none
    resumed = conn.execute(
        f"SELECT fiscal_period, contract, contract_version, proposal, run_id FROM {BLOCKED_TABLE} "
        f"WHERE {still_blocked}",
        found,
    ).fetchall()
    if not resumed:
        return
    conn.execute(
        f"UPDATE {BLOCKED_TABLE} SET resolved_run_id = ?, resolved_at = now() WHERE {still_blocked}", [run_id, *found]
    )
    append(
        conn,
        [
            NewEntry(
                "resumption",
                asset,
                period,
                run_id,
                {
                    "contract": contract,
                    "blocked_under": version,
                    "proposal": proposal,
                    "blocked_by_run": blocked_by,
                    **(launched_by or {}),
                },
            )
            for period, contract, version, proposal, blocked_by in sorted(resumed, key=lambda r: str(r[0]))
        ],
    )


@dataclass(frozen=True)
class BlockedPartition:
    """A period of a stream waiting for a data owner: the drift that blocked it and the proposal to approve."""

    contract: str
    contract_version: str
    asset: str
    fiscal_period: str | None
    diff: list[dict[str, Any]]
    proposal: str
    run_id: str
    blocked_at: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def describe(self) -> str:
        """The drift in one line."""
        return describe_changes([ColumnChange(**c) for c in self.diff])

    def waiting_reason(self) -> str:
        """Why everything built from this period waits: the contract that blocks it and what would release it."""
        return (
            f"{self.asset} {self.fiscal_period or 'snapshot'} is blocked by contract {self.contract} "
            f"{self.contract_version} (schema drift: {self.describe()}) until {self.proposal} is approved"
        )


def open_blocks(conn: duckdb.DuckDBPyConnection, run_id: str | None = None) -> list[BlockedPartition]:
    """Periods still blocked (the latest block of each), or those a given run blocked."""
    if not evidence_table_exists(conn, "blocked_partitions"):
        return []
    where = "run_id = ?" if run_id else "resolved_run_id IS NULL"
    rows = conn.execute(
        "SELECT contract, contract_version, asset, fiscal_period, arg_max(diff, blocked_at), "
        "arg_max(proposal, blocked_at), arg_max(run_id, blocked_at), max(blocked_at) "
        f"FROM {BLOCKED_TABLE} WHERE {where} GROUP BY ALL ORDER BY contract, fiscal_period NULLS FIRST",
        [run_id] if run_id else [],
    ).fetchall()
    return [BlockedPartition(c, v, a, p, json.loads(d), prop, r, str(at)) for c, v, a, p, d, prop, r, at in rows]


def blocked_periods(conn: duckdb.DuckDBPyConnection, assets: Collection[str]) -> dict[str, str]:
    """Period -> why, for the periods of these assets still blocked by schema drift: nothing built from them
    may run until a data owner approves (the contract prerequisite, whatever launched the run)."""
    return {
        b.fiscal_period: b.waiting_reason()
        for b in open_blocks(conn)
        if b.asset in assets and b.fiscal_period is not None
    }


def waiting_for_approval(conn: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, BlockedPartition]]:
    """(asset, block) for each partition `run_id` held back while a period it is built from is blocked."""
    blocks: dict[str, list[BlockedPartition]] = {}
    for block in open_blocks(conn):
        if block.fiscal_period is not None:
            blocks.setdefault(block.fiscal_period, []).append(block)
    if not blocks:
        return []
    held = conn.execute(
        f"SELECT DISTINCT asset, partition FROM {LEDGER_TABLE} WHERE run_id = ? AND kind = 'hold' "
        "AND partition IN (SELECT unnest(?)) ORDER BY asset, partition",
        [run_id, list(blocks)],
    ).fetchall()
    return [(str(asset), block) for asset, period in held for block in blocks[period]]


def unchanged_in_run(conn: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, list[str]]:
    """Period -> the runs that built it, for each period where `run_id` found every partition's work done
    before (a `noop`) and wrote or held back nothing."""
    if not evidence_table_exists(conn, "ledger"):
        return {}
    rows = conn.execute(
        f"SELECT partition, list(DISTINCT json_extract_string(facts, '$.built_by_run')) FROM {LEDGER_TABLE} "
        "WHERE run_id = ? AND partition IS NOT NULL GROUP BY ALL "
        "HAVING bool_and(kind = 'noop' OR kind NOT IN ('materialization', 'hold', 'block'))"
        " AND bool_or(kind = 'noop') ORDER BY 1",
        [run_id],
    ).fetchall()
    return {str(p): sorted(str(r) for r in runs if r is not None) for p, runs in rows}


def unpublished(conn: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, str, str]]:
    """(asset, period, why) for each published partition `run_id` held back."""
    if not evidence_table_exists(conn, "ledger"):
        return []
    rows = conn.execute(
        f"SELECT asset, partition, json_extract_string(facts, '$.reason') FROM {LEDGER_TABLE} "
        "WHERE run_id = ? AND kind = 'hold' AND asset LIKE 'published/%' ORDER BY asset, partition",
        [run_id],
    ).fetchall()
    return [(str(a), str(p), str(r)) for a, p, r in rows]


def held_in_run_by_asset(conn: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, str, str]]:
    """(asset, period, why) for every partition `run_id` held back or that failed a gate in it, the first
    cause of each first: what a later step of the run must leave alone."""
    found: list[tuple[str, str, str]] = []
    if evidence_table_exists(conn, "ledger"):
        found += [
            (str(a), str(p), str(r))
            for a, p, r in conn.execute(
                f"SELECT asset, partition, json_extract_string(facts, '$.reason') FROM {LEDGER_TABLE} "
                "WHERE run_id = ? AND kind IN (SELECT unnest(?)) AND partition IS NOT NULL ORDER BY seq",
                [run_id, list(HELD_KINDS)],
            ).fetchall()
        ]
    if evidence_table_exists(conn, "gate_results"):
        found += [
            (str(a), str(p), f"{a} failed {gate}: {detail}")
            for a, p, gate, detail in conn.execute(
                f"SELECT asset, partition, gate, detail FROM {GATE_RESULTS_TABLE} "
                "WHERE run_id = ? AND NOT passed AND partition IS NOT NULL ORDER BY checked_at",
                [run_id],
            ).fetchall()
        ]
    return found


FRESHNESS_GATE = "freshness"
ANOMALY_GATE = "anomaly"
WARNING_GATES = (FRESHNESS_GATE, ANOMALY_GATE)
"""Gates whose failure is a warning: the period is built and published all the same (a late extract is still the
period's data; an unusual number is not a wrong one). `barecount status` lists them; a run is not failed by them."""


@dataclass(frozen=True)
class FailedGate:
    gate: str
    asset: str
    partition: str | None
    detail: str


def failed_gates(conn: duckdb.DuckDBPyConnection, run_id: str, warnings: bool = False) -> list[FailedGate]:
    """The gates that failed in a run, period by period: those that hold a period back, or (`warnings`) those that
    only warn (`WARNING_GATES`)."""
    if not gate_results_exist(conn):
        return []
    rows = conn.execute(
        f"SELECT gate, asset, partition, detail FROM {GATE_RESULTS_TABLE} WHERE run_id = ? AND NOT passed "
        f"AND gate {'' if warnings else 'NOT '}IN {in_list(WARNING_GATES)} ORDER BY asset, partition, gate",
        [run_id],
    ).fetchall()
    return [FailedGate(*row) for row in rows]


def gate_results_exist(conn: duckdb.DuckDBPyConnection) -> bool:
    return evidence_table_exists(conn, "gate_results")


@dataclass(frozen=True)
class RunHolds:
    """Everything one run held back, from its evidence: what `barecount run` reports after it."""

    blocked: list[BlockedPartition]
    failed: list[FailedGate]
    unpublished: list[tuple[str, str, str]]
    waiting: list[tuple[str, BlockedPartition]]
    """Partitions not built because an earlier run's block still holds their source."""
    unchanged: dict[str, list[str]]
    warned: list[FailedGate] = field(default_factory=list)
    """Periods built and published all the same, with a warning: a late extract, an anomalous KPI."""

    def __bool__(self) -> bool:
        return bool(self.blocked or self.failed or self.unpublished or self.waiting)


def run_holds(conn: duckdb.DuckDBPyConnection, run_id: str) -> RunHolds:
    return RunHolds(
        blocked=open_blocks(conn, run_id),
        failed=failed_gates(conn, run_id),
        unpublished=unpublished(conn, run_id),
        waiting=[(a, block) for a, block in waiting_for_approval(conn, run_id) if block.run_id != run_id],
        unchanged=unchanged_in_run(conn, run_id),
        warned=failed_gates(conn, run_id, warnings=True),
    )
