"""The project's files as Dagster specs: keys, groups, owners, kinds, descriptions, code references,
partitions and checks, built once per code location load (as dagster-dbt's translator does from a manifest)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg

from barecount.calendar import FiscalCalendar
from barecount.catalog.loader import LoadedSql, LoadedStream
from barecount.config.project import ProjectPaths
from barecount.contracts import Contract
from barecount.pipeline.build import is_partitioned, late_periods, published_version, sql_version
from barecount.pipeline.gates.anomaly import ANOMALY_CHECK
from barecount.pipeline.gates.contract import ACCOUNTING_CHECK, CONTRACT_CHECK, SCHEMA_CHECK
from barecount.pipeline.gates.freshness import FRESHNESS_CHECK
from barecount.pipeline.gates.model_tests import MODEL_TESTS_CHECK, model_tests_sql
from barecount.pipeline.gates.reconciliation import RECONCILIATION_CHECK
from barecount.pipeline.gates.thresholds import THRESHOLD_CHECK
from barecount.pipeline.land import stream_version
from barecount.specs.common import owner_ref
from barecount.specs.kpi import KpiSpec
from barecount.specs.model import ModelSpec
from barecount.sql.calendar_tables import CALENDAR_TABLES, calendar_table_sql
from barecount.sql.hashing import code_version


def asset_key(ref: str, org: str) -> dg.AssetKey:
    """`raw/orders` of acme -> AssetKey(["acme", "raw", "orders"]). Each organisation is a code location of its own
    (its calendar gives its partitions), and Dagster wants an asset key to be unique in a deployment: so the
    organisation leads the key, and the UI's catalog has a folder per organisation."""
    return dg.AssetKey([org, *ref.split("/")])


def asset_ref(key: dg.AssetKey) -> str:
    """AssetKey(["acme", "raw", "orders"]) -> `raw/orders`: the asset as the project files and the evidence name it."""
    return "/".join(key.path[1:])


def code_reference(paths: ProjectPaths, file: str, line: int = 1) -> dg.CodeReferencesMetadataValue:
    """A link from the asset in the UI to the file (and line) that declared it."""
    with warnings.catch_warnings():  # beta classes: the notice is for library authors, not for every load
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.CodeReferencesMetadataValue(
            code_references=[
                dg.LocalFileCodeReference(file_path=str(paths.root / Path(file)), line_number=max(line, 1))
            ]
        )


def late_arrival_mapping(keys: Sequence[str], late: int) -> dg.StaticPartitionMapping:
    """Each input period feeds its own period and the `late` periods before it (whose rows it may carry late)."""
    return dg.StaticPartitionMapping({k: keys[max(0, i - late) : i + 1] for i, k in enumerate(keys)})


def stream_spec(
    stream: LoadedStream,
    partitions_def: dg.PartitionsDefinition,
    paths: ProjectPaths,
    parents: Sequence[str],
    org: str,
) -> dg.AssetSpec:
    """`raw/<stream>`: the extract shaped by its contract; its FK parents land first."""
    spec = stream.spec
    return dg.AssetSpec(
        key=asset_key(stream.asset_ref, org),
        deps=[asset_key(f"raw/{parent}", org) for parent in parents],
        description=spec.description,
        group_name="raw",
        owners=[owner_ref(spec.owner)],
        tags={"domain": stream.domain},
        kinds={"duckdb", spec.connector.kind},
        partitions_def=partitions_def if spec.partitioned else None,
        code_version=stream_version(stream),
        metadata={
            "dagster/code_references": code_reference(paths, stream.file, stream.line),
            "source": f"{spec.connector.kind}: {spec.connector.location}",
            "contract": spec.contract,
            "x_pipeline_id": stream.pipeline_id,
            "x_credential_id": spec.credential_id,
        },
    )


def stream_checks(stream: LoadedStream, current: Contract, org: str) -> list[dg.AssetCheckSpec]:
    """The gates of raw/<stream>, judged in its landing (freshness where its contract has a latency SLA)."""
    name, contract = stream.spec.name, stream.spec.contract
    key = asset_key(stream.asset_ref, org)
    return [
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=key,
            description=(
                f"Each period's extract has the columns and types contract {contract} allows. A change that "
                "breaks the contract (a column removed or renamed, a type that can lose data) blocks the period: "
                "nothing of it lands, its previous rows stay, and a next contract version is drafted. When a data "
                "owner approves it (the approve_contract job, or `barecount contracts approve`), the "
                "contract_approval_sensor lands "
                "exactly the blocked periods. An added optional column lands and is reported here."
            ),
        ),
        dg.AssetCheckSpec(
            ACCOUNTING_CHECK,
            asset=key,
            blocking=True,
            description=(
                f"Nothing lost at the door: for every period of raw.{name} written by the run, the rows read from "
                f"the extract equal the rows landed in raw.{name} plus the rows held in quarantine.{name}."
            ),
        ),
        dg.AssetCheckSpec(
            CONTRACT_CHECK,
            asset=key,
            blocking=True,
            description=(
                f"raw.{name} holds what contract {contract} promises: a pandera schema built from the contract "
                "version each period was read under, validated on the run's landed rows inside DuckDB. Version "
                f"{current.version}: {'; '.join(current.rules()) or 'types only'}; and every column of the version "
                "with its type."
            ),
        ),
        *(
            [
                dg.AssetCheckSpec(
                    FRESHNESS_CHECK,
                    asset=key,
                    blocking=False,
                    description=(
                        f"Each period's extract landed within the latency SLA of contract {contract} "
                        f"(slaProperties: {current.latency} after the period ends): fresh, or late by how much. "
                        "A late period still lands and builds; `barecount status` lists it."
                    ),
                )
            ]
            if current.latency is not None and stream.spec.partitioned  # a snapshot has no period to be late
            else []
        ),
    ]


def sql_spec(
    item: LoadedSql,
    partitions_def: dg.PartitionsDefinition,
    paths: ProjectPaths,
    partitioned_refs: frozenset[str],
    org: str,
) -> dg.AssetSpec:
    """`gdp/<model>` or `kpi/<id>`: its SQL over its declared inputs."""
    spec = item.spec
    late = late_periods(item)
    mapping = late_arrival_mapping(partitions_def.get_partition_keys(), late) if late else None
    description = spec.description
    metadata: dict[str, object] = {
        "dagster/code_references": code_reference(paths, item.sql_file),
        "sql_file": item.sql_file,
        "sql": dg.MetadataValue.md(f"```sql\n{item.sql.strip()}\n```"),
    }
    tags = {"domain": item.domain}
    if isinstance(spec, KpiSpec):
        gates = [f"thresholds ({spec.thresholds.describe()})"] if spec.thresholds else []
        gates += [f"reconciliation with {spec.reconciliation.description}"] if spec.reconciliation else []
        description = (
            f"{spec.label}, in {spec.unit}, per fiscal period (version {spec.version}). Each period's value leads "
            f"its materialization's metadata and is charted under Plots; then its gates: {'; '.join(gates)}. "
            f"{spec.description}"
        )
        # what a reader of the KPI looks for first, then where its SQL is
        metadata = {"unit": spec.unit, "kpi_version": spec.version, "spec_file": item.spec_file} | metadata
        tags = {"domain": "kpi"}
    else:
        metadata |= {"grain": spec.grain, "primary_key": ", ".join(spec.primary_key)}
    return dg.AssetSpec(
        key=asset_key(item.asset_ref, org),
        deps=[
            dg.AssetDep(asset_key(dep, org), partition_mapping=mapping if dep in partitioned_refs else None)
            for dep in spec.depends_on
        ],
        description=description,
        group_name=item.layer,
        owners=[owner_ref(spec.owner)],
        tags=tags,
        kinds={"duckdb", "sql"},
        partitions_def=partitions_def if is_partitioned(item) else None,
        code_version=sql_version(item),
        metadata=metadata,
    )


def sql_checks(item: LoadedSql, org: str) -> list[dg.AssetCheckSpec]:
    """A model's `model_tests`; a KPI's `thresholds`, `reconciliation` and `anomaly`, where it declares them."""
    spec, key = item.spec, asset_key(item.asset_ref, org)
    if isinstance(spec, ModelSpec):
        _, meanings = model_tests_sql(spec)
        return [
            dg.AssetCheckSpec(
                MODEL_TESTS_CHECK,
                asset=key,
                blocking=True,
                description=f"gdp.{spec.name} passes its data tests on every period written: {'; '.join(meanings)}.",
            )
        ]
    declared: list[tuple[str, bool, str]] = []  # (check, blocking, description) per gate the KPI declares
    if spec.thresholds is not None:
        declared.append(
            (
                THRESHOLD_CHECK,
                True,
                f"{spec.label} {spec.version} within its acceptance thresholds: {spec.thresholds.describe()}. "
                "A partial period is checked against its bounds only. A period outside them is not published.",
            )
        )
    if spec.reconciliation is not None:
        tolerance = spec.reconciliation.tolerance
        declared.append(
            (
                RECONCILIATION_CHECK,
                True,
                f"{spec.label} {spec.version} agrees with the system of record: "
                f"{spec.reconciliation.description} (tolerance: absolute {tolerance.absolute:g}, relative "
                f"{tolerance.relative:g}).",
            )
        )
    if spec.anomaly is not None:
        declared.append(
            (
                ANOMALY_CHECK,
                False,
                f"How unusual each period of {spec.label} is: {spec.anomaly.describe()}. The score, the expected "
                "value and a one-sentence narrative are in the metadata. A flagged period is a warning, not a "
                "hold: it is published if its thresholds and reconciliation pass.",
            )
        )
    return [dg.AssetCheckSpec(name, asset=key, blocking=blocks, description=text) for name, blocks, text in declared]


def published_spec(item: LoadedSql, partitions_def: dg.PartitionsDefinition, org: str) -> dg.AssetSpec:
    """`published/<kpi>`: the KPI's partitions whose latest verdicts passed."""
    spec = item.spec
    assert isinstance(spec, KpiSpec)
    return dg.AssetSpec(
        key=asset_key(f"published/{spec.id}", org),
        deps=[asset_key(item.asset_ref, org)],
        description=(
            f"{spec.label} as published to finance: the partitions of kpi.{spec.id} whose latest acceptance "
            "verdict passed, with the time they were published."
        ),
        group_name="published",
        owners=[owner_ref(spec.owner)],
        tags={"domain": "kpi"},
        kinds={"duckdb"},
        partitions_def=partitions_def,
        code_version=published_version(item),
    )


def calendar_spec(ref: str, calendar: FiscalCalendar, years: tuple[int, int], org: str) -> dg.AssetSpec:
    """`calendar/<name>`: the fiscal calendar as a table."""
    _, columns, rows = CALENDAR_TABLES[ref]
    return dg.AssetSpec(
        key=asset_key(ref, org),
        description=f"The {calendar.spec.name} fiscal calendar, fiscal years {years[0]} to {years[1]}: {rows}.",
        group_name="calendar",
        tags={"domain": "calendar"},
        owners=["team:finance-data"],
        kinds={"duckdb"},
        code_version=code_version(calendar_table_sql(ref, calendar, years)),
        metadata={"columns": ", ".join(columns)},
    )


def ancestors_of(specs: Sequence[dg.AssetSpec]) -> dict[str, frozenset[str]]:
    """Asset ref -> every asset it is built from, directly or not."""
    parents: Mapping[str, list[str]] = {asset_ref(s.key): [asset_ref(d.asset_key) for d in s.deps] for s in specs}
    found: dict[str, frozenset[str]] = {}

    def visit(ref: str) -> frozenset[str]:
        if ref not in found:
            direct = parents.get(ref, [])
            found[ref] = frozenset(direct).union(*(visit(p) for p in direct))
        return found[ref]

    for ref in parents:
        visit(ref)
    return found
