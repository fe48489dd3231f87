"""`published/<kpi>`: the KPI partitions finance may use, those whose latest gate verdict passed.

Dagster blocks downstream steps only within one run, so the publication step asks the evidence itself:
a partition is published when the latest `thresholds` verdict on it passed, whatever run gave it. A
partition that failed (or was never judged) is held back: published keeps its previous rows, if any.
"""

from datetime import UTC, datetime

import dagster as dg

from barecount.factories.common import asset_key, code_version, owners
from barecount.factories.kpi_checks import THRESHOLD_CHECK
from barecount.ledger import holds
from barecount.specs.kpi import KpiSpec
from barecount.specs.loader import LoadedSql
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import INTERNAL_CREDENTIAL, HeldBack, SqlRelation, TableRef, in_list


def latest_verdicts(
    warehouse: DuckDBWarehouse, kpi_asset: str, periods: tuple[str, ...]
) -> dict[str, tuple[bool, str]]:
    """Period -> (passed, detail) of the newest threshold verdict on each of `periods`."""
    with warehouse.get_connection(read_only=True) as conn:
        if not holds.gate_results_exist(conn):
            return {}
        rows = conn.execute(
            "SELECT partition, arg_max(passed, checked_at), arg_max(detail, checked_at) "
            f"FROM {holds.GATE_RESULTS_TABLE} WHERE gate = ? AND asset = ? AND partition IN {in_list(periods)} "
            "GROUP BY 1",
            [THRESHOLD_CHECK, kpi_asset],
        ).fetchall()
    return {str(p): (bool(ok), str(detail)) for p, ok, detail in rows}


def build_published_asset(item: LoadedSql, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    spec = item.spec
    assert isinstance(spec, KpiSpec)
    gated = spec.thresholds is not None
    version = code_version("published", spec.model_dump_json())

    @dg.asset(
        key=asset_key(f"published/{spec.id}"),
        ins={"kpi": dg.AssetIn(key=asset_key(item.asset_ref))},
        description=(
            f"{spec.label} as published to finance: the partitions of kpi.{spec.id} whose latest acceptance "
            "verdict passed, with the time they were published."
        ),
        group_name="published",
        owners=owners(spec.owner),
        tags={"domain": "kpi"},
        kinds={"duckdb"},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        code_version=version,
    )
    def published(kpi: TableRef, warehouse: DuckDBWarehouse) -> SqlRelation:
        periods = kpi.partition_keys or ()
        verdicts = latest_verdicts(warehouse, item.asset_ref, periods) if gated else {}
        held = {p: HeldBack("hold", why) for p, why in kpi.held_back.items()}
        # the newest verdict, from this run or an earlier one, decides
        held |= {
            p: HeldBack("hold", f"{item.asset_ref} {p} failed its thresholds: {verdicts[p][1]}")
            if p in verdicts
            else HeldBack("hold", f"{item.asset_ref} {p} has no threshold verdict yet")
            for p in periods
            if gated and not verdicts.get(p, (False, ""))[0]
        }
        ready = TableRef(kpi.schema, kpi.table, kpi.org_slug, tuple(p for p in periods if p not in held))
        stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        return SqlRelation(
            # the KPI's lineage columns are stamped anew by the writer; published_at is one instant per run
            sql=f"SELECT kpi.*, TIMESTAMP '{stamp}' AS published_at FROM ({ready.select_sql()}) AS kpi",
            pipeline_id=f"published.{spec.id}",
            credential_id=INTERNAL_CREDENTIAL,
            code_version=version,
            evidence={"kpi_version": spec.version},
            inputs={item.asset_ref: ready.partition_keys},
            held_back=held,
        )

    return published
