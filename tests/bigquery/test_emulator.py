"""The local BigQuery the BigQuery profile is tested on, driven through dagster-gcp's resource: what the
warehouse client will rely on there (load jobs with an explicit schema, exact NUMERIC, partitioned and
clustered tables, a partition replaced in one multi-statement transaction that leaves the old rows when
it fails, MERGE)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from google.api_core.exceptions import BadRequest
from google.cloud import bigquery

from barecount.defs.bigquery_resource import BigQueryWarehouse
from barecount.devtools.bench.bigquery import jobs_since
from barecount.errors import UsageError
from barecount.warehouse.bigquery_emulator import (
    EMULATOR_PYTHON_ENV,
    BigQueryEmulator,
    emulator_python,
    shared_emulator,
)

SCHEMA = [
    bigquery.SchemaField("o_orderkey", "INT64"),
    bigquery.SchemaField("o_totalprice", "NUMERIC"),
    bigquery.SchemaField("fiscal_period", "STRING"),
    bigquery.SchemaField("period_start", "DATE"),
    bigquery.SchemaField("x_org_slug", "STRING"),
]


@pytest.fixture
def client(bigquery_emulator: BigQueryEmulator) -> bigquery.Client:
    resource = BigQueryWarehouse(project=bigquery_emulator.project, api_endpoint=bigquery_emulator.endpoint)
    with resource.get_client() as client:
        return client


def _rows(client: bigquery.Client, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in client.query(sql).result()]


def test_an_extract_loads_exactly_and_a_failed_replacement_keeps_the_previous_rows(
    client: bigquery.Client, tmp_path: Path
) -> None:
    extract = tmp_path / "orders.parquet"
    duckdb.sql(
        "COPY (SELECT i AS o_orderkey, (i * 1.25 + 0.01)::DECIMAL(15,2) AS o_totalprice, "
        "'FY1995-P0' || (i % 2 + 1) AS fiscal_period, DATE '1995-02-01' AS period_start, 'acme' AS x_org_slug "
        f"FROM range(1000) t(i)) TO '{extract}' (FORMAT parquet)"
    )
    client.create_dataset("raw", exists_ok=True)
    client.query(
        "CREATE OR REPLACE TABLE raw.orders (o_orderkey INT64, o_totalprice NUMERIC, fiscal_period STRING, "
        "period_start DATE, x_org_slug STRING) PARTITION BY period_start CLUSTER BY x_org_slug, fiscal_period"
    ).result()
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET, schema=SCHEMA)
    with extract.open("rb") as data:
        client.load_table_from_file(data, f"{client.project}.raw.orders", job_config=config).result()

    totals = "SELECT fiscal_period, SUM(o_totalprice), COUNT(*) FROM raw.orders GROUP BY 1 ORDER BY 1"
    expected = duckdb.sql(
        f"SELECT fiscal_period, SUM(o_totalprice), COUNT(*) FROM '{extract}' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    loaded = _rows(client, totals)
    assert [(p, Decimal(s), n) for p, s, n in loaded] == [(p, Decimal(s), n) for p, s, n in expected]

    replace = (
        "BEGIN TRANSACTION; "
        "DELETE FROM raw.orders WHERE fiscal_period = 'FY1995-P01'; "
        "INSERT INTO raw.orders SELECT 1, NUMERIC '2.50', 'FY1995-P01', DATE '1995-02-01', 'acme'; "
        "{fail}"
        "COMMIT TRANSACTION;"
    )
    with pytest.raises(BadRequest, match="the write failed"):
        client.query(replace.format(fail="SELECT ERROR('the write failed'); ")).result()
    assert _rows(client, totals) == loaded

    client.query(replace.format(fail="")).result()
    assert _rows(client, "SELECT COUNT(*), SUM(o_totalprice) FROM raw.orders WHERE fiscal_period = 'FY1995-P01'") == [
        (1, Decimal("2.50"))
    ]


def test_a_merge_on_the_lineage_key_replaces_what_it_matches_and_adds_the_rest(client: bigquery.Client) -> None:
    client.create_dataset("gdp", exists_ok=True)
    client.query(
        "CREATE OR REPLACE TABLE gdp.orders AS SELECT 1 AS order_key, 'FY1995-P01' AS fiscal_period, 'acme' AS "
        "x_org_slug, NUMERIC '1.00' AS total"
    ).result()
    merged = client.query(
        "MERGE gdp.orders AS t USING (SELECT 1 AS order_key, 'FY1995-P01' AS fiscal_period, 'acme' AS x_org_slug, "
        "NUMERIC '9.99' AS total UNION ALL SELECT 2, 'FY1995-P01', 'acme', NUMERIC '3.00') AS s "
        "ON t.order_key = s.order_key AND t.x_org_slug = s.x_org_slug "
        "WHEN MATCHED THEN UPDATE SET total = s.total "
        "WHEN NOT MATCHED THEN INSERT (order_key, fiscal_period, x_org_slug, total) "
        "VALUES (s.order_key, s.fiscal_period, s.x_org_slug, s.total)"
    )
    merged.result()
    assert merged.num_dml_affected_rows == 2
    assert _rows(client, "SELECT order_key, total FROM gdp.orders ORDER BY 1") == [
        (1, Decimal("9.99")),
        (2, Decimal("3.00")),
    ]


def test_a_missing_emulator_environment_says_how_to_make_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EMULATOR_PYTHON_ENV, str(tmp_path / "nowhere" / "python"))
    with pytest.raises(UsageError, match="make bqemulator"):
        shared_emulator(emulator_python(tmp_path), tmp_path / "data", "barecount-local")


def test_an_emulator_that_cannot_start_fails_at_once_with_the_end_of_its_log(tmp_path: Path) -> None:
    """BareCount's own Python lacks the emulator's packages: the launcher dies, and the error says why."""
    with pytest.raises(RuntimeError, match=r"exited at start: .*ModuleNotFoundError"):
        BigQueryEmulator(Path(sys.executable), tmp_path / "emulator.log").start()


def test_a_session_holds_one_transaction_across_statements(client: bigquery.Client) -> None:
    """What the writer does on DuckDB (measure, delete, insert, measure, commit with its ledger entry) runs on
    BigQuery as statements of one session's transaction."""
    client.create_dataset("evidence", exists_ok=True)
    client.query("CREATE OR REPLACE TABLE evidence.entries AS SELECT 1 AS seq, 'a' AS partition").result()
    opened = client.query("SELECT 1", job_config=bigquery.QueryJobConfig(create_session=True))
    opened.result()
    assert opened.session_info is not None
    in_session = [bigquery.ConnectionProperty("session_id", opened.session_info.session_id)]

    def run(sql: str) -> list[tuple[object, ...]]:
        config = bigquery.QueryJobConfig(connection_properties=in_session)
        return [tuple(row) for row in client.query(sql, job_config=config).result()]

    for outcome, kept in (("ROLLBACK", [(1,)]), ("COMMIT", [(2,)])):
        run("BEGIN TRANSACTION")
        run("DELETE FROM evidence.entries WHERE partition = 'a'")
        run("INSERT INTO evidence.entries VALUES (2, 'a')")
        assert run("SELECT seq FROM evidence.entries") == [(2,)]
        run(f"{outcome} TRANSACTION")
        assert _rows(client, "SELECT seq FROM evidence.entries") == kept, outcome


def test_the_bench_counts_every_job_made_since_it_began(client: bigquery.Client) -> None:
    """More jobs than one page of the emulator's job list (100), and a load: all of them, and none made before."""
    list(client.query("SELECT 0").result())
    time.sleep(0.01)
    began = datetime.now(UTC)
    for n in range(120):
        list(client.query(f"SELECT {n}").result())
    client.create_dataset("counted", exists_ok=True)
    client.load_table_from_json([{"n": 1}], "counted.rows", job_config=bigquery.LoadJobConfig(autodetect=True)).result()
    counted = jobs_since(client, began)
    assert (counted.queries, counted.loads) == (120, 1)
