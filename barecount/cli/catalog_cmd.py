"""`barecount catalog`: every dataset of the organisation, from the project files and the warehouse's evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths


def catalog(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output: one object per dataset.")] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", metavar="OUT", help="Write one static HTML page (the table and the lineage graph)."),
    ] = None,
) -> None:
    """List every dataset (calendar, raw, gdp, kpi, published): its layer, owner, description, columns with their
    types and personal-data tags, its contract, model or KPI version, freshness, last period, rows, upstream and
    downstream. Built from the project files and the evidence, never by hand. The service's GET /catalog/{org}
    answers the same."""
    from barecount.catalog.loader import load_project_specs
    from barecount.config.profiles import load_settings
    from barecount.consume.catalog import build_catalog
    from barecount.contracts import ContractRegistry
    from barecount.warehouse.connection import warehouse_file

    settings = load_settings(ProjectPaths.discover())
    specs = load_project_specs(settings.paths)
    registry = ContractRegistry.load(settings.paths)
    warehouse = warehouse_file(settings)
    if warehouse.exists():
        with warehouse.get_connection(read_only=True) as conn:
            datasets = build_catalog(conn, settings, specs, registry)
    else:
        datasets = build_catalog(None, settings, specs, registry)
    if html is not None:
        from barecount.consume.catalog_page import catalog_page

        generated = datetime.now(UTC).isoformat(timespec="seconds")
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(catalog_page(settings.tenant.slug, datasets, generated), encoding="utf-8")
        out.print(f"Wrote the catalog of {len(datasets)} datasets to {html}")
        return
    if as_json:
        print_json({"org": settings.tenant.slug, "datasets": [d.as_dict() for d in datasets]})
        return
    table = Table("dataset", "owner", "version", "last period", "rows", "built at (UTC)", "columns (pii)")
    for d in datasets:
        tagged = sum(1 for c in d.columns if c.pii)
        table.add_row(
            d.ref,
            d.owner,
            d.version,
            d.last_period or ("snapshot" if d.built_at else "-"),
            "-" if d.rows is None else f"{d.rows:,}",
            d.built_at or "-",
            f"{len(d.columns)} ({tagged})" if d.columns else "-",
        )
    out.print(table)
