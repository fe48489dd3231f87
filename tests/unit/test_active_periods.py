"""The periods that are partitions: those the sources cover, extended as extracts arrive, or the tenant's."""

from __future__ import annotations

from pathlib import Path

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
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
