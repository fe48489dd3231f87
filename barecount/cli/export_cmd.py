"""`barecount export`: published KPI periods or a GDP table as files for downstream systems, with a manifest and a
ledger entry."""

from __future__ import annotations

import getpass
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths


def export(
    target: Annotated[
        str,
        typer.Argument(
            metavar="KPI|ASSET",
            help="A KPI id (its published periods, e.g. net_revenue) or a GDP table (e.g. gdp/order_lines).",
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="The folder to write into.", show_default=False)],
    export_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    period: Annotated[str | None, typer.Option("--period", help="One period, e.g. FY1995-P03.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First period of a range.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last period of a range.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Write published KPI periods, or a GDP table's periods (personal data masked), as one file per period under
    OUT/<schema>.<table>/ with a manifest.json: rows and SHA-256 of each file, the versions and the ledger hash of
    each partition. The export goes on the ledger. Raw and quarantine are never exported; a period that is not
    published is refused by name (exit 1). Without a period, every published period. Exporting the same periods
    again writes the same bytes. The `export` job in the UI does the same."""
    from barecount.catalog.loader import load_project_specs
    from barecount.config.profiles import load_settings
    from barecount.consume.exports import export_asked
    from barecount.errors import UsageError
    from barecount.warehouse.connection import warehouse_file

    settings = load_settings(ProjectPaths.discover())
    specs = load_project_specs(settings.paths)
    warehouse = warehouse_file(settings)
    if not warehouse.exists():
        raise UsageError(f"no warehouse for {settings.tenant.slug} yet: run `barecount demo` or `barecount run`")
    with warehouse.get_connection() as conn:
        done = export_asked(
            conn,
            settings,
            specs,
            target,
            (period, start, end),
            export_format,
            out_dir.resolve(),
            f"export-{uuid.uuid4()}",
            getpass.getuser(),
        )
    chosen = done.target
    if as_json:
        print_json(
            {
                "asset": chosen.asset,
                "folder": str(done.folder),
                "manifest_sha256": done.manifest_sha256,
                "ledger_entry": done.ledger_entry,
                "files": [
                    {"partition": f.partition, "file": f.file, "rows": f.rows, "sha256": f.sha256} for f in done.files
                ],
            }
        )
        return
    table = Table("period", "file", "rows", "sha256", title=f"{chosen.asset} -> {done.folder}")
    for f in done.files:
        table.add_row(f.partition or "snapshot", f.file, f"{f.rows:,}", f.sha256[:16] + "…")
    out.print(table)
    out.print(
        f"Exported {len(done.files)} partition(s), {done.rows:,} row(s) as {export_format}; manifest "
        f"{done.manifest_sha256[:16]}…, on the ledger as {done.ledger_entry[:16]}…"
    )
