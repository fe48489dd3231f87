"""Imported once by the process every run forks from (multiprocessing's forkserver): what each run would
otherwise load again. The modules a run executes with, the project's checked specs (whose cache a run finds
filled; it still reloads them when a project file changed since), and the Dagster instance's storage, opened
and closed again so that no connection is shared with a run."""

from contextlib import suppress

from barecount.catalog.loader import load_project_specs
from barecount.config.instance import open_instance
from barecount.config.project import ProjectPaths
from barecount.errors import BareCountError
from barecount.service import worker  # noqa: F401 - imported for its imports: Dagster, the layers, the runner

with suppress(BareCountError):  # a broken project: each run reports it as its reason
    paths = ProjectPaths.discover()
    load_project_specs(paths)
    open_instance(paths).dispose()
