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
from barecount.defs.translator import asset_ref
from barecount.errors import UsageError
from barecount.evidence.holds import WARNING_GATES
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
    checks_warned: int = 0
    """Checks that failed but only warn (a late extract: `evidence.holds.WARNING_GATES`)."""
    held: int = 0
    """Partitions of the run left as they were (blocked by drift, or an input was held back)."""
    unchanged: int = 0
    """Partitions whose work was done before (same inputs, code and contract versions): not written again."""
    quarantined: int = 0
    """Rows the asset's gates set aside in quarantine (landing only)."""
    finished: bool = False
    """Its events are all in: the next asset of its step has begun, or the step has ended."""


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


@dataclass
class EventFold:
    """Folds the events of a run into per-asset outcomes as they arrive. A layer step computes its assets one
    after the other, so an asset's time is from the step's start, or the previous asset's first event, to its
    own first event; and an asset is finished once the next asset of its step begins, or the step ends."""

    outcomes: dict[str, AssetOutcome]
    steps: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Step key -> the assets it computes."""
    last_seen: dict[str, float] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)
    """Step key -> the asset it computes now."""

    def add(self, event: dg.EventLogEntry) -> None:
        dagster_event = event.dagster_event
        if dagster_event is None:
            return
        kind = dagster_event.event_type
        if kind in (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_OBSERVATION):
            self._asset_event(event, dagster_event.step_key or "")
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = dagster_event.event_specific_data
            checked = self.outcomes.get(asset_ref(evaluation.asset_key))  # type: ignore[union-attr]
            if checked is not None:
                if evaluation.passed:  # type: ignore[union-attr]
                    checked.checks_passed += 1
                elif evaluation.check_name in WARNING_GATES:  # type: ignore[union-attr]
                    checked.checks_warned += 1
                else:
                    checked.checks_failed += 1
        elif dagster_event.step_key is not None:
            self._step_event(kind, dagster_event.step_key, event.timestamp)

    def _asset_event(self, event: dg.EventLogEntry, step: str) -> None:
        # a materialization per period written or unchanged, an observation per period held back (see
        # barecount.defs.results), or one materialization for every period of the run
        recorded = event.asset_materialization or event.asset_observation
        if recorded is None:
            return
        name = asset_ref(recorded.asset_key)
        outcome = self.outcomes.setdefault(name, AssetOutcome(name))
        if self.current.get(step) != name:  # its first event: its work has ended, and the previous asset's
            if step in self.current:
                self.outcomes[self.current[step]].finished = True
            self.current[step] = name
            outcome.seconds = event.timestamp - self.last_seen.get(step, event.timestamp)
            self.last_seen[step] = event.timestamp
        metadata = recorded.metadata
        if event.asset_observation is not None:
            if "held_back" in metadata:
                outcome.held += 1
                outcome.status = "done" if outcome.status == "done" else "held"
            return
        outcome.status = "done"
        if "unchanged_since_run" in metadata:
            outcome.unchanged += 1
            return  # its rows were written before: the run's rows are those it wrote
        if recorded.partition is not None:
            outcome.partitions += 1
        for field_name, key in (("rows", "dagster/row_count"), ("quarantined", "rows_quarantined")):
            value = metadata.get(key)
            if value is not None:
                setattr(outcome, field_name, getattr(outcome, field_name) + int(value.value))  # type: ignore[arg-type]

    def _step_event(self, kind: dg.DagsterEventType, step: str, timestamp: float) -> None:
        members = [self.outcomes[a] for a in self.steps.get(step, ()) if a in self.outcomes]
        if kind == dg.DagsterEventType.STEP_START:
            self.last_seen[step] = timestamp
        status = {
            dg.DagsterEventType.STEP_START: ("pending", "running"),
            dg.DagsterEventType.STEP_UP_FOR_RETRY: ("running", "retrying"),
            dg.DagsterEventType.STEP_RESTARTED: ("retrying", "running"),
            dg.DagsterEventType.STEP_SUCCESS: ("running", "done"),
            dg.DagsterEventType.STEP_FAILURE: ("running", "failed"),
            dg.DagsterEventType.STEP_SKIPPED: ("pending", "skipped"),
        }.get(kind)
        if status is None:
            return
        before, after = status
        for outcome in members:
            if outcome.status == before or (after == "retrying" and outcome.status == "done"):
                outcome.status = after
        if kind == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            self.current.pop(step, None)
        if kind in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_SKIPPED,
        ):
            for outcome in members:
                if outcome.status == "pending":  # what a failed step did not get to
                    outcome.status = "skipped"
                outcome.finished = True


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
            steps[assets_def.node_def.name] = [asset_ref(k) for k in assets_def.keys]
    return steps


SELECTION_PATTERN = re.compile(r"(?P<up>\d*\+)?(?P<key>[^+]+?)(?P<down>\+\d*)?")
KEY_TERM = re.compile(r'key:("?)')


def _known_refs(defs: dg.Definitions) -> dict[str, dg.AssetKey]:
    """The definitions' assets by their ref (`raw/orders`: the key without its organisation)."""
    return {asset_ref(k): k for k in defs.resolve_all_asset_keys()}


def every_asset(defs: dg.Definitions) -> list[str]:
    """Every asset ref of the definitions, layer by layer."""
    return sorted(_known_refs(defs), key=_layer_order)


def resolve_selection(defs: dg.Definitions, patterns: Sequence[str]) -> list[str]:
    """Asset refs for `--select` patterns: a ref (`kpi/net_revenue`), a glob (`kpi/*`), a group
    (`group:raw`), with `+` before for everything upstream and after for everything downstream
    (`+kpi/net_revenue`, `raw/orders+`, `1+kpi/net_revenue` for one level), or any Dagster selection
    (`tag:domain=erp`, `key:"gdp/*" and not key:"gdp/parts"`), its keys without the organisation that leads
    them in Dagster. In graph order."""
    graph = defs.resolve_asset_graph()
    known = _known_refs(defs)
    org = next(iter(known.values())).path[0]
    chosen: set[str] = set()
    for pattern in patterns:
        shape = SELECTION_PATTERN.fullmatch(pattern.strip())
        text = pattern
        if shape is not None and ":" not in pattern and " " not in pattern:
            text = f'{shape["up"] or ""}key:"{shape["key"]}"{shape["down"] or ""}'
        text = KEY_TERM.sub(lambda term: f"{term[0]}{org}/", text)
        try:
            found = {asset_ref(k) for k in dg.AssetSelection.from_string(text).resolve(graph)}
        except Exception as exc:  # Dagster's parser says what it could not read
            raise UsageError(f"--select {pattern}: not a selection ({exc})") from None
        if not found:
            raise UsageError(
                f"--select {pattern}: matches no asset; known: {', '.join(sorted(known))} "
                "(globs, group:<layer>, +upstream and downstream+ work too)"
            )
        chosen |= found & known.keys()
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
    known = _known_refs(defs)
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
    fold = EventFold(outcomes, _steps_of(defs))
    while True:
        finished = not worker.is_alive()
        while not arrived.empty():
            fold.add(arrived.get())
        if finished:
            for outcome in outcomes.values():
                outcome.finished = True
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
