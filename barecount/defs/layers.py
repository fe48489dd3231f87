"""Three subsettable multi-asset steps, as `@dbt_assets` and `@sling_assets` compute many assets in one step:
land the snapshots, build the GDP snapshots, and build the fiscal periods from landing to publication. A
step loops over its selected assets in dependency order, asks the services in `barecount.pipeline` to do
the governed work, and yields the events and check results of each asset. A step's fixed cost is paid once,
not once per asset, and the UI still shows every asset and check.

Per-period blocking is BareCount's own: a failed `blocking=True` check in a multi-asset would block every
output of the step (STYLE pitfall 6), so the services leave failing periods alone and the next layers read
only what passed. A period held back (blocked by drift, an input held, a gate that failed before
publication) gets an observation saying why, not a materialization, and the step fails when it ends, so
Dagster shows exactly those periods as failed and the others as materialized. Events per period need the
asset's output to be skipped, and Dagster skips every step downstream of a skipped output: so every
partitioned asset, from landing to publication, is computed in one step (`build_periods`), as `@dbt_assets`
computes a whole dbt project in one step.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import dagster as dg

from barecount.calendar import FiscalCalendar, describe_periods
from barecount.catalog.loader import LoadedSql, LoadedStream
from barecount.config.profiles import DeclaredExport, Settings
from barecount.config.project import ProjectPaths
from barecount.consume.exports import ExportTarget, export_written
from barecount.consume.lineage_config import AssetJob, lineage_client
from barecount.contracts import ContractRegistry
from barecount.defs.partitions import FiscalCalendarResource
from barecount.defs.rendering import markdown_table
from barecount.defs.resources import SourceFilesResource, Warehouse
from barecount.defs.results import (
    AssetEvent,
    asset_events,
    check_result,
    materialization_metadata,
    schema_check_result,
    verdicts_first,
)
from barecount.defs.translator import asset_key, asset_ref
from barecount.errors import TransientSourceError, scrubbed
from barecount.pipeline.build import build_sql, publish, write_calendar_table
from barecount.pipeline.gates import GateVerdict
from barecount.pipeline.land import MAX_ATTEMPTS, land_stream
from barecount.pipeline.materialize import Materialized
from barecount.pipeline.scope import RunScope
from barecount.pipeline.sources import Sources
from barecount.specs.stream import StreamSpec
from barecount.warehouse.connection import on_bigquery

if TYPE_CHECKING:
    from barecount.consume.openlineage import RunLineage
    from barecount.warehouse.bigquery import JobCosts

RETRY_POLICY = dg.RetryPolicy(
    max_retries=MAX_ATTEMPTS - 1, delay=1.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Transient source errors (an extract still being delivered) are retried after about 1, 3 and 7 seconds."""

Event = AssetEvent | dg.AssetCheckResult


@dataclass(frozen=True)
class LayerContext:
    """What a member's work needs besides the run scope: the step's context and the project's graph."""

    context: dg.AssetExecutionContext
    scope: RunScope
    registry: ContractRegistry | None
    keys: Sequence[str] | None
    held: dict[str, dict[str | None, str]]
    """Asset -> the periods of the step it held back, and why: the step fails with these when it ends."""
    costs_seen: list["JobCosts"] = field(default_factory=list)
    """On BigQuery, the session's job costs when the step began and when each asset's events were made: what an
    asset cost is the difference from the last."""


Work = Callable[[LayerContext], Iterator[Event]]


@dataclass(frozen=True)
class Member:
    """One asset of a layer step: its spec, its checks, and the work that materializes it."""

    spec: dg.AssetSpec
    checks: tuple[dg.AssetCheckSpec, ...]
    work: Work


@dataclass(frozen=True)
class Project:
    """What every step knows of the project, fixed when the definitions load."""

    paths: ProjectPaths
    org_slug: str
    stream_by_contract: Mapping[str, str]
    streams: Mapping[str, StreamSpec]
    partitioned_refs: frozenset[str]
    ancestors: Mapping[str, frozenset[str]]
    settings: Settings
    exports: Mapping[str, Sequence[DeclaredExport]]
    """Asset -> the tenant's exports of it, made by the step that writes it (`consume.exports`)."""
    lineage_jobs: Mapping[str, AssetJob]
    """Asset -> its SQL and declaring file, for its OpenLineage job."""


def _events(
    step: LayerContext,
    key: dg.AssetKey,
    done: Materialized,
    gates: Sequence[GateVerdict],
    data_version: str | None = None,
    values: Mapping[str, Mapping[str, float | None]] | None = None,
) -> Iterator[Event]:
    scope = step.scope
    if done.held:
        step.held[asset_ref(key)] = {k: h.reason for k, h in done.held.items()}
    metadata = materialization_metadata(done, scope.org_slug, scope.calendar, verdicts_first(values or {}, gates))
    if on_bigquery(scope.conn):
        metadata[None] |= _bigquery_costs(step, scope.conn.costs)
    yield from asset_events(step.context, key, metadata, step.keys, done.held.keys(), data_version)
    for verdict in gates:
        yield check_result(verdict, key)


def _bigquery_costs(step: LayerContext, now: "JobCosts") -> dict[str, int]:
    """What the asset's work in this step cost BigQuery (every period of it, its reads and its gates)."""
    cost = now.since(step.costs_seen[-1])
    step.costs_seen.append(replace(now))
    return {
        "bigquery_queries": cost.queries,
        "bigquery_loads": cost.loads,
        "bigquery_bytes_processed": cost.bytes_processed,
        "bigquery_bytes_billed": cost.bytes_billed,
    }


def _export(step: LayerContext, project: Project, done: Materialized) -> None:
    """The tenant's declared exports of what this step just wrote (published periods, GDP periods)."""
    declared = project.exports.get(done.asset)
    if not declared:
        return
    target = ExportTarget(done.asset, partitioned=done.keys is not None)
    for made in export_written(step.scope.conn, project.settings, target, done.written, declared, step.scope.run_id):
        step.context.log.info(f"exported {len(made.files)} file(s) of {done.asset} to {made.folder}")


def stream_work(stream: LoadedStream, project: Project) -> Work:
    """Land the stream; a landing where every period was blocked yields its gates and fails the step."""

    def work(step: LayerContext) -> Iterator[Event]:
        assert step.registry is not None
        key = asset_key(stream.asset_ref, project.org_slug)
        keys = step.keys if stream.spec.partitioned else None
        try:
            landing = land_stream(step.scope, step.registry, stream, keys, project.stream_by_contract)
        except TransientSourceError as exc:  # retried by the policy, with backoff and jitter
            raise TransientSourceError(f"{stream.asset_ref}: {exc}") from exc
        except Exception as exc:  # a bad or missing file, refused data: another attempt would fail the same way
            raise dg.Failure(description=f"{stream.asset_ref}: {scrubbed(str(exc))}", allow_retries=False) from None
        if landing.written is not None:
            yield from _events(step, key, landing.written, (), landing.data_version)
        yield schema_check_result(stream.spec.contract, landing.plan, key)
        for verdict in landing.gates:
            yield check_result(verdict, key)
        if landing.written is None:
            step.held[stream.asset_ref] = step.scope.held.get(stream.asset_ref, {})

    return work


def sql_work(item: LoadedSql, project: Project) -> Work:
    def work(step: LayerContext) -> Iterator[Event]:
        try:
            built = build_sql(step.scope, item, step.keys, project.partitioned_refs, project.ancestors, project.streams)
        except Exception as exc:  # the SQL or its inputs are wrong: say which asset, as the rest of the step did
            raise dg.Failure(description=f"{item.asset_ref}: {scrubbed(str(exc))}", allow_retries=False) from None
        _export(step, project, built.written)
        key = asset_key(item.asset_ref, project.org_slug)
        yield from _events(step, key, built.written, built.gates, values=built.values)

    return work


def published_work(item: LoadedSql, project: Project) -> Work:
    def work(step: LayerContext) -> Iterator[Event]:
        assert step.keys is not None
        done = publish(step.scope, item, step.keys, project.ancestors)
        _export(step, project, done)
        yield from _events(step, asset_key(f"published/{item.name}", project.org_slug), done, [])

    return work


def calendar_work(ref: str, project: Project) -> Work:
    def work(step: LayerContext) -> Iterator[Event]:
        done = write_calendar_table(step.scope, ref)
        yield from _events(step, asset_key(ref, project.org_slug), done, [])

    return work


def _lineage(context: dg.AssetExecutionContext, project: Project, calendar: FiscalCalendar) -> "RunLineage | None":
    """The run's OpenLineage events, when the deployment configured a transport (else None: nothing is sent)."""
    client = lineage_client()
    if client is None:
        return None
    from barecount.consume.openlineage import RunLineage, dataset_names

    return RunLineage(
        client,
        project.org_slug,
        context.run.run_id,
        context.job_name,
        dataset_names(project.settings),
        calendar,
        project.lineage_jobs,
    )


def _held_text(asset: str, held: Mapping[str | None, str]) -> str:
    """`asset: N period(s) held back: <why> (<periods>)`, one clause per distinct reason."""
    by_reason: dict[str, list[str | None]] = {}
    for key, why in held.items():
        by_reason.setdefault(why, []).append(key)
    reasons = "; ".join(
        f"{why} ({describe_periods(k for k in keys if k is not None) or 'snapshot'})" for why, keys in by_reason.items()
    )
    return f"{asset}: {len(held)} period(s) held back: {reasons}"


def _check_key(result: dg.AssetCheckResult) -> dg.AssetCheckKey:
    assert result.asset_key is not None
    return dg.AssetCheckKey(result.asset_key, result.check_name or "")


def dependency_order(members: Sequence[Member]) -> list[Member]:
    """The members with every asset after those of the step it depends on (Dagster refuses other orders)."""
    by_key = {m.spec.key: m for m in members}
    ordered: list[Member] = []
    seen: set[dg.AssetKey] = set()

    def visit(member: Member) -> None:
        if member.spec.key in seen:
            return
        seen.add(member.spec.key)
        for dep in member.spec.deps:
            if dep.asset_key in by_key:
                visit(by_key[dep.asset_key])
        ordered.append(member)

    for member in members:
        visit(member)
    return ordered


def build_layer_step(
    name: str,
    description: str,
    members: Sequence[Member],
    project: Project,
    partitioned: bool,
    retry_policy: dg.RetryPolicy | None = None,
) -> dg.AssetsDefinition:
    """One step computing the selected assets of `members` in dependency order."""
    ordered = dependency_order(members)
    lands_streams = retry_policy is not None
    partitions_def = ordered[0].spec.partitions_def if partitioned else None
    active = tuple(partitions_def.get_partition_keys()) if partitions_def is not None else None

    @dg.multi_asset(
        name=name,
        description=description,
        # not skippable: an asset that holds periods back records one event per period, not the output, and the
        # step then fails with why (a skippable one would show its checks as not evaluated)
        specs=[m.spec for m in ordered],
        check_specs=[c for m in ordered for c in m.checks],
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        retry_policy=retry_policy,
    )
    def layer_step(
        context: dg.AssetExecutionContext,
        warehouse: dg.ResourceParam[Warehouse],
        sources: SourceFilesResource,
        fiscal_calendar: FiscalCalendarResource,
    ) -> Iterator[Event]:
        selected = context.selected_asset_keys
        calendar = fiscal_calendar.calendar()
        with warehouse.get_connection() as conn:
            # what the step's assets cost is counted from here: the run's session may have served other steps
            seen = [replace(conn.costs)] if on_bigquery(conn) else []
            scope = RunScope.resume(
                conn,
                context.run.run_id,
                org_slug=project.org_slug,
                calendar=calendar,
                years=(fiscal_calendar.first_year, fiscal_calendar.last_year),
                active=active,
                paths=project.paths,
                sources=Sources(sources.files(), calendar),
                tags=dict(context.run.tags),
                retry_number=context.retry_number,
                warn=context.log.warning,
            )
            # read afresh by every run: an approval applies without a code reload
            keys = scope.sort_keys(context.partition_keys) if partitioned else None
            registry = ContractRegistry.load(project.paths) if lands_streams else None
            step = LayerContext(context, scope, registry, keys, {}, seen)
            checks = context.selected_asset_check_keys
            failed: dict[dg.AssetKey, str] = {}
            lineage = _lineage(context, project, calendar)
            for member in ordered:
                key = member.spec.key
                if key not in selected:
                    continue
                waits_for = [asset_ref(d.asset_key) for d in member.spec.deps if d.asset_key in failed]
                if waits_for:
                    failed[key] = f"{asset_ref(key)} not built: {', '.join(waits_for)} failed"
                    continue
                if lineage is not None:
                    lineage.start(asset_ref(key), list(keys) if keys is not None else [None])
                try:
                    for event in member.work(step):
                        if not isinstance(event, dg.AssetCheckResult) or _check_key(event) in checks:
                            yield event
                except dg.Failure as exc:  # this asset fails alone: the others of the step are still built
                    failed[key] = exc.description or asset_ref(key)
                if lineage is not None:
                    lineage.finish(conn, asset_ref(key), context.run.run_id, failed.get(key))
        if step.held or failed:
            # the step fails when it ends, so Dagster shows what was held back or did not build as failed
            raise dg.Failure(
                description="; ".join([*(_held_text(a, held) for a, held in step.held.items()), *failed.values()]),
                metadata={
                    "held_partitions": dg.MetadataValue.md(
                        markdown_table(
                            ("asset", "period", "why"),
                            [(a, k or "snapshot", why) for a, held in step.held.items() for k, why in held.items()],
                        )
                    )
                },
                allow_retries=False,
            )

    return layer_step
