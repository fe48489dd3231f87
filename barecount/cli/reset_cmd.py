"""`barecount reset`: back to the clean demo after any scenario, saying what goes first."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from barecount.cli.console import out
from barecount.config.project import ProjectPaths
from barecount.errors import UsageError

if TYPE_CHECKING:
    from barecount.config.profiles import Settings
    from barecount.devtools.sample_data import SampleManifest

WAREHOUSE_SIDECARS = (".wal", ".tmp")
"""What DuckDB keeps beside its file: the write-ahead log and the folder it spills to."""


@dataclass(frozen=True)
class Removal:
    """Something reset removes: `paths` (those that exist), shown as `shown` with what it is."""

    shown: Path
    what: str
    paths: tuple[Path, ...]


def _data(orgs: list[Settings]) -> tuple[list[Removal], list[str]]:
    """What runs and `sample-data` made outside the project files for every organisation, and what reset leaves
    alone (and why)."""
    from barecount.devtools.sample_data import LAYOUT, MANIFEST

    paths, removals, kept = orgs[0].paths, [], []
    for settings in orgs:
        sources = settings.sources_dir
        if (sources / MANIFEST).is_file():  # only the sample's own files: anything else in the folder is not ours
            removals.append(Removal(sources, "sample data", tuple(sources / name for name in LAYOUT)))
        elif sources.is_dir():
            kept.append(f"{paths.relative(sources)}: no {MANIFEST}, so not sample data")
        if not settings.on_bigquery:
            warehouse = settings.warehouse_path
            removals.append(
                Removal(warehouse, "warehouse", (warehouse, *(Path(f"{warehouse}{s}") for s in WAREHOUSE_SIDECARS)))
            )
        elif not settings.bigquery.emulator:
            kept.append(f"{settings.warehouse_shown}: reset never drops a cloud project's datasets")
    if orgs[0].on_bigquery and orgs[0].bigquery.emulator:
        emulator = orgs[0].emulator_dir
        removals.append(Removal(emulator, "warehouse: the emulator's tables", (emulator,)))
    home = paths.dagster_home()
    # A DAGSTER_HOME set outside the project may hold other projects' runs; the project's own is ours.
    if home.resolve().is_relative_to(paths.root.resolve()):
        removals.append(Removal(home, "Dagster home: run history", (home,)))
    elif home.exists():
        kept.append(f"{home}: DAGSTER_HOME is set outside the project (its run history stays)")
    return [r for r in removals if any(p.exists() for p in r.paths)], kept


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def reset(yes: Annotated[bool, typer.Option("--yes", help="Reset without asking.")] = False) -> None:
    """Back to the clean demo after any scenario: remove every organisation's sample data and warehouse, the Dagster
    home,
    and take contracts/ back to the versions the project shipped (the versions drift drafted go, the statuses
    their approvals changed come back). Lists it all and asks first; stop `barecount ui` before. Without a
    terminal to ask on, it needs --yes (exit 2 otherwise)."""
    from barecount.config.kept import KEPT
    from barecount.config.profiles import available_orgs, load_settings
    from barecount.contracts.files import back_to_shipped, restore_shipped

    paths = ProjectPaths.discover()
    orgs = [load_settings(paths, org=org) for org in available_orgs(paths)]
    removals, kept = _data(orgs)
    contracts = back_to_shipped(paths)
    for note in kept:
        out.print(f"Kept {note}.")
    if not removals and not contracts:
        out.print("Nothing to reset: the project is as shipped, with no sample data, warehouse or Dagster home.")
        return
    out.print("barecount reset will:")
    for removal in removals:
        out.print(f"  remove   {paths.relative(removal.shown)} ({removal.what})")
    for contract in contracts.drafted:
        out.print(f"  remove   {contract.file} ({contract.status}, drafted from schema drift)")
    for contract in contracts.reactivated:
        out.print(f"  restore  {contract.file} (status: deprecated -> active)")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("nothing reset: give --yes to reset without a terminal to ask on")
        typer.confirm("Reset?", abort=True)
    for removal in removals:
        for path in removal.paths:
            _remove(path)
    restore_shipped(paths, contracts)
    _remove(paths.data / KEPT)  # derived from the project files: the next command makes it again
    for settings in orgs:
        _remove_if_empty(settings.sources_dir)
        if not settings.on_bigquery:
            _remove_if_empty(settings.warehouse_path.parent)
    _remove_if_empty(paths.data)
    out.print("Reset. `make demo` (or `barecount demo`) builds the clean demo again.")


def scenario_note(settings: Settings, target: Path, manifest: SampleManifest) -> str:
    """What a sample made with scenarios in `target` changes beyond its own files, and the way back."""
    note = f"Scenario data in {settings.paths.relative(target)}"
    drift = manifest.scenarios.drift
    if drift is not None:
        from barecount.catalog.loader import load_project_specs
        from barecount.contracts import ContractRegistry

        contract_id = next(
            s.spec.contract for s in load_project_specs(settings.paths).streams if s.spec.name == drift.stream
        )
        in_force = ContractRegistry.load(settings.paths).in_force(contract_id, drift.period)
        note += (
            f". The next run blocks {drift.period} and drafts the next version of {contract_id} beside "
            f"{in_force.file}, a project file; approving it changes the status of {in_force.file}"
        )
    return note + ". `barecount reset` takes all of it back to the clean demo."
