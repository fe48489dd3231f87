"""`barecount ui` prints no warnings: loading the definitions warns of nothing but what `dagster dev` is told to
ignore, and the interpreters it starts take that from the environment it is given."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import dagster as dg

from barecount.cli.main import DAGSTER_DEV_NOTICES, dagster_dev_environment
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths


def test_the_definitions_warn_of_nothing_else(repo_paths: ProjectPaths) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for notice in DAGSTER_DEV_NOTICES:
            warnings.filterwarnings("ignore", message=re.escape(notice))
        from barecount.defs.assembly import build_definitions  # imported here: import-time warnings count too

        dg.Definitions.validate_loadable(build_definitions(load_settings(repo_paths)))


def test_a_new_interpreter_ignores_the_notices_from_its_environment() -> None:
    warn = "; ".join(f"warnings.warn({notice + ' (and the rest)'!r}, FutureWarning)" for notice in DAGSTER_DEV_NOTICES)
    shown = subprocess.run(
        [sys.executable, "-c", f"import warnings; {warn}; warnings.warn('anything else', FutureWarning)"],
        env=dagster_dev_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert [line for line in shown.stderr.splitlines() if "Warning:" in line] == [
        "<string>:1: FutureWarning: anything else"
    ]
