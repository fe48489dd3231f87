"""Which fiscal periods a command means: explicit keys, a range, or every period with source extracts."""

from __future__ import annotations

from collections.abc import Sequence

from barecount.catalog.loader import load_project_specs
from barecount.config.profiles import Settings
from barecount.errors import UsageError
from barecount.specs.stream import PERIOD_PLACEHOLDER


def source_periods(settings: Settings) -> list[str]:
    """Every configured period for which some partitioned stream has an extract file, in calendar order."""
    specs = load_project_specs(settings.paths)
    found: set[str] = set()
    for stream in specs.streams:
        if not stream.spec.partitioned:
            continue
        prefix, suffix = stream.spec.connector.path.split(PERIOD_PLACEHOLDER, 1)
        for file in settings.sources_dir.glob(stream.spec.connector.path.replace(PERIOD_PLACEHOLDER, "*")):
            relative = file.relative_to(settings.sources_dir).as_posix()
            found.add(relative[len(prefix) : len(relative) - len(suffix)])
    keys = settings.partition_keys
    return [k for k in keys if k in found]


def resolve_periods(settings: Settings, period: str | None, start: str | None, end: str | None) -> list[str]:
    """The contiguous range of period keys a command asks for (default: every period with source data)."""
    keys = settings.partition_keys
    if period and (start or end):
        raise UsageError("use either --period or --from/--to, not both")
    if period:
        return [settings.check_period(period)]
    available = source_periods(settings)
    if not (start or end):
        if not available:
            raise UsageError(
                f"no source extracts found under {settings.paths.relative(settings.sources_dir)} "
                "(make sample data with `barecount sample-data` or `barecount demo`)"
            )
        start, end = available[0], available[-1]
    first = settings.check_period(start) if start else available[0] if available else keys[0]
    last = settings.check_period(end) if end else available[-1] if available else keys[-1]
    i, j = keys.index(first), keys.index(last)
    if j < i:
        raise UsageError(f"--from {first} is after --to {last}")
    return keys[i : j + 1]


def contiguous_ranges(periods: Sequence[str], ordered_keys: Sequence[str]) -> list[list[str]]:
    """Split period keys into runs of consecutive keys (a Dagster run takes one contiguous range)."""
    position = {k: i for i, k in enumerate(ordered_keys)}
    ranges: list[list[str]] = []
    for key in sorted(periods, key=position.__getitem__):
        if ranges and position[key] == position[ranges[-1][-1]] + 1:
            ranges[-1].append(key)
        else:
            ranges.append([key])
    return ranges
