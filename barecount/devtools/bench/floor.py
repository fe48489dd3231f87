"""Dagster's own floor: the project's graph (the same steps, assets, checks and partitions) with bodies that do
nothing but yield a materialization per selected asset and a passing result per selected check, run over every
period (or the periods named) in one single-run backfill. What BareCount's run costs above it is BareCount's;
this is Dagster's.

`python -m barecount.devtools.bench.floor PROJECT_ROOT [FIRST [LAST]]` prints the run's seconds (inside the run) as
JSON; its caller times the process.
"""

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from barecount.config.instance import open_instance
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import ALL_ASSETS_JOB, build_definitions
from barecount.defs.runner import run_partitions
from barecount.pipeline.periods import source_periods


def _hollow(step: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """`step` with the same specs and checks, and a body that does no work."""

    @dg.multi_asset(
        name=step.node_def.name,
        specs=list(step.specs),
        check_specs=list(step.check_specs),
        can_subset=True,
        backfill_policy=step.backfill_policy,
    )
    def hollow(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        checks = context.selected_asset_check_keys
        for spec in step.specs:
            if spec.key in context.selected_asset_keys:
                yield dg.MaterializeResult(asset_key=spec.key)
                for check in step.check_specs:
                    if check.key in checks and check.asset_key == spec.key:
                        yield dg.AssetCheckResult(asset_key=spec.key, check_name=check.name, passed=True)

    return hollow


def floor_definitions(defs: dg.Definitions) -> dg.Definitions:
    """The graph of `defs` with hollow steps, and the job that runs all of it."""
    steps = [_hollow(a) for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    return dg.Definitions(
        assets=steps,
        jobs=[dg.define_asset_job(ALL_ASSETS_JOB, selection=dg.AssetSelection.all())],
        executor=dg.in_process_executor,
    )


def main(root: str, first: str | None = None, last: str | None = None) -> None:
    settings = load_settings(ProjectPaths(Path(root)))
    defs = floor_definitions(build_definitions(settings))
    periods = source_periods(settings)
    if first is not None:
        periods = periods[periods.index(first) : periods.index(last or first) + 1]
    begin = time.monotonic()
    with open_instance(settings.paths) as instance:
        outcome = run_partitions(defs, instance, periods)
    if not outcome.success:
        raise SystemExit(f"the hollow run failed: {outcome.failure}")
    print(json.dumps({"run_seconds": outcome.seconds, "seconds": time.monotonic() - begin}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
