"""Drift classification of an extract against its contract, and the proposal drafted for it."""

from __future__ import annotations

import pytest

from barecount.config.project import ProjectPaths
from barecount.contracts import ContractRegistry
from barecount.contracts.drift import draft_proposal, extract_drift
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
    ],
    ids=["same", "narrower", "widened", "renamed", "removed", "added", "to-text"],
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
