"""`build_definitions`: the one place where specs, factories and the profile's resources meet."""

from __future__ import annotations

import dagster as dg

from barecount.approval_job import build_approval_job
from barecount.calendar.partitions import FiscalCalendarResource, build_partitions_def
from barecount.calendar.table import build_calendar_assets
from barecount.connectors.files import SourceFiles
from barecount.factories.kpi_checks import build_threshold_check
from barecount.factories.model_checks import build_model_tests_check
from barecount.factories.published import build_published_asset
from barecount.factories.reconciliation import build_reconciliation_check
from barecount.factories.sql_assets import build_sql_asset
from barecount.factories.streams import build_stream_asset
from barecount.profiles import Settings
from barecount.registry import ContractRegistry
from barecount.sensors import build_approval_sensor, build_backfill_sensor
from barecount.specs.loader import ProjectSpecs, load_project_specs
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.io_manager import WarehouseIOManager

ALL_ASSETS_JOB = "all_assets"


def build_warehouse(settings: Settings) -> DuckDBWarehouse:
    """The profile's warehouse resource (also used directly by the CLI, outside runs)."""
    return DuckDBWarehouse(
        database=str(settings.warehouse_path),
        wait_timeout_seconds=settings.profile.warehouse.wait_timeout_seconds,
    )


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
        "sources": SourceFiles(root=str(settings.sources_dir)),
        "io_manager": WarehouseIOManager(
            warehouse=warehouse, fiscal_calendar=fiscal_calendar, org_slug=settings.tenant.slug
        ),
    }


def build_assets(settings: Settings, specs: ProjectSpecs) -> list[dg.AssetsDefinition]:
    years = settings.tenant.fiscal_years
    partitions_def = build_partitions_def(settings.calendar, years.first, years.last)
    paths = settings.paths
    stream_by_contract = {s.spec.contract: s.spec.name for s in specs.streams}
    registry = ContractRegistry.load(paths)  # for the static graph only; runs read the registry afresh
    partitioned = {s.asset_ref for s in specs.streams if s.spec.partitioned} | {
        m.asset_ref for m in (*specs.models, *specs.kpis) if getattr(m.spec, "partitioned", True)
    }
    return [
        build_stream_asset(s, partitions_def, paths, stream_by_contract, registry, settings.tenant.slug)
        for s in specs.streams
    ] + [
        *build_calendar_assets(settings.calendar, years.first, years.last),
        *(build_sql_asset(m, partitions_def, paths, partitioned) for m in (*specs.models, *specs.kpis)),
        *(build_published_asset(k, partitions_def) for k in specs.kpis if k.publishes),
    ]


def build_definitions(settings: Settings, specs: ProjectSpecs | None = None) -> dg.Definitions:
    """Parse every spec (all errors at once), build the assets and jobs, attach the profile's resources."""
    specs = specs or load_project_specs(settings.paths)
    assets = build_assets(settings, specs)
    org = settings.tenant.slug
    streams = {s.spec.name: s.spec for s in specs.streams}
    return dg.Definitions(
        assets=assets,
        asset_checks=[build_model_tests_check(m) for m in specs.models]
        + [build_threshold_check(k, org) for k in specs.kpis if getattr(k.spec, "thresholds", None)]
        + [build_reconciliation_check(k, streams, org) for k in specs.kpis if getattr(k.spec, "reconciliation", None)],
        jobs=[
            dg.define_asset_job(
                ALL_ASSETS_JOB,
                selection=dg.AssetSelection.all(),
                description="Every asset of the project: Raw, GDP and KPIs, for the chosen fiscal periods.",
            ),
            build_approval_job(settings.paths, {s.spec.contract: s.asset_ref for s in specs.streams}),
        ],
        sensors=[build_approval_sensor(settings, ALL_ASSETS_JOB), build_backfill_sensor(settings)],
        resources=build_resources(settings),
        executor=dg.in_process_executor,
    )
