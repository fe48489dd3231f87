"""The Dagster instance the CLI runs against: `DAGSTER_HOME`, else `.dagster/` in the project."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg

from barecount.config.dead_runs import fail_dead_runs
from barecount.config.project import DAGSTER_HOME_ENV, ProjectPaths


def prepare_dagster_home(paths: ProjectPaths) -> Path:
    """Create DAGSTER_HOME with the project's `dagster.yaml` when missing; export it for child processes."""
    home = paths.dagster_home().resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(paths.resources / "dagster.yaml", config)
    os.environ[DAGSTER_HOME_ENV] = str(home)
    return home


def open_instance(paths: ProjectPaths) -> dg.DagsterInstance:
    """The persistent instance, so CLI runs show in the UI afterwards; runs whose process died are marked
    failed first, so that none of them holds the run queue."""
    prepare_dagster_home(paths)
    instance = dg.DagsterInstance.get()
    fail_dead_runs(instance)
    return instance
