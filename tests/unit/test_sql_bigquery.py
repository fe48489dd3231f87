"""BareCount's SQL as BigQuery runs it (`sql.bigquery`): what sqlglot's transpilation leaves to BareCount."""

from __future__ import annotations

import pytest

from barecount.errors import RefusedError
from barecount.sql.bigquery import to_bigquery


def _sql(sql: str) -> str:
    return to_bigquery(sql, "my-project", "acme").sql


def test_a_layer_table_is_a_table_of_the_layers_dataset_in_the_project() -> None:
    assert _sql("SELECT * FROM gdp.orders") == "SELECT * FROM `my-project`.acme_gdp.orders"
    assert _sql("WITH o AS (SELECT 1 AS x) SELECT x FROM o") == "WITH o AS (SELECT 1 AS x) SELECT x FROM o"


def test_parameters_are_named_in_the_order_of_the_text_and_a_variable_is_a_parameter_too() -> None:
    statement = to_bigquery(
        "WITH k AS (SELECT v FROM kpi.t WHERE a = ? AND b = '?') SELECT sha256(getvariable('pii_key') || v) "
        "FROM k WHERE c = ?",
        "my-project",
        "acme",
    )
    assert statement.sql == (
        "WITH k AS (SELECT v FROM `my-project`.acme_kpi.t WHERE a = @p1 AND b = '?') "
        "SELECT TO_HEX(SHA256(@v_pii_key || v)) FROM k WHERE c = @p2"
    )
    assert statement.parameters == ("p1", "p2", "v_pii_key")


def test_money_keeps_its_scale_in_a_cast_and_wider_decimals_are_bignumeric() -> None:
    assert _sql("SELECT CAST(x AS DECIMAL(15,2)), CAST(y AS DECIMAL(38,10))") == (
        "SELECT CAST(x AS NUMERIC(15, 2)), CAST(y AS BIGNUMERIC(38, 10))"
    )


def test_duckdb_idioms_have_their_bigquery_forms() -> None:
    assert _sql("SELECT a FROM raw.t WHERE b IN (SELECT unnest(?)) ORDER BY ALL") == (
        "SELECT a FROM `my-project`.acme_raw.t WHERE b IN UNNEST(@p1) ORDER BY 1 NULLS LAST"
    )
    assert _sql("SELECT list_transform(v, lambda f: f.rule) FROM raw.t") == (
        "SELECT ARRAY(SELECT f.rule FROM UNNEST(v) AS f) FROM `my-project`.acme_raw.t"
    )
    assert _sql('SELECT sum(hash("a", b))::VARCHAR FROM raw.t') == (
        "SELECT CAST(SUM(CAST(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(`a`, b))) AS BIGNUMERIC)) AS STRING) "
        "FROM `my-project`.acme_raw.t"
    )


def test_statements_the_connection_carries_out_itself_are_told_apart_and_transactions_are_bigquerys() -> None:
    assert [_sql(s) for s in ("BEGIN TRANSACTION", "COMMIT", "ROLLBACK")] == [
        "BEGIN TRANSACTION",
        "COMMIT TRANSACTION",
        "ROLLBACK TRANSACTION",
    ]
    created = to_bigquery("CREATE SCHEMA IF NOT EXISTS evidence", "p", "acme")
    assert (created.kind, created.name) == ("create_dataset", "acme_evidence")
    described = to_bigquery("DESCRIBE SELECT * FROM raw.t", "p", "acme")
    assert (described.kind, described.sql) == ("describe", "SELECT * FROM p.acme_raw.t")
    variable = to_bigquery("SET VARIABLE pii_key = ?", "p", "acme")
    assert (variable.kind, variable.name, variable.parameters) == ("set_variable", "pii_key", ("p1",))


def test_the_catalog_is_not_read_in_sql_and_one_statement_runs_at_a_time() -> None:
    with pytest.raises(RefusedError, match="through the client"):
        _sql("SELECT table_name FROM information_schema.tables")
    with pytest.raises(RefusedError, match="one statement at a time"):
        _sql("SELECT 1; SELECT 2")


def test_dml_returning_rows_is_refused_and_a_statement_says_what_it_changes() -> None:
    """BigQuery's DML returns no rows (the emulator, DuckDB inside, would); BigQuery makes no table in a transaction
    that changed rows, so the connection is told which statements change rows and which define tables."""
    with pytest.raises(RefusedError, match="RETURNING"):
        _sql("UPDATE evidence.t SET a = 1 WHERE b = 2 RETURNING a")
    deleted = to_bigquery("DELETE FROM raw.t WHERE x = ?", "p", "acme")
    made = to_bigquery("CREATE TABLE raw.t (a INTEGER)", "p", "acme")
    temporary = to_bigquery("CREATE OR REPLACE TEMP TABLE batch AS SELECT 1 AS a", "p", "acme")
    assert (deleted.changes_rows, deleted.defines_table) == (True, False)
    assert (made.changes_rows, made.defines_table) == (False, True)
    assert (temporary.changes_rows, temporary.defines_table) == (False, False), "a session's table is not a dataset's"


def test_a_decimal_literal_stays_exact() -> None:
    assert _sql("SELECT 1.255 * x, 2e3, 7") == "SELECT CAST('1.255' AS NUMERIC) * x, 2e3, 7"
