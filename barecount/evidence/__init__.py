"""The `evidence` schema of the warehouse: the ledger, gate results, blocks, approvals, contract versions.

Its layout and version live in `barecount.evidence.schema`: writers call `ensure_evidence` before they
write, readers ask `evidence_table_exists` (and never create anything).
"""

from barecount.evidence.schema import (
    APPROVALS_TABLE,
    BLOCKED_TABLE,
    EVIDENCE_SCHEMA,
    FINGERPRINTS_TABLE,
    GATE_RESULTS_TABLE,
    LEDGER_TABLE,
    SCHEMA_VERSION,
    SCHEMA_VERSION_TABLE,
    TOKENS_TABLE,
    ensure_evidence,
    evidence_table_exists,
)

__all__ = [
    "APPROVALS_TABLE",
    "BLOCKED_TABLE",
    "EVIDENCE_SCHEMA",
    "FINGERPRINTS_TABLE",
    "GATE_RESULTS_TABLE",
    "LEDGER_TABLE",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_TABLE",
    "TOKENS_TABLE",
    "ensure_evidence",
    "evidence_table_exists",
]
