"""`export`: published KPI periods or a GDP table written as files from the UI's launchpad, exactly as
`barecount export` writes them (`barecount.consume.exports`)."""

from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from barecount.catalog.loader import ProjectSpecs
from barecount.config.profiles import Settings
from barecount.consume.exports import export_asked
from barecount.defs.resources import Warehouse

EXPORT_JOB = "export"


class ExportConfig(dg.Config):
    """What to export: the launchpad's config."""

    target: str = Field(description="A KPI id (its published periods, e.g. net_revenue) or gdp/<model>.")
    period: str | None = Field(default=None, description="One period (default: every published period).")
    from_period: str | None = Field(default=None, description="First period of a range.")
    to_period: str | None = Field(default=None, description="Last period of a range.")
    format: str = Field(default="parquet", description="parquet or csv.")
    out: str = Field(default="data/{org}/exports", description="Folder, relative to the project root.")


def build_export_job(settings: Settings, specs: ProjectSpecs, tags: Mapping[str, str]) -> dg.JobDefinition:
    @dg.op(
        name="export_files",
        description="Writes the chosen periods as one file each with a manifest (rows, SHA-256, versions, the "
        "ledger hash of each partition) and puts the export on the ledger. Only published KPIs and GDP tables.",
        out=dg.Out(dg.Nothing),
    )
    def export_files(
        context: dg.OpExecutionContext, config: ExportConfig, warehouse: dg.ResourceParam[Warehouse]
    ) -> dg.Output[None]:
        with warehouse.get_connection() as conn:
            done = export_asked(
                conn,
                settings,
                specs,
                config.target,
                (config.period, config.from_period, config.to_period),
                config.format,
                settings.paths.root / settings.for_org(config.out),
                context.run_id,
                f"run {context.run_id}",
            )
        return dg.Output(
            None,
            metadata={
                "folder": str(done.folder),
                "files": len(done.files),
                "rows": done.rows,
                "manifest_sha256": done.manifest_sha256,
                "ledger_entry": done.ledger_entry,
            },
        )

    @dg.job(
        name=EXPORT_JOB,
        description="Exports published KPI periods or a GDP table as files with a manifest, on the ledger.",
        tags=tags,
    )
    def export() -> None:
        export_files()

    return export
