"""Data contracts: ODCS v3 files (`contracts/<domain>/<stream>/<version>.yaml`) and the registry of versions."""

from barecount.contracts.contract import Contract, ContractColumn
from barecount.contracts.registry import ContractRegistry

__all__ = ["Contract", "ContractColumn", "ContractRegistry"]
