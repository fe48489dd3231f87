"""`published/<kpi>`: the KPI partitions finance may use, those whose latest gate verdicts passed.

Dagster blocks downstream steps only within one run, so the publication step asks the evidence itself:
a partition is published when the latest verdict of each of its KPI's gates (thresholds,
reconciliation) passed, whatever run gave it. A partition that failed a gate (or was never judged) is
held back: published keeps its previous rows, if any.
"""

from datetime import UTC, datetime

import dagster as dg

from barecount.factories.common import asset_key, code_version, owners
from barecount.factories.kpi_checks import THRESHOLD_CHECK
from barecount.factories.reconciliation import RECONCILIATION_CHECK
from barecount.ledger import holds
from barecount.specs.kpi import KpiSpec
from barecount.specs.loader import LoadedSql
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import INTERNAL_CREDENTIAL, HeldBack, SqlRelation, TableRef, in_list


def gates_of(spec: KpiSpec) -> list[str]:
    """The blocking checks a KPI declares, each of which must pass before a partition is published."""
    declared = {THRESHOLD_CHECK: spec.thresholds, RECONCILIATION_CHECK: spec.reconciliation}
    return [gate for gate, rule in declared.items() if rule is not None]


def not_publishable(
    warehouse: DuckDBWarehouse, kpi_asset: str, gates: list[str], periods: tuple[str, ...]
) -> dict[str, str]:
    """Period -> why, for each of `periods` whose newest verdict of some gate failed or that a gate never judged."""
    if not gates or not periods:
        return {}
    with warehouse.get_connection(read_only=True) as conn:
        rows = (
            conn.execute(
                "SELECT gate, partition, arg_max(passed, checked_at), arg_max(detail, checked_at) "
                f"FROM {holds.GATE_RESULTS_TABLE} WHERE gate IN {in_list(gates)} AND asset = ? "
                f"AND partition IN {in_list(periods)} GROUP BY ALL",
                [kpi_asset],
            ).fetchall()
            if holds.gate_results_exist(conn)
            else []
        )
    latest = {(str(gate), str(p)): (bool(ok), str(detail)) for gate, p, ok, detail in rows}
    reasons: dict[str, str] = {}
    for period in periods:
        why = [
            f"failed its {gate}: {latest[gate, period][1]}" if (gate, period) in latest else f"no {gate} verdict yet"
            for gate in gates
            if not latest.get((gate, period), (False, ""))[0]
        ]
        if why:
            reasons[period] = f"{kpi_asset} {period} " + "; ".join(why)
    return reasons


def build_published_asset(item: LoadedSql, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    spec = item.spec
    assert isinstance(spec, KpiSpec)
    gates = gates_of(spec)
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
        held = {p: HeldBack("hold", why) for p, why in kpi.held_back.items()}
        # the newest verdicts, from this run or an earlier one, decide
        unpublishable = not_publishable(warehouse, item.asset_ref, gates, periods)
        held |= {p: HeldBack("hold", why) for p, why in unpublishable.items()}
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
            unfingerprinted=("published_at",),
        )

    return published
