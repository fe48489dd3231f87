"""`build_definitions`: the one place where specs, the translator, the layer steps and the profile's resources
meet."""

from __future__ import annotations

import dagster as dg

from barecount.catalog.loader import ProjectSpecs, load_project_specs
from barecount.config.profiles import Settings
from barecount.consume.exports import declared_targets
from barecount.consume.lineage_config import lineage_jobs
from barecount.contracts import ContractRegistry
from barecount.defs.approval_job import build_approval_job
from barecount.defs.export_job import build_export_job
from barecount.defs.io_manager import WarehouseIOManager
from barecount.defs.layers import (
    RETRY_POLICY,
    Member,
    Project,
    build_layer_step,
    calendar_work,
    published_work,
    sql_work,
    stream_work,
)
from barecount.defs.partitions import FiscalCalendarResource, build_partitions_def
from barecount.defs.resources import SourceFilesResource, build_warehouse
from barecount.defs.retention_job import build_retention_job
from barecount.defs.schedules import build_calendar_schedule
from barecount.defs.sensors import (
    build_alert_sensor,
    build_approval_sensor,
    build_backfill_sensor,
    build_dead_runs_sensor,
)
from barecount.defs.translator import (
    ancestors_of,
    calendar_spec,
    published_spec,
    sql_checks,
    sql_spec,
    stream_checks,
    stream_spec,
)
from barecount.pipeline.build import is_partitioned
from barecount.pipeline.land import stream_parents
from barecount.pipeline.periods import active_periods
from barecount.pipeline.tags import ORG_TAG
from barecount.sql.calendar_tables import CALENDAR_TABLES

ALL_ASSETS_JOB = "all_assets"


def build_resources(settings: Settings) -> dict[str, object]:
    """The same resource keys for every profile; their implementations follow the profile."""
    years = settings.tenant.fiscal_years
    fiscal_calendar = FiscalCalendarResource(
        calendars_dir=str(settings.paths.calendars),
        calendar_name=settings.tenant.calendar,
        first_year=years.first,
        last_year=years.last,
    )
    warehouse = build_warehouse(settings)
    return {
        "fiscal_calendar": fiscal_calendar,
        "warehouse": warehouse,
        "sources": SourceFilesResource(root=str(settings.sources_dir)),
        "io_manager": WarehouseIOManager(
            warehouse=warehouse, fiscal_calendar=fiscal_calendar, org_slug=settings.tenant.slug
        ),
    }


def build_assets(settings: Settings, specs: ProjectSpecs) -> list[dg.AssetsDefinition]:
    """Three steps: land the snapshots, build the GDP snapshots, and build the fiscal periods (land, GDP, KPIs
    and their published tables: see `barecount.defs.layers` for why one step)."""
    years, org = settings.tenant.fiscal_years, settings.tenant.slug
    span = (years.first, years.last)
    partitions_def = build_partitions_def(active_periods(settings))
    paths = settings.paths
    stream_by_contract = {s.spec.contract: s.spec.name for s in specs.streams}
    registry = ContractRegistry.load(paths)  # for the static graph only; runs read the registry afresh
    partitioned = frozenset(
        {s.asset_ref for s in specs.streams if s.spec.partitioned}
        | {m.asset_ref for m in (*specs.models, *specs.kpis) if is_partitioned(m)}
    )
    stream_specs = {
        s.asset_ref: stream_spec(s, partitions_def, paths, stream_parents(s, registry, stream_by_contract), org)
        for s in specs.streams
    }
    sql_specs = {
        m.asset_ref: sql_spec(m, partitions_def, paths, partitioned, org) for m in (*specs.models, *specs.kpis)
    }
    published_specs = {k.asset_ref: published_spec(k, partitions_def, org) for k in specs.kpis if k.publishes}
    calendar_specs = {ref: calendar_spec(ref, settings.calendar, span, org) for ref in CALENDAR_TABLES}
    everything = [*stream_specs.values(), *sql_specs.values(), *published_specs.values(), *calendar_specs.values()]
    project = Project(
        paths=paths,
        org_slug=settings.tenant.slug,
        stream_by_contract=stream_by_contract,
        streams={s.spec.name: s.spec for s in specs.streams},
        partitioned_refs=partitioned,
        ancestors=ancestors_of(everything),
        settings=settings,
        exports=declared_targets(specs, settings.tenant),
        lineage_jobs=lineage_jobs(paths, specs),
    )
    streams = [
        Member(
            stream_specs[s.asset_ref],
            tuple(stream_checks(s, registry.in_force(s.spec.contract, None), org)),
            stream_work(s, project),
        )
        for s in specs.streams
    ]
    calendar = [Member(spec, (), calendar_work(ref, project)) for ref, spec in calendar_specs.items()]
    models = [Member(sql_specs[m.asset_ref], tuple(sql_checks(m, org)), sql_work(m, project)) for m in specs.models]
    kpis: list[Member] = []
    for kpi in specs.kpis:
        kpis.append(Member(sql_specs[kpi.asset_ref], tuple(sql_checks(kpi, org)), sql_work(kpi, project)))
        if kpi.asset_ref in published_specs:
            kpis.append(Member(published_specs[kpi.asset_ref], (), published_work(kpi, project)))

    def partitioned_members(members: list[Member], wanted: bool) -> list[Member]:
        return [m for m in members if (m.spec.partitions_def is not None) == wanted]

    steps = [
        (
            "land_snapshots",
            "Land the unpartitioned extracts (reference tables, the CRM snapshot) and the fiscal calendar tables.",
            partitioned_members(streams, False) + calendar,
            False,
            RETRY_POLICY,
        ),
        ("build_gdp_snapshots", "Build the unpartitioned GDP models.", partitioned_members(models, False), False, None),
        (
            "build_periods",
            "For the chosen fiscal periods: land each stream's extracts, build the GDP models, then each KPI, "
            "its gates, and its published table. Periods held back are shown as failed, with why.",
            partitioned_members(streams, True) + partitioned_members(models, True) + kpis,
            True,
            RETRY_POLICY,
        ),
    ]
    return [
        build_layer_step(name, description, members, project, partitioned_step, retry)
        for name, description, members, partitioned_step, retry in steps
        if members
    ]


def build_definitions(settings: Settings, specs: ProjectSpecs | None = None) -> dg.Definitions:
    """Parse every spec (all errors at once), build the steps and jobs, attach the profile's resources."""
    specs = specs or load_project_specs(settings.paths)
    org_tags = {ORG_TAG: settings.tenant.slug}
    return dg.Definitions(
        assets=build_assets(settings, specs),
        jobs=[
            dg.define_asset_job(
                ALL_ASSETS_JOB,
                selection=dg.AssetSelection.all(),
                description="Every asset of the project: Raw, GDP and KPIs, for the chosen fiscal periods.",
                tags=org_tags,
            ),
            build_approval_job(settings.paths, {s.spec.contract: s.asset_ref for s in specs.streams}, org_tags),
            build_retention_job(
                settings, {s.spec.name: s.spec.contract for s in specs.streams if s.spec.partitioned}, org_tags
            ),
            build_export_job(settings, specs, org_tags),
        ],
        schedules=[build_calendar_schedule(settings, spec, ALL_ASSETS_JOB) for spec in settings.tenant.schedules],
        sensors=[
            build_approval_sensor(settings, ALL_ASSETS_JOB),
            build_backfill_sensor(settings),
            build_dead_runs_sensor(),
            build_alert_sensor(settings, ALL_ASSETS_JOB),
        ],
        resources=build_resources(settings),
        executor=dg.in_process_executor,
    )
