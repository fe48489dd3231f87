"""Data contracts: ODCS v3 files (`contracts/<domain>/<stream>/<version>.yaml`) and the registry of versions."""

from barecount.registry.contract import Contract, ContractColumn
from barecount.registry.registry import ContractRegistry

__all__ = ["Contract", "ContractColumn", "ContractRegistry"]
