"""The evidence ledger: one chained entry per partition written, and every kind of tampering detected."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from barecount.config.project import ProjectPaths
from tests.cli import barecount
from tests.conftest import copy_project, use_project


def _build(project: ProjectPaths, *periods: str) -> Path:
    """Build the periods; return the warehouse file."""
    result = barecount("run", "--from", periods[0], "--to", periods[-1])
    assert result.returncode == 0, result.stderr
    return project.root / "data" / "acme" / "warehouse.duckdb"


@pytest.fixture(scope="module")
def one_period(tmp_path_factory: pytest.TempPathFactory, sample_sources: Path) -> Path:
    """A warehouse with one period built, made once for the tampering tests to copy."""
    paths = copy_project(tmp_path_factory.mktemp("ledger") / "project", sample_sources)
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_project(paths, monkeypatch)
        return _build(paths, "FY1995-P01")


@pytest.fixture
def built(project: ProjectPaths, one_period: Path) -> Path:
    """This test's own copy of the one-period warehouse, where `barecount` looks for it."""
    target = project.root / "data" / "acme" / "warehouse.duckdb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(one_period, target)
    return target


def _sql(warehouse: Path, sql: str) -> None:
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(sql)


def test_every_partition_written_has_a_chained_entry_with_its_evidence(project: ProjectPaths) -> None:
    _build(project, "FY1995-P01", "FY1995-P03")
    verified = barecount("ledger", "verify")
    assert verified.returncode == 0 and "ledger intact" in verified.stdout
    entries = json.loads(barecount("ledger", "show", "--limit", "0", "--json").stdout)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0]["prev_hash"] == "0" * 64
    by_asset: dict[str, list[dict[str, object]]] = {}
    for entry in entries:
        if entry["kind"] == "materialization":
            by_asset.setdefault(entry["asset"], []).append(entry)
    assert [e["partition"] for e in by_asset["raw/lineitem"]] == ["FY1995-P01", "FY1995-P02", "FY1995-P03"]
    lineitem = by_asset["raw/lineitem"][1]["facts"]
    assert lineitem["contract"] == "erp.lineitem" and lineitem["contract_version"] == "1.0.0"
    assert lineitem["rows_in"] == lineitem["rows_landed"] + lineitem["rows_quarantined"] > 0
    kpi = by_asset["kpi/net_revenue"][1]
    order_lines = by_asset["gdp/order_lines"][1]
    assert kpi["facts"]["inputs"] == {"gdp/order_lines": {"FY1995-P02": order_lines["entry_hash"]}}
    # order lines take late rows from the next period's extract: both extracts are its inputs
    assert order_lines["facts"]["inputs"]["raw/lineitem"] == {
        "FY1995-P02": by_asset["raw/lineitem"][1]["entry_hash"],
        "FY1995-P03": by_asset["raw/lineitem"][2]["entry_hash"],
    }
    assert set(order_lines["facts"]["inputs"]["gdp/customers"]) == {"snapshot"}
    head = barecount("ledger", "head").stdout.strip()
    assert head == f"{entries[-1]['seq']}:{entries[-1]['entry_hash']}"
    assert barecount("ledger", "verify", "--head", head).returncode == 0


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            "UPDATE evidence.ledger SET asset = 'raw/forged' WHERE seq = 5",
            "raw/forged) was edited",
        ),
        ("DELETE FROM evidence.ledger WHERE seq = 4", "entry at position 4 has seq 5"),
        (
            "UPDATE evidence.ledger SET seq = seq + 1 WHERE seq > 3; "
            "INSERT INTO evidence.ledger SELECT * REPLACE (4 AS seq) FROM evidence.ledger WHERE seq = 3",
            "entry 4",
        ),
        ("UPDATE evidence.ledger SET seq = CASE seq WHEN 2 THEN 3 ELSE 2 END WHERE seq IN (2, 3)", "entry 2"),
    ],
    ids=["edited", "deleted", "inserted", "reordered"],
)
def test_tampering_is_detected_and_named(built: Path, tamper: str, message: str) -> None:
    _sql(built, tamper)
    result = barecount("ledger", "verify")
    assert result.returncode == 1
    assert "ledger broken" in result.stderr and message in " ".join(result.stderr.split())


def test_a_kept_head_detects_a_chain_rewritten_wholesale(built: Path) -> None:
    head = barecount("ledger", "head").stdout.strip()
    _sql(built, "DELETE FROM evidence.ledger")
    assert barecount("run", "--period", "FY1995-P01", "--force").returncode == 0
    assert barecount("ledger", "verify").returncode == 0  # the new chain is internally consistent
    result = barecount("ledger", "verify", "--head", head)
    assert (result.returncode == 1 and "the chain was rewritten" in " ".join(result.stderr.split())) or (
        "entries were removed" in " ".join(result.stderr.split())
    )


def _walk(node: dict[str, object]) -> Iterator[dict[str, object]]:
    yield node
    for parent in node["inputs"]:  # type: ignore[attr-defined]
        yield from _walk(parent)


def test_trace_follows_a_published_kpi_back_to_its_source_files(built: Path, sample_sources: Path) -> None:
    traced = barecount("ledger", "trace", "published/net_revenue", "FY1995-P01", "--json")
    assert traced.returncode == 0, traced.stderr
    nodes = {(n["asset"], n["partition"]): n for n in _walk(json.loads(traced.stdout))}
    assert {
        ("published/net_revenue", "FY1995-P01"),
        ("kpi/net_revenue", "FY1995-P01"),
        ("gdp/order_lines", "FY1995-P01"),
        ("gdp/customers", None),
        ("raw/lineitem", "FY1995-P01"),
        ("raw/orders", "FY1995-P01"),
        ("raw/customer", None),
        ("raw/crm_customers", None),
    } <= set(nodes)
    lineitem = nodes[("raw/lineitem", "FY1995-P01")]
    assert lineitem["checks"] == {"rows_accounted": True, "conforms_to_contract": True, "freshness": True}
    assert lineitem["versions"]["contract_version"] == "1.0.0"  # type: ignore[index]
    (source,) = lineitem["source_files"]  # type: ignore[misc]
    extract = sample_sources / "erp" / "lineitem" / "FY1995-P01.parquet"
    assert source == {
        "path": "erp/lineitem/FY1995-P01.parquet",
        "bytes": extract.stat().st_size,
        "sha256": hashlib.sha256(extract.read_bytes()).hexdigest(),
        "modified": "1995-02-26T06:00:00+00:00",  # delivered the morning after FY1995-P01 ended (Sat 25 Feb)
    }
    kpi = nodes[("kpi/net_revenue", "FY1995-P01")]
    assert kpi["versions"]["kpi_version"] == "1.0.0"  # type: ignore[index]
    assert kpi["checks"] == {"thresholds": True, "reconciliation": True, "anomaly": True}
    shown = barecount("ledger", "trace", "kpi/net_revenue", "FY1995-P01")
    assert shown.returncode == 0 and "erp/lineitem/FY1995-P01.parquet" in shown.stdout
    missing = barecount("ledger", "trace", "kpi/net_revenue", "FY1995-P02")
    assert missing.returncode == 2 and "no materialization of kpi/net_revenue FY1995-P02" in missing.stderr
