"""Sample sources: laid out per fiscal period, counted in the manifest, deterministic, swapped in atomically."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.devtools.sample_data import generate_sample_data, read_manifest
from barecount.errors import BareCountError


def test_layout_and_manifest_match_the_files(sample_sources: Path, repo_paths: ProjectPaths) -> None:
    calendar = load_settings(repo_paths, "local").calendar
    manifest = read_manifest(sample_sources)
    assert manifest is not None and manifest.scale == 0.01 and manifest.calendar == "nrf-4-5-4"
    conn = duckdb.connect()
    for file in manifest.files:
        path = sample_sources / file.path
        reader = "read_csv" if path.suffix == ".csv" else "read_parquet"
        assert conn.execute(f"SELECT count(*) FROM {reader}('{path}')").fetchone() == (file.rows,), file.path
    periods = [f.period for f in manifest.files if f.table == "orders"]
    assert periods == [f.period for f in manifest.files if f.table == "lineitem"]
    assert (periods[0], periods[-1]) == (manifest.first_period, manifest.last_period)
    for period in (periods[0], periods[len(periods) // 2], periods[-1]):
        assert period is not None
        start, end = calendar.window(period)
        orders = sample_sources / "erp" / "orders" / f"{period}.parquet"
        lines = sample_sources / "erp" / "lineitem" / f"{period}.parquet"
        assert conn.execute(
            f"SELECT count(*) FROM '{orders}' WHERE o_orderdate NOT BETWEEN DATE '{start}' AND DATE '{end}'"
        ).fetchone() == (0,)
        assert conn.execute(
            f"SELECT count(*) FROM '{lines}' WHERE l_orderkey NOT IN (SELECT o_orderkey FROM '{orders}')"
        ).fetchone() == (0,)
    generated = conn.execute(f"SELECT count(*) FROM '{sample_sources}/erp/lineitem/*.parquet'").fetchone()
    assert generated == (manifest.totals["lineitem"],)
    assert {"customer", "nation", "region", "part", "supplier", "partsupp", "crm_customers"} <= set(manifest.totals)
    crm = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE phone IS NULL), min(updated_at) >= TIMESTAMP '1998-01-01' "
        f"FROM read_csv('{sample_sources}/crm/customers.csv')"
    ).fetchone()
    assert crm is not None and 0 < crm[0] < manifest.totals["customer"] and crm[1] > 0 and crm[2]


def test_same_scale_and_seed_give_the_same_sample(
    tmp_path: Path, repo_paths: ProjectPaths, sample_sources: Path
) -> None:
    calendar = load_settings(repo_paths, "local").calendar
    again = generate_sample_data(tmp_path / "again", 0.01, 0, calendar)
    assert again == read_manifest(sample_sources)
    assert (tmp_path / "again" / "crm" / "customers.csv").read_bytes() == (
        sample_sources / "crm" / "customers.csv"
    ).read_bytes()
    other = generate_sample_data(tmp_path / "other", 0.01, 7, calendar)
    assert (tmp_path / "other" / "crm" / "customers.csv").read_bytes() != (
        sample_sources / "crm" / "customers.csv"
    ).read_bytes()
    assert other.totals["orders"] == again.totals["orders"]


def test_a_failed_generation_leaves_the_previous_sample(tmp_path: Path, repo_paths: ProjectPaths) -> None:
    calendar = load_settings(repo_paths, "local").calendar
    out = tmp_path / "sources"
    before = generate_sample_data(out, 0.01, 0, calendar)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BareCountError, match="tpchgen-cli parquet -s -1"):
        generate_sample_data(out, -1, 0, calendar)
    assert read_manifest(out) == before
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources"]  # no half-built folder left behind


def test_late_orders_arrive_in_the_next_extract_with_their_lines(
    tmp_path: Path, sample_sources: Path, repo_paths: ProjectPaths
) -> None:
    calendar = load_settings(repo_paths, "local").calendar
    clean = read_manifest(sample_sources)
    assert clean is not None
    late = generate_sample_data(tmp_path / "late", 0.01, 0, calendar, late_fraction=0.5)
    assert late.totals == clean.totals  # nothing lost or added, only delivered later
    assert [(m.order_period, m.extract_period) for m in late.scenarios.late] == [
        (calendar.previous(calendar.next(clean.last_period).key).key, calendar.next(clean.last_period).key),
        (calendar.previous(clean.last_period).key, clean.last_period),
        (calendar.previous(calendar.previous(clean.last_period).key).key, calendar.previous(clean.last_period).key),
    ]
    conn = duckdb.connect()
    for moved in late.scenarios.late:
        start, end = calendar.window(moved.order_period)
        extract = tmp_path / "late" / "erp" / "orders" / f"{moved.extract_period}.parquet"
        lines = tmp_path / "late" / "erp" / "lineitem" / f"{moved.extract_period}.parquet"
        arrived = conn.execute(
            f"SELECT count(*) FROM '{extract}' WHERE o_orderdate BETWEEN DATE '{start}' AND DATE '{end}'"
        ).fetchone()
        assert arrived == (moved.orders,) and moved.orders > 0
        assert conn.execute(
            f"SELECT count(*) FROM '{lines}' WHERE l_orderkey NOT IN (SELECT o_orderkey FROM '{extract}')"
        ).fetchone() == (0,)
    assert late.last_period == calendar.next(clean.last_period).key
