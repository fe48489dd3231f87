"""The catalog of every dataset an organisation has: what the project files declare (layer, owner, description,
version, upstream and downstream) joined with what the warehouse and its evidence hold (columns with their types
and personal-data tags, freshness, the last period, rows). Built on demand, never maintained by hand: `barecount
catalog`, the service's `GET /catalog/{org}` and the static HTML page all read it from here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from barecount.catalog.loader import LoadedSql, ProjectSpecs
from barecount.config.profiles import Settings
from barecount.contracts import ContractRegistry
from barecount.evidence import LEDGER_TABLE, evidence_table_exists
from barecount.pipeline.build import is_partitioned, published_version, sql_version
from barecount.pipeline.land import stream_parents, stream_version
from barecount.specs.common import owner_ref
from barecount.specs.kpi import KpiSpec
from barecount.sql.calendar_tables import CALENDAR_TABLES, calendar_table_sql
from barecount.sql.hashing import code_version
from barecount.sql.relation import quote_ident
from barecount.warehouse.catalog import table_columns, tables
from barecount.warehouse.connection import Connection

LAYERS = ("calendar", "raw", "gdp", "kpi", "published")
"""The layers in the order data flows through them: the lineage graph's columns."""
CALENDAR_OWNER = "team:finance-data"


@dataclass(frozen=True)
class DatasetColumn:
    name: str
    type: str
    pii: str | None = None
    """`pii` for a personal column of a contract (Raw), or the GDP model's treatment of it (`hash`, `redact`)."""


@dataclass
class Dataset:
    """One asset of the graph as a catalog lists it."""

    ref: str
    layer: str
    owner: str
    description: str
    version: str
    """What a person versions: the contract version in force (Raw), the KPI version, the model's code version."""
    code_version: str
    """The asset's code version, as the Dagster UI shows it."""
    partitioned: bool
    upstream: list[str]
    downstream: list[str] = field(default_factory=list)
    columns: list[DatasetColumn] = field(default_factory=list)
    last_period: str | None = None
    rows: int | None = None
    built_at: str | None = None
    """When its newest partition was built (UTC): the dataset's freshness."""
    ledger_hash: str | None = None
    """The ledger entry of its newest build."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sql_dataset(item: LoadedSql) -> Dataset:
    spec, code = item.spec, sql_version(item)
    return Dataset(
        ref=item.asset_ref,
        layer=item.layer,
        owner=owner_ref(spec.owner),
        description=spec.description.strip(),
        version=f"{spec.id} {spec.version}" if isinstance(spec, KpiSpec) else f"code {code}",
        code_version=code,
        partitioned=is_partitioned(item),
        upstream=list(spec.depends_on),
    )


def declared_datasets(settings: Settings, specs: ProjectSpecs, registry: ContractRegistry) -> list[Dataset]:
    """Every asset of the graph, from the project files alone, in layer order."""
    years = (settings.tenant.fiscal_years.first, settings.tenant.fiscal_years.last)
    found = [
        Dataset(
            ref=ref,
            layer="calendar",
            owner=CALENDAR_OWNER,
            description=f"The {settings.calendar.spec.name} fiscal calendar: {CALENDAR_TABLES[ref][2]}.",
            version=f"{settings.tenant.calendar} {years[0]}-{years[1]}",
            code_version=code_version(calendar_table_sql(ref, settings.calendar, years)),
            partitioned=False,
            upstream=[],
        )
        for ref in CALENDAR_TABLES
    ]
    by_contract = {s.spec.contract: s.spec.name for s in specs.streams}
    for stream in specs.streams:
        contract = registry.in_force(stream.spec.contract, None)
        found.append(
            Dataset(
                ref=stream.asset_ref,
                layer="raw",
                owner=owner_ref(stream.spec.owner),
                description=stream.spec.description.strip(),
                version=f"{contract.id} {contract.version}",
                code_version=stream_version(stream),
                partitioned=stream.spec.partitioned,
                upstream=[f"raw/{p}" for p in stream_parents(stream, registry, by_contract)],
                columns=[DatasetColumn(c.name, c.physical_type, "pii" if c.pii else None) for c in contract.columns],
            )
        )
    found += [_sql_dataset(m) for m in specs.models]
    for kpi in specs.kpis:
        found.append(_sql_dataset(kpi))
        if kpi.publishes:
            spec = kpi.spec
            assert isinstance(spec, KpiSpec)
            found.append(
                Dataset(
                    ref=f"published/{spec.id}",
                    layer="published",
                    owner=owner_ref(spec.owner),
                    description=f"{spec.label} as published: the periods of kpi.{spec.id} that passed every gate.",
                    version=f"{spec.id} {spec.version}",
                    code_version=published_version(kpi),
                    partitioned=True,
                    upstream=[kpi.asset_ref],
                )
            )
    by_ref = {d.ref: d for d in found}
    for dataset in found:
        for parent in dataset.upstream:
            if parent in by_ref:
                by_ref[parent].downstream.append(dataset.ref)
    return found


def build_catalog(
    conn: Connection | None, settings: Settings, specs: ProjectSpecs, registry: ContractRegistry
) -> list[Dataset]:
    """The declared datasets with what the warehouse holds of them (`conn` None: nothing built yet)."""
    datasets = declared_datasets(settings, specs, registry)
    if conn is None:
        return datasets
    present = set(tables(conn))
    newest: dict[str, tuple[Any, ...]] = {}
    if evidence_table_exists(conn, "ledger"):
        rows = conn.execute(
            f"SELECT asset, max(partition), arg_max(entry_hash, seq), max(recorded_at) FROM {LEDGER_TABLE} "
            "WHERE kind = 'materialization' GROUP BY asset"
        ).fetchall()
        newest = {str(r[0]): r[1:] for r in rows}
    pii = dict(specs.masking())
    for dataset in datasets:
        schema, table = dataset.ref.split("/")
        if (schema, table) in present:
            declared = {c.name: c.pii for c in dataset.columns}
            masked = pii.get(dataset.ref, {})
            found = table_columns(conn, schema, table) or []
            dataset.columns = [DatasetColumn(c.name, c.type, masked.get(c.name, declared.get(c.name))) for c in found]
            counted = conn.execute(f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(table)}").fetchone()
            dataset.rows = int(counted[0]) if counted else 0
        if dataset.ref in newest:
            last, entry, recorded = newest[dataset.ref]
            built = datetime.fromisoformat(str(recorded))
            built = built if built.tzinfo else built.replace(tzinfo=UTC)
            dataset.last_period = None if last is None else str(last)
            dataset.ledger_hash = str(entry)
            dataset.built_at = built.isoformat(timespec="seconds")
    return datasets
