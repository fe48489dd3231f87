"""The evidence ledger: an append-only, hash-chained table of what BareCount did and saw."""
