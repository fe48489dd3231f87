"""The tenant's calendar schedules as Dagster schedules (`calendar.schedule` decides; this only adapts).

Each ticks every day at its time of day in its time zone, so the UI shows it with its next ticks; a tick on
a day when no period is due is skipped with the day its next period closes."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from barecount.calendar.schedule import ScheduleSpec, period_due, upcoming
from barecount.config.profiles import Settings
from barecount.pipeline.periods import active_periods
from barecount.pipeline.tags import REQUESTED_BY_TAG

SCHEDULE_TAG_PREFIX = "schedule:"


def build_calendar_schedule(settings: Settings, spec: ScheduleSpec, job_name: str) -> dg.ScheduleDefinition:
    """One of the tenant's schedules, requesting the period due on each tick's day in `job_name`."""

    def due(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        # the tick's own time, not now: a late tick requests the period of the day it was meant for
        when = (context.scheduled_execution_time or datetime.now(UTC)).astimezone(spec.zone)
        calendar = settings.calendar
        period = period_due(spec, calendar, when.date())
        if period is None:
            (following,) = upcoming(spec, calendar, when, 1) or [None]
            later = f"; next: {following.period} on {following.at:%Y-%m-%d}" if following else ""
            return dg.SkipReason(f"no period closes on {when:%Y-%m-%d}{later}")
        if period not in set(active_periods(settings)):
            return dg.SkipReason(
                f"{period} is due but is not an active period (no source extracts for it yet, or outside the "
                f"tenant's active_periods)"
            )
        return dg.RunRequest(
            run_key=f"{spec.name}:{period}:{when:%Y-%m-%d}",
            partition_key=period,
            tags={REQUESTED_BY_TAG: SCHEDULE_TAG_PREFIX + spec.name},
        )

    return dg.ScheduleDefinition(
        name=spec.name,
        cron_schedule=spec.cron,
        execution_timezone=spec.timezone,
        job_name=job_name,
        execution_fn=due,
        description=f"{spec.description} ({spec.rule()})".strip(),
        default_status=dg.DefaultScheduleStatus.RUNNING if spec.running else dg.DefaultScheduleStatus.STOPPED,
    )
