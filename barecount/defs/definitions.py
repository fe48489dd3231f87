"""The Dagster entry point (`workspace.yaml`, `dg`): one code location per organisation.

`workspace.yaml` names each organisation as an attribute of this module (`attribute: acme`), and the attribute
is that organisation's definitions for the active profile: its calendar's periods, its warehouse, its keys
(which lead with the organisation). `defs` is the organisation of the profile (or BARECOUNT_ORG), for tools
that load one location by module.
"""

import dagster as dg

from barecount.config.profiles import available_orgs, load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions


def org_definitions(org: str | None) -> dg.Definitions:
    return build_definitions(load_settings(ProjectPaths.discover(), org=org))


@dg.definitions
def defs() -> dg.Definitions:
    return org_definitions(None)


def __getattr__(name: str) -> dg.Definitions:
    """`barecount.defs.definitions.<org>`: that organisation's definitions (Dagster's loader asks by attribute)."""
    if name.startswith("_") or name not in available_orgs(ProjectPaths.discover()):
        raise AttributeError(name)
    return org_definitions(name)
