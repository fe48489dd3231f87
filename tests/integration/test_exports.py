"""Governed exports: published KPI periods and GDP tables as files with a manifest and a ledger entry, from the
CLI, the `export` job and a tenant's declared export; byte-identical when repeated; never Raw; an unpublished
period refused by name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from barecount.config.instance import open_instance
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions
from barecount.defs.export_job import EXPORT_JOB
from tests.cli import barecount

pytestmark = pytest.mark.long


def _warehouse(paths: ProjectPaths) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(paths.root / "data" / "acme" / "warehouse.duckdb"), read_only=True)


def _published(paths: ProjectPaths) -> list[str]:
    with _warehouse(paths) as conn:
        return [
            p for (p,) in conn.execute("SELECT DISTINCT fiscal_period FROM published.net_revenue ORDER BY 1").fetchall()
        ]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_three_published_periods_export_byte_identical_twice_with_their_manifest(
    built_project: ProjectPaths, tmp_path: Path
) -> None:
    paths = built_project
    published = _published(paths)
    assert len(published) >= 3, published
    first, _, third = published[:3]
    exported = []
    for out in (tmp_path / "one", tmp_path / "two"):
        done = barecount("export", "net_revenue", "--from", first, "--to", third, "--out", str(out), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        exported.append(_files(out / "published.net_revenue"))
    assert exported[0] == exported[1]
    assert sorted(exported[0]) == sorted([f"{p}.parquet" for p in published[:3]] + ["manifest.json"])

    manifest = json.loads(exported[0]["manifest.json"])
    with _warehouse(paths) as conn:
        rows = dict(conn.execute("SELECT fiscal_period, count(*) FROM published.net_revenue GROUP BY 1").fetchall())
        hashes = dict(
            conn.execute(
                "SELECT partition, arg_max(entry_hash, seq) FROM evidence.ledger WHERE kind = 'materialization' "
                "AND asset = 'published/net_revenue' GROUP BY 1"
            ).fetchall()
        )
        entries = conn.execute(
            "SELECT run_id, json_extract_string(facts, '$.manifest_sha256') FROM evidence.ledger "
            "WHERE kind = 'export' AND asset = 'published/net_revenue' ORDER BY seq"
        ).fetchall()
    assert manifest["asset"] == "published/net_revenue" and manifest["org"] == "acme"
    for item in manifest["files"]:
        data = exported[0][item["file"]]
        assert item["sha256"] == hashlib.sha256(data).hexdigest()
        assert item["rows"] == rows[item["partition"]] == pq.read_table(tmp_path / "one" / "published.net_revenue"
                                                                         / item["file"]).num_rows  # fmt: skip
        assert item["ledger_hash"] == hashes[item["partition"]]
        assert item["versions"]["kpi_version"] == "1.0.0"
    # each export is on the ledger, with the manifest it wrote
    manifest_sha = hashlib.sha256(exported[0]["manifest.json"]).hexdigest()
    assert len(entries) == 2 and {sha for _, sha in entries} == {manifest_sha}

    unpublished = "FY1995-P05"
    refused = barecount("export", "net_revenue", "--period", unpublished, "--out", str(tmp_path / "three"))
    assert refused.returncode == 1 and unpublished in refused.stderr and "not published" in refused.stderr
    assert not (tmp_path / "three" / "published.net_revenue" / f"{unpublished}.parquet").exists()
    raw = barecount("export", "raw/orders", "--out", str(tmp_path / "raw"))
    assert raw.returncode == 2 and "only published KPIs and GDP tables are exported" in raw.stderr
    assert not (tmp_path / "raw").exists()


def test_the_export_job_and_a_declared_export_write_what_the_cli_writes(
    built_project: ProjectPaths, tmp_path: Path
) -> None:
    paths = built_project
    period = _published(paths)[0]
    by_cli = barecount(
        "export", "gdp/order_lines", "--period", period, "--format", "csv", "--out", str(tmp_path / "cli")
    )
    assert by_cli.returncode == 0, by_cli.stderr
    defs = build_definitions(load_settings(paths))
    config = {"target": "gdp/order_lines", "period": period, "format": "csv", "out": str(tmp_path / "job")}
    with open_instance(paths) as instance:
        ran = defs.resolve_job_def(EXPORT_JOB).execute_in_process(
            instance=instance, run_config={"ops": {"export_files": {"config": config}}}
        )
    assert ran.success
    (output,) = [e for e in ran.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    assert output.event_specific_data.metadata["files"].value == 1  # type: ignore[union-attr]
    assert _files(tmp_path / "job" / "gdp.order_lines") == _files(tmp_path / "cli" / "gdp.order_lines")
    csv = (tmp_path / "cli" / "gdp.order_lines" / f"{period}.csv").read_text().splitlines()
    assert csv[0].startswith("order_key,") and len(csv) > 1

    # declared in the tenant: the run that publishes a period exports it, as the CLI does
    tenant = paths.tenants / "acme.yaml"
    declared = tmp_path / "declared"
    tenant.write_text(tenant.read_text() + f"exports:\n  - {{target: net_revenue, out: {declared}}}\n")
    rebuilt = barecount("run", "--period", period, "--force", "--select", "published/net_revenue")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    by_run = declared / "published.net_revenue"
    assert sorted(p.name for p in by_run.iterdir()) == [f"{period}.parquet", "manifest.json"]
    again = barecount("export", "net_revenue", "--period", period, "--out", str(tmp_path / "after"))
    assert again.returncode == 0, again.stderr
    assert _files(by_run) == _files(tmp_path / "after" / "published.net_revenue")

    tenant.write_text(tenant.read_text() + "  - {target: raw/orders}\n")
    checked = barecount("check")
    assert checked.returncode == 2 and "acme.yaml" in checked.stderr and "exports[1].target" in checked.stderr
