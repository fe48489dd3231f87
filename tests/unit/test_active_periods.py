"""The periods that are partitions: those the sources cover, extended as extracts arrive, or the tenant's."""

from __future__ import annotations

from pathlib import Path

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.pipeline.build import read_with_late
from barecount.pipeline.periods import active_periods


def _extract(sources: Path, period: str) -> None:
    file = sources / "erp" / "orders" / f"{period}.parquet"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.touch()  # only the file's name says which period it covers


def test_the_active_periods_run_from_the_first_to_the_last_extract_and_grow_with_a_new_one(
    own_sources: tuple[ProjectPaths, Path],
) -> None:
    paths, sources = own_sources
    settings = load_settings(paths)
    assert active_periods(settings) == settings.partition_keys  # no extract yet: every period of the years
    _extract(sources, "FY1995-P02")
    _extract(sources, "FY1995-P05")
    assert active_periods(load_settings(paths)) == ["FY1995-P02", "FY1995-P03", "FY1995-P04", "FY1995-P05"]
    _extract(sources, "FY1995-P07")
    assert active_periods(load_settings(paths))[-1] == "FY1995-P07"


def test_the_tenant_can_set_the_active_periods(own_sources: tuple[ProjectPaths, Path]) -> None:
    paths, sources = own_sources
    _extract(sources, "FY1995-P05")
    tenant = paths.tenants / "acme.yaml"
    tenant.write_text(tenant.read_text() + "active_periods:\n  first: FY1995-P01\n")
    assert active_periods(load_settings(paths)) == [f"FY1995-P0{n}" for n in range(1, 6)]
    tenant.write_text(tenant.read_text() + "  last: FY1995-P08\n")
    assert active_periods(load_settings(paths))[-1] == "FY1995-P08"


def test_late_rows_are_read_from_the_next_active_periods_only(own_sources: tuple[ProjectPaths, Path]) -> None:
    """An extract withdrawn after it landed (the late-data scenario's extra period, gone when the clean sample is
    made again) ends the active periods before it: its rows left in Raw are read by no model, or its late rows
    would count twice with the same orders in their own period's extract."""
    paths, sources = own_sources
    for period in ("FY1995-P02", "FY1995-P03", "FY1995-P04"):
        _extract(sources, period)
    active = active_periods(load_settings(paths))
    assert read_with_late(["FY1995-P02", "FY1995-P03"], 1, active) == ["FY1995-P02", "FY1995-P03", "FY1995-P04"]
    assert read_with_late(["FY1995-P04"], 1, active) == ["FY1995-P04"]  # FY1995-P05 is no partition
    assert read_with_late(["FY1995-P03"], 0, active) == ["FY1995-P03"]
