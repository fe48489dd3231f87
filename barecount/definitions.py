"""The Dagster entry point (`workspace.yaml`, `dg`): the project's definitions for the active profile."""

import dagster as dg

from barecount.assembly import build_definitions
from barecount.profiles import load_settings
from barecount.project import ProjectPaths


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings(ProjectPaths.discover()))
