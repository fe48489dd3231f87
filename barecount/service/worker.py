"""One pipeline run, in a process of its own: validate, then each step as one Dagster run, then notify.

`validating` is the intake plan of the run's periods: the contract version in force for each stream, what drifted,
which periods are blocked, and the credentials its streams need. A run with nothing it could build (every period
held back), or a credential variable not set, ends `failed` with the reason and launches no Dagster run.
Otherwise each step runs its processor's selection for the run's periods as one Dagster run (the same job and
path as `barecount run`, so the runs show in the UI with their tags), tried again after its backoff while
attempts remain; a step whose periods were held back is not tried again, as another attempt would hold them too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from barecount.calendar import describe_periods
from barecount.catalog.loader import load_project_specs
from barecount.catalog.pipelines import load_pipelines, step_selection
from barecount.config.instance import open_instance
from barecount.config.profiles import Settings, load_settings
from barecount.config.project import PROJECT_ROOT_ENV, ProjectPaths
from barecount.defs.aftermath import deliver_alerts, holds_of, post_alerts
from barecount.defs.assembly import build_definitions
from barecount.defs.resources import build_warehouse
from barecount.defs.runner import RunOutcome, every_asset, resolve_selection, run_partitions
from barecount.errors import scrubbed
from barecount.pipeline.alerts import Alert
from barecount.pipeline.plan import plan_in_warehouse
from barecount.pipeline.tags import REQUESTED_BY_TAG, TAG_PREFIX
from barecount.service import records
from barecount.service.state import open_state
from barecount.specs.pipeline import resolve_template

PIPELINE_RUN_TAG = f"{TAG_PREFIX}pipeline_run"
PIPELINE_TAG = f"{TAG_PREFIX}pipeline"
STEP_TAG = f"{TAG_PREFIX}step"
IDEMPOTENCY_TAG = f"{TAG_PREFIX}idempotency_key"


class Refused(Exception):
    """Validation refused the run: the reason, for the record."""


def template_values(settings: Settings, run: Any) -> dict[str, str]:
    """The template variables of this run."""
    periods = list(run.periods)
    first, last = settings.calendar.period(periods[0]), settings.calendar.period(periods[-1])
    return {
        "org_slug": settings.tenant.slug,
        "run_id": run.run_id,
        "pipeline_id": run.pipeline_id,
        "start_date": first.start.isoformat(),
        "end_date": last.end.isoformat(),
        "first_period": periods[0],
        "last_period": periods[-1],
        "requested_by": run.requested_by,
    }


def _validate(settings: Settings, selection: list[str], periods: list[str]) -> dict[str, Any]:
    """The intake plan of the run, or `Refused` with why nothing should be launched."""
    specs = load_project_specs(settings.paths)
    needed = {s.spec.credential_id for s in specs.streams if s.asset_ref in selection}
    missing = sorted(
        f"{credential} ({variable})"
        for credential, variable in settings.tenant.credentials.items()
        if credential in needed and not os.environ.get(variable)
    )
    if missing:
        raise Refused(f"credential(s) not set in the environment: {', '.join(missing)}")
    plans = plan_in_warehouse(settings, periods, selection, force=False)
    blocked = {p.asset: {k or "snapshot": why for k, why in p.held.items()} for p in plans if p.held}
    building = {p.asset: sorted(k or "snapshot" for k in p.build) for p in plans if p.build}
    unchanged = sum(len(p.unchanged) for p in plans)
    if blocked and not building and not unchanged:
        first = next(iter(blocked.items()))
        held = "; ".join(f"{period}: {why}" for period, why in first[1].items())
        raise Refused(f"nothing to build: every period is held back, e.g. {first[0]} {held}")
    return {"build": building, "held": blocked, "unchanged": unchanged}


def _rows(outcome: RunOutcome) -> int:
    return sum(a.rows for a in outcome.assets.values())


def _held_only(outcome: RunOutcome) -> bool:
    """The run failed only because periods were held back: trying again would hold them again."""
    statuses = {a.status for a in outcome.assets.values()}
    return not outcome.success and "held" in statuses and "failed" not in statuses


class PipelineRun:
    """A pipeline run being executed: its record, its organisation and pipeline, what it launched."""

    def __init__(self, engine: Engine, paths: ProjectPaths, run_id: str) -> None:
        self.engine = engine
        self.record = records.run_by_id(engine, run_id)
        self.settings = load_settings(paths, org=self.record.org)
        self.pipeline = load_pipelines(paths)[self.record.pipeline]
        self.warehouse = build_warehouse(self.settings)
        self.dagster_runs: list[str] = []
        self.held: dict[str, dict[str, str]] = {}

    @property
    def run_id(self) -> str:
        return str(self.record.run_id)

    def tags(self) -> dict[str, str]:
        """The tags of each of its Dagster runs: what launched it, for whom, and the pipeline's own."""
        record, values = self.record, template_values(self.settings, self.record)
        return {
            PIPELINE_RUN_TAG: self.run_id,
            PIPELINE_TAG: record.pipeline_id,
            REQUESTED_BY_TAG: f"api key {record.requested_by}",
            **({IDEMPOTENCY_TAG: record.idempotency_key} if record.idempotency_key else {}),
            **{name: resolve_template(value, values) for name, value in self.pipeline.spec.run_tags.items()},
        }

    def execute(self) -> None:
        """Validate, then each step; `Refused` says why the run fails."""
        engine, periods = self.engine, list(self.record.periods)
        records.move(engine, self.run_id, "validating", "the intake plan: contracts in force, drift, blocked periods")
        defs = build_definitions(self.settings)
        known = every_asset(defs)
        steps = self.pipeline.spec.steps
        selections = {
            s.step_id: step_selection(s, known, lambda patterns: resolve_selection(defs, patterns)) for s in steps
        }
        wanted = sorted({ref for chosen in selections.values() for ref in chosen})
        records.update(engine, self.run_id, validation=_validate(self.settings, wanted, periods))
        if not records.move(engine, self.run_id, "running", f"{len(steps)} step(s) for {describe_periods(periods)}"):
            raise Refused("the run was ended while it was being validated")
        instance = open_instance(self.settings.paths)
        tags = self.tags()
        for step in steps:
            for attempt in range(1, step.retry.max_attempts + 1):
                row = records.start_step(engine, self.run_id, step.step_id, attempt, step.timeout_seconds)
                outcome = run_partitions(
                    defs, instance, periods, selection=selections[step.step_id], tags=tags | {STEP_TAG: step.step_id}
                )
                self.dagster_runs.append(outcome.run_id)
                said = holds_of(self.warehouse, outcome.run_id)
                deliver_alerts(self.settings, self.warehouse, outcome, said, run_alerts=False)
                for block in said.blocked if said else []:
                    why = f"blocked: {block.contract} {block.contract_version} drift ({block.describe()})"
                    self.held.setdefault(block.asset, {})[block.fiscal_period or "snapshot"] = why
                facts = {
                    "dagster_run_id": outcome.run_id,
                    "rows": _rows(outcome),
                    "assets": {
                        a.asset: {
                            "status": a.status,
                            "rows": a.rows,
                            "partitions": a.partitions,
                            "unchanged": a.unchanged,
                            "held": a.held,
                        }
                        for a in outcome.assets.values()
                    },
                }
                if outcome.success:
                    said_done = f"step {step.step_id}: Dagster run {outcome.run_id} succeeded, {facts['rows']:,} rows"
                    records.end_step(engine, row, "completed", said_done, **facts)
                    break
                failure = outcome.failure or "the Dagster run failed"
                said_failed = f"step {step.step_id}: Dagster run {outcome.run_id} failed: {failure}"
                records.end_step(engine, row, "failed", said_failed, level="ERROR", error=failure, **facts)
                if _held_only(outcome) or attempt == step.retry.max_attempts:
                    raise Refused(f"step {step.step_id} failed: {failure}")
                wait = step.retry.backoff_seconds
                records.log(engine, self.run_id, f"step {step.step_id}: next attempt in {wait:g} s", step.step_id)
                time.sleep(wait)


def notify(settings: Settings, record: Any, status: str, reason: str, dagster_run: str | None = None) -> None:
    """A pipeline run's end, to the tenant's webhooks that take run_succeeded or run_failed: from its own process,
    or from the supervisor when that process died (killed, timed out)."""
    kind = "run_succeeded" if status == "completed" else "run_failed"
    details = {"pipeline": record.pipeline, "pipeline_run": record.run_id, "status": status}
    alert = Alert(kind, settings.tenant.slug, None, None, reason, dagster_run or record.run_id, details)
    post_alerts(settings, build_warehouse(settings), [alert])


def execute_pipeline_run(root: str, state_url: str, run_id: str) -> None:
    """The body of a run's process: from `pending` to `completed` or `failed`, whatever happens, then notify."""
    os.environ[PROJECT_ROOT_ENV] = root
    engine = open_state(state_url)
    run: PipelineRun | None = None
    try:
        run = PipelineRun(engine, ProjectPaths(Path(root)), run_id)
        run.execute()
        status, reason = "completed", f"{len(run.pipeline.spec.steps)} step(s) completed"
    except Refused as exc:
        status, reason = "failed", str(exc)
    except Exception as exc:  # whatever stops the run is its reason, said once, never a traceback
        status, reason = "failed", f"{type(exc).__name__}: {scrubbed(str(exc))}"
    if run is not None:
        records.update(engine, run_id, held=run.held or None)
    records.move(engine, run_id, status, reason)  # type: ignore[arg-type]
    if run is not None:
        notify(run.settings, run.record, status, reason, run.dagster_runs[-1] if run.dagster_runs else None)
    engine.dispose()
