"""Contracts as data: ODCS validation, the registry's version in force, and classified differences."""

from __future__ import annotations

from pathlib import Path

import pytest

from barecount.config.project import ProjectPaths
from barecount.contracts import ContractRegistry
from barecount.contracts.diff import diff_contracts
from barecount.errors import SpecErrors, UsageError
from barecount.sql.widening import widens

LOGICAL_TYPO = "logicalType: integr\n    physicalType: BIGINT\n    primaryKey"


def _new_version(paths: ProjectPaths, contract: str, version: str, edit: dict[str, str]) -> Path:
    domain, stream = contract.split(".")
    folder = paths.contracts / domain / stream
    text = (folder / "1.0.0.yaml").read_text().replace("version: 1.0.0", f"version: {version}")
    for old, new in edit.items():
        assert old in text, old
        text = text.replace(old, new)
    target = folder / f"{version}.yaml"
    target.write_text(text)
    return target


def test_shipped_contracts_cover_every_erp_table_and_the_crm(repo_paths: ProjectPaths) -> None:
    registry = ContractRegistry.load(repo_paths)
    assert registry.ids() == [
        "crm.customers",
        "erp.customer",
        "erp.lineitem",
        "erp.nation",
        "erp.orders",
        "erp.part",
        "erp.partsupp",
        "erp.region",
        "erp.supplier",
    ]
    lineitem = registry.in_force("erp.lineitem", "FY1995-P03")
    assert lineitem.primary_key == ("l_orderkey", "l_linenumber")
    assert lineitem.column("l_orderkey").references == "orders.o_orderkey"
    assert registry.in_force("erp.customer", None).column("c_phone").pii
    assert set(registry.in_force("erp.orders", None).owners) == {"dana.owner", "sam.steward"}


def test_a_version_applies_from_its_effective_period(project_copy: ProjectPaths) -> None:
    _new_version(
        project_copy,
        "erp.orders",
        "2.0.0",
        {
            "value: FY1991-P01": "value: FY1998-P05",
            "physicalName: o_comment": "physicalName: o_remarks",
        },
    )
    registry = ContractRegistry.load(project_copy)
    assert registry.in_force("erp.orders", "FY1998-P04").version == "1.0.0"
    assert registry.in_force("erp.orders", "FY1998-P05").version == "2.0.0"
    assert registry.in_force("erp.orders", None).version == "2.0.0"
    changes = diff_contracts(registry.version("erp.orders", "1.0.0"), registry.version("erp.orders", "2.0.0"))
    assert [(c.column, c.change, c.before, c.after, c.breaking) for c in changes] == [
        ("o_comment", "source name", "o_comment", "o_remarks", False)
    ]


def test_proposed_versions_are_not_in_force(project_copy: ProjectPaths) -> None:
    _new_version(project_copy, "erp.orders", "1.1.0", {"status: active": "status: proposed"})
    assert ContractRegistry.load(project_copy).in_force("erp.orders", "FY1998-P05").version == "1.0.0"


def test_two_versions_in_force_for_one_period_are_refused(project_copy: ProjectPaths) -> None:
    _new_version(project_copy, "erp.orders", "1.1.0", {})
    with pytest.raises(SpecErrors, match="already in force from FY1991-P01: two versions cannot cover the same"):
        ContractRegistry.load(project_copy)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            {LOGICAL_TYPO.replace("integr", "integer"): LOGICAL_TYPO},
            "contracts/erp/orders/1.1.0.yaml:29:5: schema[0].properties[0].logicalType: ODCS: 'integr' is not one of",
        ),
        (
            {"status: active": "status: live"},
            "contracts/erp/orders/1.1.0.yaml:8:1: status: 'live' is not one of draft, proposed, active, deprecated",
        ),
        (
            {"physicalType: BIGINT": "physicalType: BIGNUM"},
            "contracts/erp/orders/1.1.0.yaml:30:5: schema[0].properties[0].physicalType: 'BIGNUM' is not a warehouse",
        ),
        (
            {"id: erp.orders": "id: erp.ordrs"},
            "contracts/erp/orders/1.1.0.yaml:5:1: id: 'erp.ordrs' does not match its folder",
        ),
        ({"    required: true\n": "    requird: true\n"}, "ODCS: Unevaluated properties are not allowed ('requird'"),
        (
            {"  value: 1\n  unit: d\n": "  value: 1\n  unit: weeks\n"},
            "contracts/erp/orders/1.1.0.yaml:105:3: slaProperties[0]: latency needs a number of d, day, days, h,",
        ),
        (
            {"  value: 1\n  unit: d\n": "  value: 1\n  unit: d\n- property: retention\n  value: 7\n  unit: months\n"},
            "contracts/erp/orders/1.1.0.yaml:108:3: slaProperties[1]: retention needs a number of d, day, days, y,",
        ),
    ],
)
def test_bad_contract_files_name_file_line_field_and_reason(
    project_copy: ProjectPaths, edit: dict[str, str], expected: str
) -> None:
    _new_version(
        project_copy,
        "erp.orders",
        "1.1.0",
        {"status: active": "status: draft", **edit} if "status: active" not in edit else edit,
    )
    with pytest.raises(SpecErrors) as caught:
        ContractRegistry.load(project_copy)
    assert any(expected in str(e) for e in caught.value.errors), str(caught.value)


def test_unknown_ids_and_versions_are_usage_errors(repo_paths: ProjectPaths) -> None:
    registry = ContractRegistry.load(repo_paths)
    with pytest.raises(UsageError, match=r"unknown contract 'erp.ordrs' \(did you mean 'erp.orders'\?\)"):
        registry.versions("erp.ordrs")
    with pytest.raises(UsageError, match=r"has no version 9\.9\.9"):
        registry.version("erp.orders", "9.9.9")


@pytest.mark.parametrize(
    ("before", "after", "loses_nothing"),
    [
        ("INTEGER", "BIGINT", True),
        ("BIGINT", "INTEGER", False),
        ("DECIMAL(15,2)", "DECIMAL(18,2)", True),
        ("DECIMAL(15,2)", "DECIMAL(15,3)", False),
        ("DECIMAL(15,2)", "DECIMAL(12,2)", False),
        ("INTEGER", "DECIMAL(12,2)", True),
        ("DATE", "TIMESTAMP", True),
        ("TIMESTAMP", "DATE", False),
        ("BIGINT", "VARCHAR", True),
        ("VARCHAR", "BIGINT", False),
        ("DOUBLE", "DECIMAL(15,2)", False),
    ],
)
def test_type_changes_are_classified_by_whether_they_can_lose_data(
    before: str, after: str, loses_nothing: bool
) -> None:
    assert widens(before, after) is loses_nothing
