"""Pydantic models of the files users write (`assets/`, `kpis/`), and the loader that reads them all."""

from barecount.specs.kpi import KpiSpec
from barecount.specs.loader import ProjectSpecs, load_project_specs
from barecount.specs.model import ModelSpec
from barecount.specs.stream import ConnectorSpec, StreamsFile, StreamSpec

__all__ = [
    "ConnectorSpec",
    "KpiSpec",
    "ModelSpec",
    "ProjectSpecs",
    "StreamSpec",
    "StreamsFile",
    "load_project_specs",
]
