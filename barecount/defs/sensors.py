"""The sensors: a data owner's approval resumes exactly the periods its contract blocked; a backfill launched
from the UI goes on the record when it ends; a run whose barecount process died is marked failed.

The approval sensor reads decisions and blocks from the warehouse (`evidence.contract_approvals`,
`evidence.blocked_partitions`), not from Dagster's run history, so an approval made from the CLI, the
UI's approval job or anywhere else is seen the same way. A busy warehouse file (a run is writing)
only postpones the tick: the cursor does not move until the decisions have been read. Likewise the
backfill sensor asks the warehouse which backfills are on the record already.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from barecount.config.dead_runs import PROCESS_TAG, fail_dead_runs
from barecount.config.profiles import Settings
from barecount.contracts import ContractRegistry
from barecount.defs.resources import Warehouse, build_warehouse
from barecount.defs.translator import asset_key, asset_ref
from barecount.errors import WarehouseBusyError
from barecount.evidence import evidence_table_exists, holds
from barecount.evidence.backfills import BackfillRecord, record_backfill, recorded_backfills
from barecount.pipeline.approve import APPROVALS_TABLE
from barecount.pipeline.periods import contiguous_ranges
from barecount.pipeline.tags import (
    APPROVAL_TAG,
    APPROVED_BY_TAG,
    CONTRACT_VERSION_TAG,
    ORG_TAG,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    REASON_TAG,
    REQUESTED_BY_TAG,
)

APPROVAL_SENSOR = "contract_approval_sensor"
BACKFILL_SENSOR = "backfill_ledger_sensor"
DEAD_RUNS_SENSOR = "dead_runs_sensor"
ALERT_SENSOR = "alert_sensor"
INTERVAL_SECONDS = 10
BUSY_WAIT_SECONDS = 5.0
"""How long a tick waits for a busy warehouse before it tries again at the next tick."""
FINISHED = {
    "COMPLETED": "succeeded",
    "COMPLETED_SUCCESS": "succeeded",
    "COMPLETED_FAILED": "failed",
    "FAILED": "failed",
    "CANCELED": "canceled",
}
"""A backfill's final status (Dagster's BulkActionStatus values), as the ledger says it."""


def _sensor(name: str, description: str, job_name: str | None = None) -> Callable[..., dg.SensorDefinition]:
    """The decorator of every sensor here: a tick each INTERVAL_SECONDS, running as soon as the daemon is."""
    return dg.sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )


@dataclass(frozen=True)
class DecisionRow:
    contract: str
    version: str
    outcome: str
    decided_by: str
    note: str
    decided_at: str


def _new_decisions(
    warehouse: Warehouse, since: str | None
) -> tuple[list[DecisionRow], dict[str, list[holds.BlockedPartition]]]:
    """Decisions made after `since` (in the order they were made), and the open blocks of their contracts."""
    if not warehouse.exists():
        return [], {}
    with warehouse.get_connection(read_only=True) as conn:
        if not evidence_table_exists(conn, "contract_approvals"):
            return [], {}
        rows = conn.execute(
            f"SELECT contract, version, outcome, decided_by, note, CAST(decided_at AS VARCHAR) FROM {APPROVALS_TABLE} "
            "WHERE decided_at > CAST(coalesce(?, '-infinity') AS TIMESTAMP) ORDER BY decided_at",
            [since],
        ).fetchall()
        decisions = [DecisionRow(*row) for row in rows]
        blocks: dict[str, list[holds.BlockedPartition]] = {}
        for block in holds.open_blocks(conn) if decisions else []:
            blocks.setdefault(block.contract, []).append(block)
    return decisions, blocks


def build_approval_sensor(settings: Settings, job_name: str) -> dg.SensorDefinition:
    """`contract_approval_sensor`: on each new approval, runs for exactly the blocked periods and what is built
    from them; a rejection leaves them blocked and says so."""

    @_sensor(
        APPROVAL_SENSOR,
        job_name=job_name,
        description=(
            "Resumes what schema drift blocked: when a data owner approves a proposed contract version "
            "(`barecount contracts approve`, or the approve_contract job), it requests runs for exactly the "
            "periods that contract blocked, with every asset downstream of the stream, tagged with the approval. "
            "The runs land the periods under the new version and clear their blocks. A rejection leaves them "
            "blocked."
        ),
    )
    def contract_approval_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        warehouse = build_warehouse(settings, wait_timeout_seconds=BUSY_WAIT_SECONDS)
        try:
            decisions, blocks = _new_decisions(warehouse, context.cursor)
        except WarehouseBusyError:
            return dg.SkipReason("the warehouse is busy (a run is writing it); decisions are read at the next tick")
        if not decisions:
            return dg.SkipReason("no new contract decision")
        registry = ContractRegistry.load(settings.paths)
        graph = context.repository_def.asset_graph
        requests, said = [], []
        for decision in decisions:
            proposal = Path(registry.version(decision.contract, decision.version).file).name
            waiting = [b for b in blocks.get(decision.contract, []) if Path(b.proposal).name == proposal]
            periods = [b.fiscal_period for b in waiting if b.fiscal_period is not None]
            if decision.outcome != "approved":
                said.append(
                    f"{decision.contract} {decision.version} rejected by {decision.decided_by}: "
                    f"{', '.join(periods) or 'no period'} stay(s) blocked"
                )
                continue
            if any(b.fiscal_period is None for b in waiting):  # a snapshot is not a fiscal period to request
                said.append(f"{decision.contract} {decision.version} approved: `barecount run` lands its snapshot")
            if not periods:
                said.append(f"{decision.contract} {decision.version} approved: no period is waiting for it")
                continue
            streams = sorted({b.asset for b in waiting})
            selection = dg.AssetSelection.assets(*(asset_key(s, settings.tenant.slug) for s in streams)).downstream()
            keys = sorted(selection.resolve(graph), key=lambda k: k.to_user_string())
            tags = {
                APPROVAL_TAG: f"{decision.contract} {decision.version}",
                CONTRACT_VERSION_TAG: decision.version,
                APPROVED_BY_TAG: decision.decided_by,
            }
            for chunk in contiguous_ranges(periods, settings.partition_keys):
                span = {RANGE_START_TAG: chunk[0], RANGE_END_TAG: chunk[-1]} if len(chunk) > 1 else {}
                requests.append(
                    dg.RunRequest(
                        run_key=f"{decision.contract}@{decision.version}:{chunk[0]}..{chunk[-1]}",
                        asset_selection=keys,
                        partition_key=chunk[0] if len(chunk) == 1 else None,
                        tags=tags | span,
                    )
                )
            said.append(
                f"{decision.contract} {decision.version} approved by {decision.decided_by}: resuming "
                f"{', '.join(periods)} ({len(keys)} assets)"
            )
        for line in said:
            context.log.info(line)
        cursor = decisions[-1].decided_at
        if not requests:
            return dg.SensorResult(skip_reason="; ".join(said), cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return contract_approval_sensor


def _periods_of(runs: Sequence[dg.DagsterRun], keys: Sequence[str]) -> list[str]:
    """The periods a backfill's runs covered, from their partition tags, in calendar order."""
    position = {k: i for i, k in enumerate(keys)}
    covered: set[str] = set()
    for run in runs:
        if PARTITION_TAG in run.tags:
            covered.add(run.tags[PARTITION_TAG])
        elif RANGE_START_TAG in run.tags:
            covered |= set(keys[position[run.tags[RANGE_START_TAG]] : position[run.tags[RANGE_END_TAG]] + 1])
    return sorted(covered & set(position), key=position.__getitem__)


def build_backfill_sensor(settings: Settings) -> dg.SensorDefinition:
    """`backfill_ledger_sensor`: every backfill launched from the UI, once finished, becomes a ledger entry."""

    @_sensor(
        BACKFILL_SENSOR,
        description=(
            "Puts every finished backfill on the record: who launched it (the barecount/requested_by tag), the "
            "periods, the reason (the barecount/reason tag; add both when you launch a backfill), its runs and "
            "how it ended, as a `backfill` entry in the evidence ledger. `barecount backfill` records its own."
        ),
    )
    def backfill_ledger_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        org = settings.tenant.slug
        finished = [
            b
            for b in context.instance.get_backfills(limit=100)
            if b.status.value in FINISHED and any(k.path[0] == org for k in b.asset_selection or [])
        ]
        warehouse = build_warehouse(settings, wait_timeout_seconds=BUSY_WAIT_SECONDS)
        if not finished or not warehouse.exists():
            return dg.SkipReason("no finished backfill")
        try:
            # Every tick reads; only a backfill not yet on the record opens the file for writing, so a tick
            # holds the writer's lock only when it has something to write.
            with warehouse.get_connection(read_only=True) as conn:
                recorded = recorded_backfills(conn)
            new = [b for b in finished if b.backfill_id not in recorded]
            if not new:
                return dg.SkipReason("every finished backfill is recorded")
            with warehouse.get_connection() as conn:
                for backfill in new:
                    runs = context.instance.get_runs(filters=dg.RunsFilter.for_backfill(backfill.backfill_id))
                    periods = _periods_of(runs, settings.partition_keys)
                    record = BackfillRecord(
                        backfill_id=backfill.backfill_id,
                        requested_by=backfill.tags.get(REQUESTED_BY_TAG) or backfill.user or "unknown (UI)",
                        reason=backfill.tags.get(REASON_TAG, "none given"),
                        first_period=periods[0] if periods else "",
                        last_period=periods[-1] if periods else "",
                        periods=len(periods),
                        selection=sorted(asset_ref(k) for k in backfill.asset_selection or []),
                        launched_from="ui",
                    )
                    record_backfill(
                        conn,
                        record,
                        FINISHED[backfill.status.value],
                        [(r.run_id, r.status.value) for r in reversed(runs)],
                        backfill.error.message if backfill.error else None,
                    )
        except WarehouseBusyError:
            return dg.SkipReason("the warehouse is busy (a run is writing it); backfills are recorded at the next tick")
        return dg.SkipReason(f"recorded {', '.join(b.backfill_id for b in new)}")

    return backfill_ledger_sensor


def build_dead_runs_sensor() -> dg.SensorDefinition:
    """`dead_runs_sensor`: the daemon marks failed the runs whose barecount process died."""

    @_sensor(
        DEAD_RUNS_SENSOR,
        description=(
            'Marks a run failed ("process gone") when the barecount process that ran it died, e.g. a CLI run '
            "killed with kill -9, so that it does not hold the run queue. Its partitions keep their previous state."
        ),
    )
    def dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        failed = fail_dead_runs(context.instance)
        return dg.SkipReason(f"marked failed: {', '.join(failed)}" if failed else "no run lost its process")

    return dead_runs_sensor


def build_alert_sensor(settings: Settings, job_name: str) -> dg.SensorDefinition:
    """`alert_sensor`: the alerts of runs launched from the UI, a schedule or a sensor, posted as `barecount run`
    posts its own (`pipeline.alerts`)."""

    @_sensor(
        ALERT_SENSOR,
        description=(
            "Posts what a finished run's evidence says needs a person (a period blocked by drift, a failed gate, "
            "a late extract, a KPI scored as an anomaly, a failed run) to the tenant's webhooks, for runs launched "
            "from the UI, a schedule or a sensor; `barecount run` posts its own. Every alert is kept in "
            "evidence.alerts."
        ),
    )
    def alert_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        from barecount.pipeline.alerts import alerts_of_run, deliver

        if not context.cursor:  # the first tick: runs that finish from now on (no alerts for the past)
            context.update_cursor(str(time.time()))
            return dg.SkipReason("watching runs that finish from now on")
        targets = settings.alert_targets()
        finished = [
            r
            for r in context.instance.get_run_records(
                filters=dg.RunsFilter(
                    job_name=job_name,
                    tags={ORG_TAG: settings.tenant.slug},
                    statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
                    updated_after=datetime.fromtimestamp(float(context.cursor), UTC),
                ),
                ascending=True,
            )
            if PROCESS_TAG not in r.dagster_run.tags  # `barecount run` delivered these itself
        ]
        warehouse = build_warehouse(settings, wait_timeout_seconds=BUSY_WAIT_SECONDS)
        if not finished or not targets or not warehouse.exists():
            if finished:
                context.update_cursor(str(finished[-1].update_timestamp.timestamp()))
            return dg.SkipReason("no alert target is set" if not targets else "no finished run to alert about")
        sent = []
        try:
            with warehouse.get_connection() as conn:
                for record in finished:
                    run = record.dagster_run
                    failure = None if run.status == dg.DagsterRunStatus.SUCCESS else "the run failed"
                    alerts = alerts_of_run(settings.tenant.slug, run.run_id, holds.run_holds(conn, run.run_id), failure)
                    sent += deliver(conn, targets, alerts)
                    context.update_cursor(str(record.update_timestamp.timestamp()))
        except WarehouseBusyError:
            return dg.SkipReason("the warehouse is busy (a run is writing it); alerts go at the next tick")
        undelivered = [f"{d.alert.kind} to {d.target}" for d in sent if not d.delivered]
        return dg.SkipReason(
            f"{len(sent) - len(undelivered)} alert(s) delivered"
            + (f"; not delivered (kept for the next run): {', '.join(undelivered)}" if undelivered else "")
        )

    return alert_sensor
