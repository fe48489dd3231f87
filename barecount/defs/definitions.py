"""The Dagster entry point (`workspace.yaml`, `dg`): the project's definitions for the active profile."""

import dagster as dg

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings(ProjectPaths.discover()))
