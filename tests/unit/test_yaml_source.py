"""Bad declarative files are reported with file, line, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from barecount.errors import SpecErrors
from barecount.specs import StreamsFile
from barecount.yaml_source import parse_spec


def _errors(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "streams.yaml"
    file.write_text(text)
    with pytest.raises(SpecErrors) as caught:
        parse_spec(file, StreamsFile, "assets/erp/streams.yaml")
    return [str(e) for e in caught.value.errors]


STREAM = """streams:
  - name: orders
    contract: erp.orders
    description: d
    owner: team:x
    credential_id: c
    partitioned: true
    connector:
      kind: parquet
      path: erp/orders/{period}.parquet
"""


def test_unknown_field_points_at_the_key(tmp_path: Path) -> None:
    assert _errors(tmp_path, STREAM + "    colour: red\n") == [
        "assets/erp/streams.yaml:11:5: streams[0].colour: unknown field"
    ]


def test_bad_value_names_field_and_value(tmp_path: Path) -> None:
    assert _errors(tmp_path, STREAM.replace("kind: parquet", "kind: xlsx")) == [
        "assets/erp/streams.yaml:9:7: streams[0].connector.kind: "
        "Input should be 'parquet', 'csv' or 'bigquery' (got 'xlsx')"
    ]


def test_missing_field(tmp_path: Path) -> None:
    assert _errors(tmp_path, STREAM.replace("    owner: team:x\n", "")) == [
        "assets/erp/streams.yaml:2:5: streams[0].owner: required field is missing",
    ]


def test_cross_field_rule(tmp_path: Path) -> None:
    assert _errors(tmp_path, STREAM.replace("{period}", "all")) == [
        "assets/erp/streams.yaml:2:5: streams[0]: a partitioned stream needs '{period}' in connector.path",
    ]


@pytest.mark.parametrize(
    ("connector", "partitioned", "expected"),
    [
        (
            "kind: bigquery\n      path: erp/orders.parquet",
            "true",
            "streams[0].connector: a bigquery connector takes table or query, got path",
        ),
        (
            "kind: parquet\n      table: erp.orders_{period}",
            "true",
            "streams[0].connector: a parquet connector takes path, got table",
        ),
        (
            "kind: bigquery\n      query: SELECT * FROM erp.orders",
            "true",
            "streams[0]: a partitioned stream needs '{period}' in connector.query",
        ),
        (
            "kind: bigquery\n      query: SELECT * FROM erp.orders WHERE d >= '{period_start}'",
            "false",
            "streams[0]: connector.query names a period but the stream is not partitioned",
        ),
    ],
    ids=["bigquery-with-path", "file-with-table", "query-without-period", "snapshot-query-with-period"],
)
def test_a_connector_reads_files_or_bigquery_as_its_kind_says(
    tmp_path: Path, connector: str, partitioned: str, expected: str
) -> None:
    text = STREAM.replace("kind: parquet\n      path: erp/orders/{period}.parquet", connector)
    (found,) = _errors(tmp_path, text.replace("partitioned: true", f"partitioned: {partitioned}"))
    assert found.split(": ", 1)[1] == expected


def test_a_partitioned_query_may_name_its_period_by_its_dates(tmp_path: Path) -> None:
    file = tmp_path / "streams.yaml"
    between = (
        "kind: bigquery\n      query: SELECT * FROM erp.orders WHERE d BETWEEN '{period_start}' AND '{period_end}'"
    )
    file.write_text(STREAM.replace("kind: parquet\n      path: erp/orders/{period}.parquet", between))
    (stream,) = parse_spec(file, StreamsFile, "assets/erp/streams.yaml").streams
    assert stream.connector.location.endswith("'{period_end}'")


def test_broken_yaml_has_a_position(tmp_path: Path) -> None:
    (message,) = _errors(tmp_path, "streams: [\n  - name: x\n")
    assert message.startswith("assets/erp/streams.yaml:") and "not valid YAML" in message
