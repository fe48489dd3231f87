"""The BigQuery connector on the emulator profile: streams read from an existing BigQuery table or query (the
seed's ExternalBqExtractor) land the same rows as the same data delivered as files, with their evidence; a
changed source is a changed extract; a DuckDB profile refuses them.

The sample's orders go into one table that a query reads period by period through the fiscal calendar's dates;
its regions are read as a table."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import pytest
import yaml
from google.cloud import bigquery

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.bigquery_resource import build_bigquery_warehouse
from barecount.warehouse.bigquery import bigquery_field
from tests.cli import barecount
from tests.conftest import BUILT_PERIODS

pytestmark = pytest.mark.long

SOURCE_DATASET = "erp_source"
ORDERS_QUERY = (
    f"SELECT * FROM {SOURCE_DATASET}.orders WHERE o_orderdate BETWEEN '{{period_start}}' AND '{{period_end}}'"
)


def _load(client: bigquery.Client, table: str, files: str) -> None:
    """The rows of Parquet files `files` (a glob) as the BigQuery table `erp_source.<table>`, typed as DuckDB
    reads them."""
    with duckdb.connect() as scratch, tempfile.TemporaryDirectory() as folder:
        kinds = scratch.execute(f"DESCRIBE SELECT * FROM read_parquet('{files}')").fetchall()
        extract = Path(folder) / f"{table}.parquet"
        scratch.execute(f"COPY (SELECT * FROM read_parquet('{files}')) TO '{extract}' (FORMAT parquet)")
        schema = [bigquery_field(str(name), str(kind)) for name, kind, *_ in kinds]
        config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET, schema=schema)
        with extract.open("rb") as data:
            loaded = client.load_table_from_file(data, f"{client.project}.{SOURCE_DATASET}.{table}", job_config=config)
            loaded.result()


def _read_from_bigquery(paths: ProjectPaths) -> None:
    """The project's orders and regions read from BigQuery instead of files. The KPIs lose their reconciliations:
    those recompute the system of record from extracts on disk, and `check` refuses one that reads BigQuery."""
    for kpi_file in paths.root.glob("kpis/*/*.yaml"):
        declared = yaml.safe_load(kpi_file.read_text())
        declared.pop("reconciliation", None)
        kpi_file.write_text(yaml.safe_dump(declared, sort_keys=False))
    streams_file = paths.root / "assets" / "erp" / "streams.yaml"
    declared = yaml.safe_load(streams_file.read_text())
    for stream in declared["streams"]:
        if stream["name"] == "orders":
            stream["connector"] = {"kind": "bigquery", "query": ORDERS_QUERY}
        if stream["name"] == "region":
            stream["connector"] = {"kind": "bigquery", "table": f"{SOURCE_DATASET}.region"}
    streams_file.write_text(yaml.safe_dump(declared, sort_keys=False))


def _rows(conn: object, table: str, columns: list[str], period: str | None) -> list[tuple[object, ...]]:
    where = f"WHERE fiscal_period = '{period}'" if period else ""
    rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table} {where}").fetchall()  # type: ignore[attr-defined]
    return sorted(rows, key=str)


def test_a_bigquery_table_or_query_lands_as_a_stream_with_its_evidence(
    emulated_project: ProjectPaths, built_once: ProjectPaths
) -> None:
    paths, period = emulated_project, BUILT_PERIODS[0]
    settings = load_settings(paths)
    warehouse = build_bigquery_warehouse(settings)
    with warehouse.get_client() as client:
        client.create_dataset(SOURCE_DATASET)
        _load(client, "orders", str(settings.sources_dir / "erp" / "orders" / "*.parquet"))
        _load(client, "region", str(settings.sources_dir / "erp" / "region.parquet"))
    _read_from_bigquery(paths)

    local = barecount("check", "--profile", "local")
    assert local.returncode == 2, local.stdout + local.stderr
    refused = (
        "streams.yaml:11:5: streams[0].connector.kind: stream orders reads BigQuery: run it with a BigQuery profile"
    )
    assert refused in local.stderr
    checked = barecount("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # orders reference customers (and they nations), which still come from files: both kinds in one run
    streams = ("region", "nation", "customer", "orders")
    ran = barecount("run", "--period", period, *(f"--select=raw/{name}" for name in streams))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with (
        warehouse.get_connection(read_only=True) as conn,
        duckdb.connect(str(built_once.root / "data" / "acme" / "warehouse.duckdb"), read_only=True) as kept,
    ):
        for table, key in (("raw.orders", period), ("raw.region", None)):
            described = kept.execute(f"DESCRIBE {table}").fetchall()
            columns = [str(name) for name, *_ in described if not str(name).startswith("x_")]  # not the lineage
            from_files = _rows(kept, table, columns, key)
            assert from_files and _rows(conn, table, columns, key) == from_files, f"{table}: the same rows"
        (quarantined,) = conn.execute("SELECT count(*) FROM quarantine.orders").fetchone()  # type: ignore[misc]
    assert quarantined == 0

    # the source's content is the extract's evidence: unchanged, nothing to do; one row changed, the period lands
    def planned() -> dict[str | None, str]:
        shown = barecount("plan", "--period", period, "--select", "raw/orders", "--json")
        assert shown.returncode == 0, shown.stderr
        (orders,) = json.loads(shown.stdout)
        return orders["build"]

    assert planned() == {}
    with warehouse.get_connection() as conn, warehouse.get_client() as client:
        (changed,) = conn.execute(f"SELECT min(o_orderkey) FROM raw.orders WHERE fiscal_period = '{period}'").fetchone()  # type: ignore[misc]
        client.query(f"UPDATE {SOURCE_DATASET}.orders SET o_comment = 'restated' WHERE o_orderkey = {changed}").result()
    assert planned() == {period: "extract changed"}

    traced = barecount("ledger", "trace", "raw/orders", period)
    assert traced.returncode == 0, traced.stderr
    assert f"bigquery:query:orders:{period}" in traced.stdout and " rows sha256 " in traced.stdout
