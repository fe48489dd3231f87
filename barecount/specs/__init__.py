"""Pydantic models of the files users write (`assets/`, `kpis/`), and the loader that reads them all."""

from barecount.specs.kpi import KpiSpec
from barecount.specs.model import ModelSpec
from barecount.specs.stream import ConnectorSpec, StreamsFile, StreamSpec

__all__ = [
    "ConnectorSpec",
    "KpiSpec",
    "ModelSpec",
    "StreamSpec",
    "StreamsFile",
]
