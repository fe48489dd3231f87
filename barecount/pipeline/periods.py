"""Which fiscal periods a command means: explicit keys, a range, or every period with source extracts."""

from __future__ import annotations

from collections.abc import Sequence

from barecount.catalog.loader import load_project_specs
from barecount.config.profiles import Settings
from barecount.errors import UsageError
from barecount.specs.stream import PERIOD_PLACEHOLDER


def source_periods(settings: Settings) -> list[str]:
    """Every configured period for which some partitioned stream has an extract file, in calendar order (a
    BigQuery source's periods are not looked for: name them, or set the tenant's active periods)."""
    specs = load_project_specs(settings.paths)
    found: set[str] = set()
    for stream in specs.streams:
        path = stream.spec.connector.path
        if not stream.spec.partitioned or path is None:
            continue
        prefix, suffix = path.split(PERIOD_PLACEHOLDER, 1)
        for file in settings.sources_dir.glob(path.replace(PERIOD_PLACEHOLDER, "*")):
            relative = file.relative_to(settings.sources_dir).as_posix()
            found.add(relative[len(prefix) : len(relative) - len(suffix)])
    keys = settings.partition_keys
    return [k for k in keys if k in found]


def active_periods(settings: Settings) -> list[str]:
    """The periods that are partitions of the assets: the tenant's `active_periods`, else from the first to the
    last period with source extracts (so a new extract extends them), else every configured period."""
    keys = settings.partition_keys
    chosen = settings.tenant.active_periods
    found = source_periods(settings)
    first = settings.check_period(chosen.first) if chosen else found[0] if found else keys[0]
    if chosen and chosen.last:
        last = settings.check_period(chosen.last)
    else:
        last = found[-1] if found and keys.index(found[-1]) >= keys.index(first) else keys[-1]
    i, j = keys.index(first), keys.index(last)
    if j < i:
        raise UsageError(
            f"active_periods: last ({last}) is before first ({first}) (resources/tenants/{settings.tenant.slug}.yaml)"
        )
    return keys[i : j + 1]


def resolve_periods(settings: Settings, period: str | None, start: str | None, end: str | None) -> list[str]:
    """The contiguous range of period keys a command asks for (default: every period with source data)."""
    keys = active_periods(settings)
    if period and (start or end):
        raise UsageError("use either --period or --from/--to, not both")
    if period:
        return [_active(settings, keys, period)]
    available = [k for k in source_periods(settings) if k in set(keys)]
    if not (start or end):
        if not available:
            raise UsageError(
                f"no source extracts found under {settings.paths.relative(settings.sources_dir)} "
                "(make sample data with `barecount sample-data` or `barecount demo`; a stream read from BigQuery "
                "needs its periods named: --period, or --from and --to)"
            )
        start, end = available[0], available[-1]
    first = _active(settings, keys, start) if start else available[0] if available else keys[0]
    last = _active(settings, keys, end) if end else available[-1] if available else keys[-1]
    i, j = keys.index(first), keys.index(last)
    if j < i:
        raise UsageError(f"--from {first} is after --to {last}")
    return keys[i : j + 1]


def _active(settings: Settings, active: Sequence[str], key: str) -> str:
    if settings.check_period(key) not in set(active):
        raise UsageError(
            f"period {key} is outside the active periods {active[0]}..{active[-1]}: those from the first to the "
            "last with source extracts, or resources/tenants/"
            f"{settings.tenant.slug}.yaml: active_periods"
        )
    return key


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
