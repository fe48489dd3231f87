"""What the services did, as Dagster sees it: a materialization per asset (with evidence per partition)
and a check result per gate, as dagster-dbt turns what dbt ran into events."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import dagster as dg

from barecount.calendar import FiscalCalendar, describe_periods
from barecount.defs.partition_metadata import add_partition_metadata
from barecount.defs.rendering import markdown_table
from barecount.evidence.holds import WARNING_GATES
from barecount.pipeline.gates import GateVerdict
from barecount.pipeline.gates.contract import SCHEMA_CHECK
from barecount.pipeline.intake import IntakePlan
from barecount.pipeline.materialize import Materialized
from barecount.sql.relation import LINEAGE_COLUMNS

PartitionMetadata = dict[str | None, dict[str, Any]]
"""Partition (None: every partition of the write) -> metadata."""


def _add(found: PartitionMetadata, key: str | None, metadata: Mapping[str, Any]) -> None:
    found.setdefault(key, {}).update(metadata)


def verdicts_first(values: Mapping[str, Mapping[str, float | None]], gates: Sequence[GateVerdict]) -> PartitionMetadata:
    """What a period's metadata leads with: a KPI's numbers (numeric, so Dagster's Plots view charts each over
    the periods), then the verdict of each gate, before the counts and hashes."""
    lead: PartitionMetadata = {}
    for period, numbers in values.items():
        _add(lead, period, {n: dg.MetadataValue.float(v) for n, v in numbers.items() if v is not None})
    for verdict in gates:
        for period, ok, why in verdict.results:
            _add(lead, period, {verdict.gate: "passed" if ok else f"failed: {why}"})
    return lead


def materialization_metadata(
    done: Materialized, org_slug: str, calendar: FiscalCalendar, lead: PartitionMetadata | None = None
) -> PartitionMetadata:
    """The evidence of a write as materialization metadata: what is common to the write under None, what
    differs by period (row counts, ledger hashes, rows quarantined) under each period, after `lead`."""
    found: PartitionMetadata = {None: {}} | {k: dict(v) for k, v in (lead or {}).items()}
    relation, result, split = done.relation, done.result, done.split
    if result is not None:
        _add(
            found,
            None,
            {
                "schema_hash": result.schema_hash,
                "sql_hash": hashlib.sha256(result.sql.encode()).hexdigest()[:16],
                **(
                    {"kpi_version": str(relation.evidence["kpi_version"])} if "kpi_version" in relation.evidence else {}
                ),
            },
        )
        # metadata common to a write lands on every partition of the range: what is the same for every write of
        # the asset (its table, lineage key, quarantine table; the pipeline and credential are also on the
        # asset's definition), the run's total, the SQL (tens of kB for a range of extracts) and the column
        # schema go on the newest partition only, the one the asset's page shows: Dagster serializes and stores
        # every entry once per period (storing the events is about a fifth of what an extra period of a run costs).
        described = {
            "dagster/table_name": result.table,
            "x_org_slug": org_slug,
            "x_pipeline_id": relation.pipeline_id,
            "x_credential_id": relation.credential_id,
            "rows_written_in_run": dg.MetadataValue.int(result.rows),
            **({"quarantine_table": split.quarantined.table} if split else {}),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c.name, c.type) for c in result.columns]
                + [dg.TableColumn(c, "lineage") for c in LINEAGE_COLUMNS]
            ),
            "sql": dg.MetadataValue.md(f"```sql\n{result.sql}\n```"),
        }
        newest = sorted(result.rows_by_partition, key=lambda k: calendar.period(k).start)[-1:] or [None]
        _add(found, newest[0], described)
    for entry in done.entries:
        if entry.kind != "materialization":
            continue
        facts = entry.facts
        metadata: dict[str, Any] = {
            "dagster/row_count": dg.MetadataValue.int(int(facts["rows_landed"])),
            "ledger_seq": dg.MetadataValue.int(entry.seq),
            "ledger_hash": entry.entry_hash,
            "content_hash": str(facts.get("content_hash")),
        }
        if "contract_version" in facts:
            metadata["contract_version"] = f"{facts['contract']} {facts['contract_version']}"
        if "inputs" in facts:  # each input partition read, by the ledger hash of its build
            metadata["inputs"] = dg.MetadataValue.md(
                markdown_table(
                    ("input", "period", "ledger hash of its build"),
                    [(ref, p, h) for ref, read in facts["inputs"].items() for p, h in read.items()],
                )
            )
        if "rows_in" in facts:
            metadata |= {
                "rows_in": dg.MetadataValue.int(int(facts["rows_in"])),
                "rows_quarantined": dg.MetadataValue.int(int(facts["rows_quarantined"])),
                "quarantined_by_rule": dg.MetadataValue.md(
                    markdown_table(("rule", "rows"), sorted(facts["quarantined_by_rule"].items()))
                ),
            }
        if entry.partition is not None:
            start, end = calendar.window(entry.partition)
            metadata |= {
                "fiscal_window": f"{start.isoformat()} .. {end.isoformat()}",
                "x_pipeline_run_date": end.isoformat(),
            }
        _add(found, entry.partition, metadata)
    for key, before in done.unchanged.items():
        _add(
            found,
            key,
            {  # the rows it holds, as its build wrote them, and the build that did
                "dagster/row_count": dg.MetadataValue.int(before.rows),
                "unchanged_since_run": dg.MetadataValue.dagster_run(before.run_id),
                "same_as_ledger_hash": before.entry_hash,
            },
        )
    for key, held in done.held.items():
        _add(found, key, {"held_back": held.reason, "held_back_kind": held.kind})
    return found


AssetEvent = dg.MaterializeResult | dg.AssetMaterialization | dg.AssetObservation


def asset_events(
    context: dg.AssetExecutionContext,
    asset: dg.AssetKey,
    metadata: PartitionMetadata,
    keys: Sequence[str] | None,
    held: Collection[str | None],
    data_version: str | None = None,
) -> list[AssetEvent]:
    """What Dagster records for one asset of a step.

    When nothing was held back: one materialization for the step's partitions (per-partition metadata added to
    the context, see `barecount.defs.partition_metadata`), with Dagster's data versions and provenance. When
    some periods were held back, a result for the whole range would show them as materialized, so each period
    gets its own event instead: a materialization for each period that was written or unchanged, an
    observation (with why) for each held one. The step then fails at its end, and Dagster shows the held
    periods as failed.
    """
    common = metadata.get(None, {})
    if keys is None:  # a snapshot: common and own metadata are one
        if held:
            return [dg.AssetObservation(asset_key=asset, metadata=common)]
        return [dg.MaterializeResult(asset_key=asset, metadata=common or None, data_version=_version(data_version))]
    # a period's own metadata first (a KPI's value and verdicts lead), then what the write shares
    by_period = {key: {**metadata.get(key, {}), **common} for key in keys}
    if not held:
        add_partition_metadata(context, asset, by_period)
        return [dg.MaterializeResult(asset_key=asset, data_version=_version(data_version))]
    return [
        dg.AssetObservation(asset_key=asset, partition=key, metadata=values)
        if key in held
        else dg.AssetMaterialization(asset_key=asset, partition=key, metadata=values)
        for key, values in by_period.items()
    ]


def _version(data_version: str | None) -> dg.DataVersion | None:
    return dg.DataVersion(data_version) if data_version else None


def _metadata_value(value: object) -> dg.MetadataValue:
    if isinstance(value, bool | int):
        return dg.MetadataValue.int(int(value))
    if isinstance(value, Mapping):
        return dg.MetadataValue.json(dict(value))
    return dg.MetadataValue.text(str(value))


def check_result(verdict: GateVerdict, asset: dg.AssetKey) -> dg.AssetCheckResult:
    """A gate's verdict over a range: failing periods named; a warning (not an error) while some periods pass,
    so the steps after it still run and leave just the failing periods alone."""
    results = verdict.results
    failing = verdict.failing
    passed = len(results) - len(failing)
    description = (
        f"{passed} of {len(results)} period(s) {verdict.verdict}" if results else "no period written by the run"
    )
    if failing:  # named here, where the UI shows them without opening the metadata
        description += f"; not {describe_periods(p for p in failing if p != 'snapshot') or 'the snapshot'}"
    if verdict.held:
        description += f"; {len(verdict.held)} period(s) held back and not written: {', '.join(sorted(verdict.held))}"
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=verdict.gate,
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN if passed or verdict.gate in WARNING_GATES else dg.AssetCheckSeverity.ERROR,
        metadata={
            "partitions_checked": dg.MetadataValue.int(len(results)),
            "failing_partitions": dg.MetadataValue.md(markdown_table(("period", "why"), sorted(failing.items()))),
            "held_back_partitions": dg.MetadataValue.md(
                markdown_table(("period", "why"), sorted(verdict.held.items()))
            ),
            **{name: _metadata_value(value) for name, value in verdict.facts.items()},
            **{name: dg.MetadataValue.md(text) for name, text in verdict.markdown.items()},
        },
        description=description,
    )


def schema_check_result(contract: str, plan: IntakePlan, asset: dg.AssetKey) -> dg.AssetCheckResult:
    """The schema gate's verdict on one read: the blocked and drifted periods, and what changed in each."""
    blocked = [k or "snapshot" for k in plan.blocked]
    read = len(blocked) + sum(len(g.keys) for g in plan.groups)
    drifts = {**plan.drifted, **plan.blocked}
    proposals = sorted({d.proposal for d in plan.blocked.values()})
    if blocked:
        changes = "; ".join(f"{k or 'snapshot'}: {d.describe()}" for k, d in plan.blocked.items())
        description = (
            f"{len(blocked)} of {read} period(s) blocked by schema drift: {', '.join(blocked)}. Approve "
            f"{', '.join(proposals)} to land them; their previous rows are kept until then. Changes: {changes}."
        )
    elif plan.drifted:
        description = (
            f"{read} period(s) read; {len(plan.drifted)} landed with a change that still fits {contract}; "
            "a next version is drafted."
        )
    else:
        versions = ", ".join(sorted({g.contract.version for g in plan.groups}))
        description = f"{read} period(s) read, each with the shape of {contract} {versions}."
    metadata: dict[str, dg.MetadataValue] = {
        "partitions_checked": dg.MetadataValue.int(read),
        "blocked_partitions": dg.MetadataValue.text(", ".join(blocked) or "none"),
    }
    if drifts:
        metadata["drift"] = dg.MetadataValue.md(
            markdown_table(
                ("period", "column", "change", "contract", "extract", "breaks the contract"),
                [
                    (
                        key or "snapshot",
                        c.column,
                        c.change,
                        c.before or "-",
                        c.after or "-",
                        "yes" if c.breaking else "no",
                    )
                    for key, drift in drifts.items()
                    for c in drift.changes
                ],
            )
        )
        metadata["proposed_versions"] = dg.MetadataValue.text(", ".join(sorted({d.proposal for d in drifts.values()})))
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=SCHEMA_CHECK,
        passed=not blocked,
        # a warning while some periods land, so the steps after this one build those periods
        severity=dg.AssetCheckSeverity.WARN if plan.groups else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )
