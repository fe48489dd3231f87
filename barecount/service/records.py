"""Pipeline runs as the service records them: created with their reservation in one transaction, moved through
`pending -> validating -> running -> completed | failed` with each transition timed, with their steps (one
Dagster run per attempt) and their log. The worker writes them; the API reads them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from barecount.config.profiles import PlanLimits
from barecount.service.quotas import release, reserve
from barecount.service.state import (
    idempotency_keys,
    now,
    pipeline_runs,
    reservations,
    run_logs,
    run_steps,
    run_transitions,
    transaction,
)

Status = Literal["pending", "validating", "running", "completed", "failed"]
FINAL = ("completed", "failed")
NEXT: Mapping[str, tuple[str, ...]] = {
    "pending": ("validating", "failed"),
    "validating": ("running", "failed"),
    "running": FINAL,
}
"""The status flow: a run moves only forward, and only these ways."""


def body_hash(path: str, body: Mapping[str, Any]) -> str:
    """What an Idempotency-Key is bound to: the pipeline asked for and the body, canonically."""
    return hashlib.sha256(json.dumps([path, body], sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class NewRun:
    run_id: str
    org: str
    pipeline: str
    pipeline_id: str
    requested_by: str
    request: Mapping[str, Any]
    periods: Sequence[str]
    idempotency_key: str | None


class KeyInFlight(Exception):
    """The same Idempotency-Key and body are being processed by another request: its run does not exist yet."""


class KeyReused(Exception):
    """The Idempotency-Key was used with another body."""


def claim_key(engine: Engine, org: str, key: str, digest: str) -> str | None:
    """Claim an Idempotency-Key for a new request: None when this request is the first (it goes on), the run id of
    the first request when it has made its run; `KeyInFlight` while that request is still being processed,
    `KeyReused` for another body."""
    try:
        with transaction(engine) as conn:
            conn.execute(sa.insert(idempotency_keys).values(org=org, key=key, body_hash=digest, created_at=now()))
        return None
    except IntegrityError:
        pass
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(idempotency_keys).where(idempotency_keys.c.org == org, idempotency_keys.c.key == key)
        ).first()
    if row is None:  # the first request was refused in between and gave the key back
        return claim_key(engine, org, key, digest)
    if row.body_hash != digest:
        raise KeyReused
    if row.run_id is None:
        raise KeyInFlight
    return str(row.run_id)


def give_back_key(engine: Engine, org: str, key: str) -> None:
    """A refused request leaves nothing behind: not even its claim on the key."""
    with transaction(engine) as conn:
        conn.execute(
            sa.delete(idempotency_keys).where(
                idempotency_keys.c.org == org, idempotency_keys.c.key == key, idempotency_keys.c.run_id.is_(None)
            )
        )


def create_run(engine: Engine, run: NewRun, limits: PlanLimits) -> None:
    """The run, its first transition and its reservation, in one transaction; `OverQuota` leaves none of them."""
    at = now()
    with transaction(engine) as conn:
        conn.execute(
            sa.insert(pipeline_runs).values(
                run_id=run.run_id,
                org=run.org,
                pipeline=run.pipeline,
                pipeline_id=run.pipeline_id,
                status="pending",
                requested_by=run.requested_by,
                idempotency_key=run.idempotency_key,
                request=dict(run.request),
                periods=list(run.periods),
                created_at=at,
                updated_at=at,
            )
        )
        conn.execute(sa.insert(run_transitions).values(run_id=run.run_id, status="pending", at=at, note="accepted"))
        reserve(conn, run.org, run.run_id, limits, at)
        if run.idempotency_key is not None:
            conn.execute(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.org == run.org, idempotency_keys.c.key == run.idempotency_key)
                .values(run_id=run.run_id)
            )


def move(engine: Engine, run_id: str, status: Status, note: str, **values: Any) -> bool:
    """Move the run to `status` (a final one also frees its reservation); False when the run is not in a status
    that leads there (it ended already, e.g. failed by the supervisor)."""
    at = now()
    with transaction(engine) as conn:
        current = conn.execute(sa.select(pipeline_runs.c.status).where(pipeline_runs.c.run_id == run_id)).scalar()
        if current is None or status not in NEXT.get(current, ()):
            return False
        update = {"status": status, "updated_at": at, **values}
        if status in FINAL:
            update["reason"] = note
        conn.execute(sa.update(pipeline_runs).where(pipeline_runs.c.run_id == run_id).values(**update))
        conn.execute(sa.insert(run_transitions).values(run_id=run_id, status=status, at=at, note=note))
        _log(conn, run_id, "ERROR" if status == "failed" else "INFO", f"{status}: {note}", None, at)
        if status in FINAL:
            release(conn, run_id, status, at)
    return True


def _log(conn: Connection, run_id: str, level: str, message: str, step_id: str | None, at: datetime) -> None:
    conn.execute(sa.insert(run_logs).values(run_id=run_id, at=at, level=level, step_id=step_id, message=message))


def log(engine: Engine, run_id: str, message: str, step_id: str | None = None, level: str = "INFO") -> None:
    with transaction(engine) as conn:
        _log(conn, run_id, level, message, step_id, now())


def update(engine: Engine, run_id: str, **values: Any) -> None:
    with transaction(engine) as conn:
        conn.execute(sa.update(pipeline_runs).where(pipeline_runs.c.run_id == run_id).values(**values))


def start_step(engine: Engine, run_id: str, step_id: str, attempt: int, timeout_seconds: int) -> int:
    at = now()
    with transaction(engine) as conn:
        made = conn.execute(
            sa.insert(run_steps).values(
                run_id=run_id,
                step_id=step_id,
                attempt=attempt,
                status="running",
                timeout_seconds=timeout_seconds,
                started_at=at,
            )
        )
        _log(conn, run_id, "INFO", f"step {step_id}: attempt {attempt} started", step_id, at)
        return int(made.inserted_primary_key[0])  # type: ignore[index]


def end_step(engine: Engine, row: int, status: str, message: str, level: str = "INFO", **values: Any) -> None:
    at = now()
    with transaction(engine) as conn:
        conn.execute(sa.update(run_steps).where(run_steps.c.id == row).values(status=status, ended_at=at, **values))
        step = conn.execute(sa.select(run_steps.c.run_id, run_steps.c.step_id).where(run_steps.c.id == row)).one()
        _log(conn, step.run_id, level, message, step.step_id, at)


def heartbeat(engine: Engine, run_ids: Sequence[str]) -> None:
    if not run_ids:
        return
    with transaction(engine) as conn:
        conn.execute(
            sa.update(reservations)
            .where(reservations.c.run_id.in_(run_ids), reservations.c.released_at.is_(None))
            .values(heartbeat_at=now())
        )


def run_by_id(engine: Engine, run_id: str) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(sa.select(pipeline_runs).where(pipeline_runs.c.run_id == run_id)).one()


def run_row(engine: Engine, org: str, run_id: str) -> sa.Row | None:
    """The organisation's run `run_id`; None for a run of another organisation, as for one that does not exist."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(pipeline_runs).where(pipeline_runs.c.run_id == run_id, pipeline_runs.c.org == org)
        ).first()


def rows_of(engine: Engine, table: sa.Table, run_id: str) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id)))


def history(engine: Engine, org: str, limit: int, offset: int) -> tuple[int, list[sa.Row]]:
    """The organisation's runs, newest first: (how many in all, this page)."""
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).where(pipeline_runs.c.org == org)).scalar_one()
        page = conn.execute(
            sa.select(pipeline_runs)
            .where(pipeline_runs.c.org == org)
            .order_by(pipeline_runs.c.created_at.desc(), pipeline_runs.c.run_id)
            .limit(limit)
            .offset(offset)
        )
        return int(total), list(page)


def unfinished(engine: Engine) -> list[sa.Row]:
    """Runs not ended yet, with their worker's pid: what the supervisor watches."""
    with engine.connect() as conn:
        return list(conn.execute(sa.select(pipeline_runs).where(pipeline_runs.c.status.not_in(FINAL))))
