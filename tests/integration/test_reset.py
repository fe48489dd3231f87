"""`barecount reset` takes a project back to the clean demo after the drift scenario and an approval, and
changes nothing without --yes when there is no terminal to ask on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pytest

from barecount.config.instance import prepare_dagster_home
from barecount.config.project import ProjectPaths
from barecount.contracts import ContractRegistry
from barecount.contracts.drift import draft_proposal, extract_drift
from barecount.devtools.sample_data import read_manifest
from barecount.sql.relation import Column, sql_literal
from tests.cli import barecount
from tests.conftest import TEST_SCALE, use_project


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _drafted_and_approved(project: ProjectPaths, extract: Sequence[Column], period: str) -> None:
    """What a run that met `extract` for `period` and the owner's approval leave: a drafted version in force,
    the one it replaced deprecated, the decision in the warehouse, and a Dagster home."""
    contract = ContractRegistry.load(project).in_force("erp.orders", period)
    proposal = draft_proposal(contract, project.root / contract.file, extract_drift(contract, extract), period)
    approved = barecount("contracts", "approve", "erp.orders", proposal.stem, "--by", "dana.owner")
    assert approved.returncode == 0, approved.stderr
    assert "`barecount reset` takes contracts back" in " ".join(approved.stdout.split())
    prepare_dagster_home(project)  # exports DAGSTER_HOME into the project's .dagster; the fixture restores it


def test_reset_after_drift_and_approval_gives_the_shipped_project(
    project_copy: ProjectPaths, repo_paths: ProjectPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_project(project_copy, monkeypatch)
    made = barecount("sample-data", "--scale", str(TEST_SCALE), "--drift")
    assert made.returncode == 0, made.stderr
    said = " ".join(made.stdout.split())
    assert "beside contracts/erp/orders/1.0.0.yaml, a project file" in said and "`barecount reset`" in said
    manifest = read_manifest(project_copy.data / "acme" / "sources")
    assert manifest is not None and manifest.scenarios.drift is not None
    period = manifest.scenarios.drift.period
    drifted = project_copy.data / "acme" / "sources" / "erp" / "orders" / f"{period}.parquet"
    described = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet({sql_literal(str(drifted))})").fetchall()
    _drafted_and_approved(project_copy, [Column(name, kind) for name, kind, *_ in described], period)
    assert _files(project_copy.contracts) != _files(repo_paths.contracts)

    reset = barecount("reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    listed = [" ".join(line.split()) for line in reset.stdout.splitlines()]
    for line in (
        "remove data/acme/sources (sample data)",
        "remove data/acme/warehouse.duckdb (warehouse)",
        "remove .dagster (Dagster home: run history)",
        "remove contracts/erp/orders/2.0.0.yaml (active, drafted from schema drift)",
        "restore contracts/erp/orders/1.0.0.yaml (status: deprecated -> active)",
    ):
        assert line in listed, reset.stdout
    assert _files(project_copy.contracts) == _files(repo_paths.contracts)
    assert not project_copy.data.exists() and not (project_copy.root / ".dagster").exists()
    assert "Nothing to reset" in barecount("reset", "--yes").stdout


def test_reset_without_yes_and_without_a_terminal_changes_nothing(
    project_copy: ProjectPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_project(project_copy, monkeypatch)
    contract = ContractRegistry.load(project_copy).in_force("erp.orders", "FY1995-P03")
    renamed = [
        Column("o_remarks" if c.name == "o_comment" else c.source_name, c.physical_type) for c in contract.columns
    ]
    _drafted_and_approved(project_copy, renamed, "FY1995-P03")
    before = _files(project_copy.root)

    refused = barecount("reset")
    assert refused.returncode == 2
    assert "give --yes" in " ".join(refused.stderr.split())
    assert "remove contracts/erp/orders/2.0.0.yaml" in " ".join(refused.stdout.split())
    assert _files(project_copy.root) == before


def test_reset_on_bigquery_profiles_removes_the_emulators_tables_and_never_a_cloud_projects(
    project_copy: ProjectPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_project(project_copy, monkeypatch)
    emulator_tables = project_copy.data / "bqemulator"
    emulator_tables.mkdir(parents=True)
    (emulator_tables / "bqemulator.duckdb").write_bytes(b"tables")
    reset = barecount("reset", "--yes", "--profile", "bigquery-emulator")
    assert reset.returncode == 0, reset.stderr
    assert "warehouse: the emulator's tables" in reset.stdout and not emulator_tables.exists(), reset.stdout
    for name, value in (("PROJECT", "my-project"), ("LOCATION", "EU"), ("DATASET_PREFIX", "finance")):
        monkeypatch.setenv(f"BARECOUNT_BIGQUERY_{name}", value)
    cloud = barecount("reset", "--yes", "--profile", "bigquery")
    assert cloud.returncode == 0, cloud.stderr
    said = " ".join(cloud.stdout.split())
    for org in ("acme", "globex"):  # each organisation's own datasets
        assert f"BigQuery my-project.finance_{org}_*: reset never drops a cloud project's datasets" in said, said
