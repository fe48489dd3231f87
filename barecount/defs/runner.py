"""Run the asset graph for a range of fiscal periods in one in-process Dagster run, with progress.

A key range becomes one run (single-run backfill tags), so 80 periods cost one SQL statement per
asset, not 80. The run is recorded in the persistent instance and shows in the UI.
"""

from __future__ import annotations

import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg

from barecount.config.dead_runs import process_tags
from barecount.defs.assembly import ALL_ASSETS_JOB
from barecount.errors import UsageError
from barecount.pipeline.tags import RANGE_END_TAG, RANGE_START_TAG


@dataclass
class AssetOutcome:
    """What one asset did in a run."""

    asset: str
    partitions: int = 0
    """Partitions materialized; 0 for an unpartitioned (snapshot) asset."""
    rows: int = 0
    seconds: float = 0.0
    status: str = "pending"
    checks_passed: int = 0
    checks_failed: int = 0
    held: int = 0
    """Partitions of the run left as they were (blocked by drift, or an input was held back)."""
    unchanged: int = 0
    """Partitions whose work was done before (same inputs, code and contract versions): not written again."""


@dataclass
class RunOutcome:
    """The result of one run: per-asset outcomes, the first failure, the wall time."""

    run_id: str
    success: bool
    seconds: float
    assets: dict[str, AssetOutcome] = field(default_factory=dict)
    failure: str | None = None


ProgressCallback = Callable[[dict[str, AssetOutcome]], None]


LAYERS = ("raw", "gdp", "kpi", "published")


def _layer_order(asset: str) -> tuple[int, str]:
    layer = asset.split("/", 1)[0]
    return (LAYERS.index(layer) if layer in LAYERS else len(LAYERS), asset)


def _apply_event(
    event: dg.EventLogEntry,
    outcomes: dict[str, AssetOutcome],
    steps: Mapping[str, Sequence[str]],
    last_seen: dict[str, float],
) -> None:
    """Fold one event of the run into the per-asset outcomes. A layer step computes its assets one after the
    other, so an asset's time is from the step's start, or the previous asset's materialization, to its own."""
    dagster_event = event.dagster_event
    if dagster_event is None:
        return
    kind = dagster_event.event_type
    if kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
        materialization = event.asset_materialization
        if materialization is None:
            return
        name = materialization.asset_key.to_user_string()
        outcome = outcomes.setdefault(name, AssetOutcome(name))
        if outcome.status != "done":
            step = dagster_event.step_key or ""
            outcome.seconds = event.timestamp - last_seen.get(step, event.timestamp)
            last_seen[step] = event.timestamp
            outcome.status = "done"
        if "held_back" in materialization.metadata:
            outcome.held += 1
        elif "unchanged_since_run" in materialization.metadata:
            outcome.unchanged += 1
        elif materialization.partition is not None:
            outcome.partitions += 1
        rows = materialization.metadata.get("dagster/row_count")
        if rows is not None:
            outcome.rows += int(rows.value)  # type: ignore[arg-type]
        return
    if kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation = dagster_event.event_specific_data
        checked = outcomes.get(evaluation.asset_key.to_user_string())  # type: ignore[union-attr]
        if checked is not None:
            if evaluation.passed:  # type: ignore[union-attr]
                checked.checks_passed += 1
            else:
                checked.checks_failed += 1
        return
    step = dagster_event.step_key
    if step is None:
        return
    members = [outcomes[a] for a in steps.get(step, ()) if a in outcomes]
    if kind == dg.DagsterEventType.STEP_START:
        last_seen[step] = event.timestamp
    status = {
        dg.DagsterEventType.STEP_START: ("pending", "running"),
        dg.DagsterEventType.STEP_UP_FOR_RETRY: ("running", "retrying"),
        dg.DagsterEventType.STEP_RESTARTED: ("retrying", "running"),
        dg.DagsterEventType.STEP_SUCCESS: ("running", "done"),
        dg.DagsterEventType.STEP_FAILURE: ("running", "failed"),
        dg.DagsterEventType.STEP_SKIPPED: ("pending", "skipped"),
    }.get(kind)
    if status is not None:
        before, after = status
        for outcome in members:
            if outcome.status == before or (after == "retrying" and outcome.status == "done"):
                outcome.status = after
        if kind == dg.DagsterEventType.STEP_FAILURE:  # what the step did not get to
            for outcome in members:
                if outcome.status == "pending":
                    outcome.status = "skipped"


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str | None:
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        dagster_event = event.dagster_event
        info = dagster_event.step_failure_data if dagster_event else None
        if info is not None and info.error is not None:
            error = info.error
            # past Dagster's wrappers to the error that says what happened (a Failure of ours says it all)
            while error.cause is not None and "dagster" in error.cls_name.lower() and error.cls_name != "Failure":
                error = error.cause
            return error.message.strip().removeprefix("dagster._core.definitions.events.Failure: ")
    return None


def _steps_of(defs: dg.Definitions) -> dict[str, list[str]]:
    """Step key -> the assets the step computes (a layer step computes many)."""
    steps: dict[str, list[str]] = {}
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition) and assets_def.is_executable:
            steps[assets_def.node_def.name] = [k.to_user_string() for k in assets_def.keys]
    return steps


SELECTION_PATTERN = re.compile(r"(?P<up>\d*\+)?(?P<key>[^+]+?)(?P<down>\+\d*)?")


def resolve_selection(defs: dg.Definitions, patterns: Sequence[str]) -> list[str]:
    """Asset keys for `--select` patterns: a key (`kpi/net_revenue`), a glob (`kpi/*`), a group
    (`group:raw`), with `+` before for everything upstream and after for everything downstream
    (`+kpi/net_revenue`, `raw/orders+`, `1+kpi/net_revenue` for one level), or any Dagster selection
    (`tag:domain=erp`, `key:"gdp/*" and not key:"gdp/parts"`). In graph order."""
    graph = defs.resolve_asset_graph()
    known = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    chosen: set[str] = set()
    for pattern in patterns:
        shape = SELECTION_PATTERN.fullmatch(pattern.strip())
        text = pattern
        if shape is not None and ":" not in pattern and " " not in pattern:
            text = f'{shape["up"] or ""}key:"{shape["key"]}"{shape["down"] or ""}'
        try:
            found = {k.to_user_string() for k in dg.AssetSelection.from_string(text).resolve(graph)}
        except Exception as exc:  # Dagster's parser says what it could not read
            raise UsageError(f"--select {pattern}: not a selection ({exc})") from None
        if not found:
            raise UsageError(
                f"--select {pattern}: matches no asset; known: {', '.join(sorted(known))} "
                "(globs, group:<layer>, +upstream and downstream+ work too)"
            )
        chosen |= found & known
    return sorted(chosen, key=_layer_order)


def run_partitions(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    partition_keys: Sequence[str],
    selection: Sequence[str] | None = None,
    tags: dict[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunOutcome:
    """Materialize `selection` (default: every asset) for a contiguous range of period keys, in one run."""
    if not partition_keys:
        raise UsageError("no fiscal periods to run")
    job = defs.resolve_job_def(ALL_ASSETS_JOB)
    known = {k.to_user_string(): k for k in defs.resolve_all_asset_keys()}
    asset_selection = None
    if selection:
        unknown = [s for s in selection if s not in known]
        if unknown:
            raise UsageError(f"unknown asset(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        asset_selection = [known[s] for s in selection]
    run_tags = dict(tags or {}) | process_tags()
    partition_key = None
    if len(partition_keys) == 1:
        partition_key = partition_keys[0]
    else:
        run_tags |= {RANGE_START_TAG: partition_keys[0], RANGE_END_TAG: partition_keys[-1]}

    run_id = str(uuid.uuid4())
    outcomes = {name: AssetOutcome(name) for name in sorted(selection or known, key=_layer_order)}
    result: list[dg.ExecuteInProcessResult] = []

    def execute() -> None:
        result.append(
            job.execute_in_process(
                instance=instance,
                partition_key=partition_key,
                tags=run_tags,
                run_id=run_id,
                asset_selection=asset_selection,
                raise_on_error=False,
                # progress and failures come from the event log (the summary names them); the console logger
                # would repeat every event, with stack traces, on stderr
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            )
        )

    # the run is in this process: its events reach a listener as they are stored, no reading them back
    arrived: queue.SimpleQueue[dg.EventLogEntry] = queue.SimpleQueue()
    instance.add_event_listener(run_id, arrived.put)
    begin = time.monotonic()
    worker = threading.Thread(target=execute, name=f"barecount-run-{run_id[:8]}", daemon=True)
    worker.start()
    steps, last_seen = _steps_of(defs), {}
    while True:
        finished = not worker.is_alive()
        while not arrived.empty():
            _apply_event(arrived.get(), outcomes, steps, last_seen)
        if on_progress:
            on_progress(outcomes)
        if finished:
            break
        worker.join(timeout=0.25)
    success = bool(result) and result[0].success
    return RunOutcome(
        run_id=run_id,
        success=success,
        seconds=time.monotonic() - begin,
        assets=outcomes,
        failure=None if success else (_failure_message(instance, run_id) or "the run failed"),
    )
