"""Governed exports: published KPI periods and GDP tables written as files for downstream systems, each export
with a manifest (rows, SHA-256 per file, versions, the ledger hash of each partition) and a ledger entry.

Only what the platform vouches for leaves it: `published/<kpi>` (periods that passed every gate) and `gdp/<model>`
(conformed, personal data already masked). Raw and quarantine never do. The files are a function of the
partitions' rows (sorted, no timestamps of the export in them), so exporting the same periods again gives the
same bytes; when and by whom goes on the ledger instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from barecount.catalog.loader import ProjectSpecs
from barecount.config.profiles import DeclaredExport, Settings, Tenant, load_tenant
from barecount.config.project import ProjectPaths
from barecount.errors import RefusedError, SpecError, UsageError
from barecount.evidence import ledger
from barecount.evidence.trace import VERSION_FACTS
from barecount.pipeline.periods import resolve_periods
from barecount.sql.relation import PARTITION_COLUMN, in_list, quote_ident, sql_literal
from barecount.warehouse.connection import Connection, on_bigquery
from barecount.warehouse.writes import transaction
from barecount.yaml_source import load_yaml

ExportFormat = Literal["parquet", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("parquet", "csv")
EXPORT_KIND = "export"
MANIFEST = "manifest.json"
EXPORTABLE_LAYERS = ("published", "gdp")


@dataclass(frozen=True)
class ExportTarget:
    """What an export reads: `published/<kpi>` or `gdp/<model>`."""

    asset: str
    partitioned: bool

    @property
    def schema(self) -> str:
        return self.asset.split("/")[0]

    @property
    def table(self) -> str:
        return self.asset.split("/")[1]

    @property
    def folder(self) -> str:
        return f"{self.schema}.{self.table}"


def export_target(specs: ProjectSpecs, name: str) -> ExportTarget:
    """A KPI id (`net_revenue`, meaning its published table) or an asset ref of an exportable layer."""
    published = {f"published/{kpi}" for kpi in specs.published_kpis()}
    models = {m.asset_ref: m.spec.partitioned for m in specs.models}  # type: ignore[union-attr]
    asset = name if "/" in name else f"published/{name}"
    if asset in published:
        return ExportTarget(asset, partitioned=True)
    if asset in models:
        return ExportTarget(asset, partitioned=models[asset])
    layer = asset.split("/")[0]
    if layer not in EXPORTABLE_LAYERS:
        raise UsageError(
            f"{name}: only published KPIs and GDP tables are exported ({layer} data is not vouched for: "
            "it has not passed the KPI gates, or is not conformed and masked)"
        )
    known = sorted(published | set(models))
    raise UsageError(f"{name}: no such published KPI or GDP table (exportable: {', '.join(known)})")


@dataclass(frozen=True)
class ExportedFile:
    partition: str | None
    file: str
    """Relative to the manifest's folder."""
    rows: int
    sha256: str
    ledger_hash: str
    """The ledger entry of the partition's build: what the file's rows are, on the record."""
    versions: dict[str, Any]


@dataclass(frozen=True)
class Export:
    org_slug: str
    target: ExportTarget
    export_format: ExportFormat
    folder: Path
    files: tuple[ExportedFile, ...]
    manifest_sha256: str
    ledger_entry: str

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def chosen_partitions(conn: Connection, target: ExportTarget, periods: Sequence[str] | None) -> dict[str | None, str]:
    """The partitions to export with their ledger hashes: `periods` (each must be published, else refused by
    name), every published one when None, or the whole table for an unpartitioned one."""
    built = {p: h for (_, p), h in ledger.latest_hashes(conn, [target.asset]).items()}  # type: ignore[arg-type]
    if not target.partitioned:
        if periods:
            raise UsageError(f"{target.asset} is one table, not periods: export it without --period/--from/--to")
        if None not in built:
            raise RefusedError(f"{target.asset} has not been built: nothing to export")
        return {None: built[None]}
    if periods is None:
        chosen = [p for p in built if p is not None]
        if not chosen:
            raise RefusedError(f"{target.asset} has no published period: nothing to export")
        return {p: built[p] for p in sorted(chosen)}
    missing = [p for p in periods if p not in built]
    if missing:
        what = "published" if target.schema == "published" else "built"
        raise RefusedError(f"{target.asset}: not {what}, so not exported: {', '.join(missing)}")
    return {p: built[p] for p in periods}


def _file_name(partition: str | None, export_format: ExportFormat) -> str:
    return f"{partition or 'snapshot'}.{export_format}"


def _copy_options(export_format: ExportFormat) -> str:
    # one file per partition, rows in one order, no per-thread files: the bytes depend on the rows alone
    if export_format == "parquet":
        return "FORMAT parquet, COMPRESSION zstd, PER_THREAD_OUTPUT false"
    return "FORMAT csv, HEADER true, DATEFORMAT '%Y-%m-%d', TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S.%f'"


def _write(conn: Connection, select_sql: str, path: Path, export_format: ExportFormat) -> int:
    """Write the rows of `select_sql`, sorted, to `path`; the rows written. DuckDB writes the file itself; from
    BigQuery the rows come as Arrow into a local DuckDB that writes it the same way."""
    copy = f"TO {sql_literal(str(path))} ({_copy_options(export_format)})"
    if on_bigquery(conn):
        with duckdb.connect() as local:
            local.register("partition_rows", conn.to_arrow(select_sql))
            written = local.execute(f"COPY (SELECT * FROM partition_rows ORDER BY ALL) {copy}").fetchone()
    else:
        written = conn.execute(f"COPY ({select_sql} ORDER BY ALL) {copy}").fetchone()
    return int(written[0]) if written else 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_partitions(
    conn: Connection,
    org_slug: str,
    target: ExportTarget,
    periods: Sequence[str] | None,
    export_format: ExportFormat,
    out: Path,
    export_id: str,
    requested_by: str,
) -> Export:
    """Write the chosen partitions of `target` under `out/<schema>.<table>/`, one file each, with their
    manifest, and put the export on the ledger."""
    chosen = chosen_partitions(conn, target, periods)
    facts = ledger.latest_facts(conn, [target.asset])
    folder = out / target.folder
    folder.mkdir(parents=True, exist_ok=True)
    table = f"{target.schema}.{quote_ident(target.table)}"  # as both engines name a layer's table
    files = []
    for partition, entry_hash in chosen.items():
        where = f"x_org_slug = {sql_literal(org_slug)}"
        if partition is not None:
            where += f" AND {PARTITION_COLUMN} IN {in_list([partition])}"
        path = folder / _file_name(partition, export_format)
        staged = path.with_name(f".{path.name}.partial")
        rows = _write(conn, f"SELECT * FROM {table} WHERE {where}", staged, export_format)
        staged.replace(path)  # a reader never sees half a file
        recorded = facts.get((target.asset, partition), {})
        files.append(
            ExportedFile(
                partition,
                path.name,
                rows,
                _sha256(path),
                entry_hash,
                {k: recorded[k] for k in VERSION_FACTS if k in recorded},
            )
        )
    manifest = {
        "org": org_slug,
        "asset": target.asset,
        "format": export_format,
        "files": [asdict(f) for f in files],
        "rows": sum(f.rows for f in files),
    }
    manifest_path = folder / MANIFEST
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    manifest_sha = _sha256(manifest_path)
    with transaction(conn):
        written = ledger.append(
            conn,
            [
                ledger.NewEntry(
                    EXPORT_KIND,
                    target.asset,
                    None,
                    export_id,
                    {
                        "format": export_format,
                        "folder": str(folder),
                        "manifest_sha256": manifest_sha,
                        "partitions": {f.partition or "snapshot": f.ledger_hash for f in files},
                        "files": {f.file: f.sha256 for f in files},
                        "rows": manifest["rows"],
                        "requested_by": requested_by,
                    },
                )
            ],
        )
    return Export(org_slug, target, export_format, folder, tuple(files), manifest_sha, written[0].entry_hash)


def declared_targets(specs: ProjectSpecs, tenant: Tenant) -> dict[str, list[DeclaredExport]]:
    """The tenant's declared exports by the asset each exports (checked by `export_problems`)."""
    by_asset: dict[str, list[DeclaredExport]] = {}
    for declared in tenant.exports:
        by_asset.setdefault(export_target(specs, declared.target).asset, []).append(declared)
    return by_asset


def export_written(
    conn: Connection,
    settings: Settings,
    target: ExportTarget,
    written: Sequence[str | None],
    declared: Sequence[DeclaredExport],
    run_id: str,
) -> list[Export]:
    """Inside a run, once `target` has written `written`: the declared exports of those partitions."""
    if not written:
        return []
    periods = None if not target.partitioned else [p for p in written if p is not None]
    return [
        export_partitions(
            conn,
            settings.tenant.slug,
            target,
            periods,
            rule.format,
            settings.paths.root / settings.for_org(rule.out),
            run_id,
            f"run {run_id}",
        )
        for rule in declared
    ]


def export_problems(paths: ProjectPaths, orgs: Sequence[str], specs: ProjectSpecs) -> list[SpecError]:
    """Each tenant's declared exports name a published KPI or a GDP table, at their file, line and field."""
    problems = []
    for org in orgs:
        tenant = load_tenant(paths, org)
        file = paths.tenants / f"{org}.yaml"
        shown = paths.relative(file)
        _, positions = load_yaml(file, shown)
        for index, declared in enumerate(tenant.exports):
            try:
                export_target(specs, declared.target)
            except UsageError as exc:
                line, column = positions.get(("exports", index, "target"), (0, 0))
                problems.append(SpecError(shown, line, column, f"exports[{index}].target", str(exc)))
    return problems


def export_asked(
    conn: Connection,
    settings: Settings,
    specs: ProjectSpecs,
    name: str,
    periods_asked: tuple[str | None, str | None, str | None],
    export_format: str,
    out: Path,
    export_id: str,
    requested_by: str,
) -> Export:
    """An export as a person asks for it (`barecount export`, the `export` job): a KPI id or asset, and a
    `(period, from, to)` of which none means every published period."""
    target = export_target(specs, name)
    period, start, end = periods_asked
    periods = resolve_periods(settings, period, start, end) if (period or start or end) else None
    if export_format not in EXPORT_FORMATS:
        raise UsageError(f"--format {export_format}: one of {', '.join(EXPORT_FORMATS)}")
    return export_partitions(
        conn,
        settings.tenant.slug,
        target,
        periods,
        export_format,
        out,
        export_id,
        requested_by,  # type: ignore[arg-type]
    )
