"""Quotas, checked and reserved in one transaction before a run is created.

An organisation's subscription gives daily and monthly run limits (UTC days and months) and a concurrent limit.
Every reservation counts towards the day and month it was made in; one not released yet counts towards the
concurrent limit. Stale reservations (their run's process is gone, or it stopped beating) are released first,
so a run that died never holds a slot.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from barecount.config.profiles import PlanLimits
from barecount.service.state import lock_org, reservations

CONCURRENT_RETRY_SECONDS = 5
"""What `Retry-After` says when the concurrent limit is reached: a run usually ends within seconds."""


class OverQuota(Exception):
    """A request over one of the organisation's limits: which, its value, and when to try again."""

    def __init__(self, limit: str, allowed: int, retry_after: int) -> None:
        super().__init__(limit)
        self.limit, self.allowed, self.retry_after = limit, allowed, retry_after

    def __str__(self) -> str:
        what = {"daily_runs": "runs per day", "monthly_runs": "runs per month", "concurrent_runs": "runs at once"}
        return f"the {self.limit} limit is reached: {self.allowed} {what[self.limit]}"


def _until_tomorrow(at: datetime) -> int:
    tomorrow = (at + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - at).total_seconds()))


def _until_next_month(at: datetime) -> int:
    days = calendar.monthrange(at.year, at.month)[1]
    first = (at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)) + timedelta(days=days)
    return max(1, int((first - at).total_seconds()))


def reserve(conn: Connection, org: str, run_id: str, limits: PlanLimits, at: datetime) -> None:
    """Reserve a slot for `run_id` (a row of pipeline_runs in the same transaction), or raise `OverQuota` and
    reserve nothing. Holds the organisation's lock until the transaction ends."""
    lock_org(conn, org)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    mine = reservations.c.org == org
    counted = conn.execute(
        sa.select(
            sa.func.count().filter(reservations.c.reserved_at >= day),
            sa.func.count().filter(reservations.c.reserved_at >= month),
            sa.func.count().filter(reservations.c.released_at.is_(None)),
        ).where(mine)
    ).one()
    today, this_month, running = (int(n) for n in counted)
    if running >= limits.concurrent_runs:
        raise OverQuota("concurrent_runs", limits.concurrent_runs, CONCURRENT_RETRY_SECONDS)
    if today >= limits.daily_runs:
        raise OverQuota("daily_runs", limits.daily_runs, _until_tomorrow(at))
    if this_month >= limits.monthly_runs:
        raise OverQuota("monthly_runs", limits.monthly_runs, _until_next_month(at))
    conn.execute(sa.insert(reservations).values(run_id=run_id, org=org, reserved_at=at, heartbeat_at=at))


def release(conn: Connection, run_id: str, why: str, at: datetime) -> bool:
    """Free the run's slot; False when it was free already."""
    done = conn.execute(
        sa.update(reservations)
        .where(reservations.c.run_id == run_id, reservations.c.released_at.is_(None))
        .values(released_at=at, released_why=why)
    )
    return bool(done.rowcount)
