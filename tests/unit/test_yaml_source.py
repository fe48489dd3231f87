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
        "assets/erp/streams.yaml:9:7: streams[0].connector.kind: Input should be 'parquet' or 'csv' (got 'xlsx')"
    ]


def test_missing_field(tmp_path: Path) -> None:
    assert _errors(tmp_path, STREAM.replace("    owner: team:x\n", "")) == [
        "assets/erp/streams.yaml:2:5: streams[0].owner: required field is missing",
    ]


def test_cross_field_rule(tmp_path: Path) -> None:
    assert _errors(tmp_path, STREAM.replace("{period}", "all")) == [
        "assets/erp/streams.yaml:2:5: streams[0]: a partitioned stream needs '{period}' in connector.path",
    ]


def test_broken_yaml_has_a_position(tmp_path: Path) -> None:
    (message,) = _errors(tmp_path, "streams: [\n  - name: x\n")
    assert message.startswith("assets/erp/streams.yaml:") and "not valid YAML" in message
