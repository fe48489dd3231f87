"""One subsettable multi-asset step per layer and partitioning kind, as `@dbt_assets` and `@sling_assets` do:
the step loops over its selected assets in dependency order, asks the services in `barecount.pipeline` to do
the governed work, and yields a materialization and the check results per asset. A step's fixed cost is paid
once per layer, not once per asset, and the UI still shows every asset and check.

Per-period blocking is BareCount's own: a failed `blocking=True` check in a multi-asset would block every
output of the step (STYLE pitfall 6), so the services leave failing periods alone and the next layers read
only what passed. An asset whose every period was blocked yields no materialization, and the step fails
when it ends, so Dagster shows those periods as failed, not as materialized.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

from barecount.catalog.loader import LoadedSql, LoadedStream
from barecount.config.project import ProjectPaths
from barecount.contracts import ContractRegistry
from barecount.defs.partitions import FiscalCalendarResource
from barecount.defs.resources import DuckDBWarehouse, SourceFilesResource
from barecount.defs.results import check_result, materialization_metadata, materialize_result, schema_check_result
from barecount.errors import TransientSourceError, scrubbed
from barecount.pipeline.build import build_sql, publish, write_calendar_table
from barecount.pipeline.gates import GateVerdict
from barecount.pipeline.land import MAX_ATTEMPTS, land_stream
from barecount.pipeline.materialize import Materialized
from barecount.pipeline.scope import RunScope
from barecount.specs.stream import StreamSpec

RETRY_POLICY = dg.RetryPolicy(
    max_retries=MAX_ATTEMPTS - 1, delay=1.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Transient source errors (an extract still being delivered) are retried after about 1, 3 and 7 seconds."""

Event = dg.MaterializeResult | dg.AssetCheckResult


@dataclass(frozen=True)
class LayerContext:
    """What a member's work needs besides the run scope: the step's context and the project's graph."""

    context: dg.AssetExecutionContext
    scope: RunScope
    registry: ContractRegistry | None
    keys: Sequence[str] | None
    blocked: list[str]
    """Why each asset of the step that landed nothing failed: the step fails with these when it ends."""
    blocked_periods: list[str]


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


def _events(
    step: LayerContext,
    key: dg.AssetKey,
    done: Materialized,
    gates: Sequence[GateVerdict],
    data_version: str | None = None,
) -> Iterator[Event]:
    scope = step.scope
    yield materialize_result(
        step.context, key, materialization_metadata(done, scope.org_slug, scope.calendar), data_version
    )
    for verdict in gates:
        yield check_result(verdict, key)


def stream_work(stream: LoadedStream, project: Project) -> Work:
    """Land the stream; a landing where every period was blocked yields its gates and fails the step."""

    def work(step: LayerContext) -> Iterator[Event]:
        assert step.registry is not None
        key = dg.AssetKey(stream.asset_ref.split("/"))
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
            held = step.scope.held.get(stream.asset_ref, {})
            step.blocked.append("; ".join(held.values()))
            step.blocked_periods.extend(k or "snapshot" for k in held)

    return work


def sql_work(item: LoadedSql, project: Project) -> Work:
    def work(step: LayerContext) -> Iterator[Event]:
        try:
            built = build_sql(step.scope, item, step.keys, project.partitioned_refs, project.ancestors, project.streams)
        except Exception as exc:  # the SQL or its inputs are wrong: say which asset, as the rest of the step did
            raise dg.Failure(description=f"{item.asset_ref}: {scrubbed(str(exc))}", allow_retries=False) from None
        yield from _events(step, dg.AssetKey(item.asset_ref.split("/")), built.written, built.gates)

    return work


def published_work(item: LoadedSql, project: Project) -> Work:
    def work(step: LayerContext) -> Iterator[Event]:
        assert step.keys is not None
        done = publish(step.scope, item, step.keys, project.ancestors)
        yield from _events(step, dg.AssetKey(["published", item.name]), done, [])

    return work


def calendar_work(ref: str) -> Work:
    def work(step: LayerContext) -> Iterator[Event]:
        yield from _events(step, dg.AssetKey(ref.split("/")), write_calendar_table(step.scope, ref), [])

    return work


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

    @dg.multi_asset(
        name=name,
        description=description,
        specs=[m.spec for m in ordered],
        check_specs=[c for m in ordered for c in m.checks],
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        retry_policy=retry_policy,
    )
    def layer_step(
        context: dg.AssetExecutionContext,
        warehouse: DuckDBWarehouse,
        sources: SourceFilesResource,
        fiscal_calendar: FiscalCalendarResource,
    ) -> Iterator[Event]:
        selected = context.selected_asset_keys
        with warehouse.get_connection() as conn:
            scope = RunScope.resume(
                conn,
                context.run.run_id,
                org_slug=project.org_slug,
                calendar=fiscal_calendar.calendar(),
                years=(fiscal_calendar.first_year, fiscal_calendar.last_year),
                paths=project.paths,
                sources=sources.files(),
                tags=dict(context.run.tags),
                retry_number=context.retry_number,
                warn=context.log.warning,
            )
            # read afresh by every run: an approval applies without a code reload
            keys = scope.sort_keys(context.partition_keys) if partitioned else None
            registry = ContractRegistry.load(project.paths) if lands_streams else None
            step = LayerContext(context, scope, registry, keys, [], [])
            checks = context.selected_asset_check_keys
            failed: dict[dg.AssetKey, str] = {}
            for member in ordered:
                key = member.spec.key
                if key not in selected:
                    continue
                waits_for = [d.asset_key.to_user_string() for d in member.spec.deps if d.asset_key in failed]
                if waits_for:
                    failed[key] = f"{key.to_user_string()} not built: {', '.join(waits_for)} failed"
                    continue
                try:
                    for event in member.work(step):
                        if isinstance(event, dg.MaterializeResult) or _check_key(event) in checks:
                            yield event
                except dg.Failure as exc:  # this asset fails alone: the others of the step are still built
                    failed[key] = exc.description or key.to_user_string()
        if step.blocked or failed:
            # the step fails when it ends, so Dagster shows what did not land or build as failed
            raise dg.Failure(
                description="; ".join([*step.blocked, *failed.values()]),
                metadata={"blocked_partitions": ", ".join(step.blocked_periods) or "none"},
                allow_retries=False,
            )

    return layer_step
