"""Drift classification of an extract against its contract, and the proposal drafted for it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from barecount.config.project import ProjectPaths
from barecount.contracts import ContractRegistry
from barecount.contracts.drift import draft_proposal, extract_drift
from barecount.pipeline.connectors import parquet_columns
from barecount.sql.relation import Column

ORDERS = [
    ("o_orderkey", "BIGINT"),
    ("o_custkey", "BIGINT"),
    ("o_orderstatus", "VARCHAR"),
    ("o_totalprice", "DECIMAL(15,2)"),
    ("o_orderdate", "DATE"),
    ("o_orderpriority", "VARCHAR"),
    ("o_clerk", "VARCHAR"),
    ("o_shippriority", "INTEGER"),
    ("o_comment", "VARCHAR"),
]


def _extract(**changes: tuple[str, str] | None) -> list[Column]:
    columns = []
    for name, kind in ORDERS:
        if name in changes:
            if changes[name] is not None:
                columns.append(Column(*changes[name]))  # type: ignore[misc]
        else:
            columns.append(Column(name, kind))
    return columns


@pytest.mark.parametrize(
    ("extract", "expected"),
    [
        (_extract(), []),
        (_extract(o_shippriority=("o_shippriority", "SMALLINT")), []),  # narrower source fits the contract
        (
            _extract(o_totalprice=("o_totalprice", "DECIMAL(18,2)")),
            [("o_totalprice", "type", "DECIMAL(15,2)", "DECIMAL(18,2)", True)],
        ),
        (_extract(o_comment=("o_remarks", "VARCHAR")), [("o_comment", "renamed", "o_comment", "o_remarks", True)]),
        (_extract(o_clerk=None), [("o_clerk", "removed", "o_clerk", None, True)]),
        ([*_extract(), Column("o_channel", "VARCHAR")], [("o_channel", "added", None, "VARCHAR", False)]),
        (_extract(o_orderdate=("o_orderdate", "VARCHAR")), [("o_orderdate", "type", "DATE", "VARCHAR", True)]),
        # BigQuery: a NUMERIC without its precision, and INT64 (its one integer type), fit a column of their kind
        (_extract(o_totalprice=("o_totalprice", "DECIMAL"), o_shippriority=("o_shippriority", "INT64")), []),
        (_extract(o_orderdate=("o_orderdate", "INT64")), [("o_orderdate", "type", "DATE", "INT64", True)]),
        (_extract(o_orderdate=("o_orderdate", "DECIMAL")), [("o_orderdate", "type", "DATE", "DECIMAL", True)]),
    ],
    ids=[
        "same",
        "narrower",
        "widened",
        "renamed",
        "removed",
        "added",
        "to-text",
        "unsized",
        "int64-date",
        "to-decimal",
    ],
)
def test_extract_drift_is_classified(
    repo_paths: ProjectPaths, extract: list[Column], expected: list[tuple[object, ...]]
) -> None:
    contract = ContractRegistry.load(repo_paths).in_force("erp.orders", "FY1998-P07")
    changes = extract_drift(contract, extract)
    assert [(c.column, c.change, c.before, c.after, c.breaking) for c in changes] == expected


def test_a_text_csv_only_drifts_by_name(repo_paths: ProjectPaths) -> None:
    contract = ContractRegistry.load(repo_paths).in_force("crm.customers", None)
    text = [Column(c.source_name, "VARCHAR") for c in contract.columns]
    assert extract_drift(contract, text, typed_source=False) == []


def test_the_drafted_proposal_is_a_valid_contract_not_yet_in_force(project_copy: ProjectPaths) -> None:
    registry = ContractRegistry.load(project_copy)
    contract = registry.in_force("erp.orders", "FY1998-P07")
    drift = extract_drift(
        contract, _extract(o_comment=("o_remarks", "VARCHAR"), o_totalprice=("o_totalprice", "DECIMAL(18,2)"))
    )
    path = draft_proposal(contract, project_copy.root / contract.file, drift, "FY1998-P07")
    assert path.name == "2.0.0.yaml"
    reloaded = ContractRegistry.load(project_copy)
    proposal = reloaded.version("erp.orders", "2.0.0")
    assert (proposal.status, proposal.effective_from) == ("proposed", "FY1998-P07")
    assert proposal.column("o_comment").source_name == "o_remarks"
    assert proposal.column("o_totalprice").physical_type == "DECIMAL(18,2)"
    assert [c.name for c in proposal.columns] == [c.name for c in contract.columns]  # Raw keeps its shape
    assert reloaded.in_force("erp.orders", "FY1998-P07").version == "1.0.0"
    assert (
        extract_drift(
            proposal, _extract(o_comment=("o_remarks", "VARCHAR"), o_totalprice=("o_totalprice", "DECIMAL(18,2)"))
        )
        == []
    )


def test_an_extract_s_columns_are_read_from_its_footer_as_duckdb_reads_them(tmp_path: Path) -> None:
    """One query over every footer gives the same columns and types as a DESCRIBE of each file, nested
    columns included (their fields are no columns of their own)."""
    conn = duckdb.connect()
    shapes = {
        "flat.parquet": "SELECT 1::BIGINT AS k, 2.5::DECIMAL(15,2) AS price, DATE '1995-03-01' AS day, 'x' AS note",
        "nested.parquet": "SELECT 1 AS a, {'x': 1, 'y': [1, 2]} AS s, [[1], [2]] AS l, 'q'::BLOB AS b, "
        "MAP {'k': 1} AS m",
    }
    files = []
    for name, sql in shapes.items():
        files.append(tmp_path / name)
        conn.execute(f"COPY ({sql}) TO '{files[-1]}' (FORMAT parquet)")
    read = parquet_columns(conn, files)
    for file in files:
        described = conn.execute(f"DESCRIBE SELECT * FROM read_parquet('{file}')").fetchall()
        assert read[str(file)] == [Column(str(r[0]), str(r[1])) for r in described]
