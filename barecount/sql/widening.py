"""Which type changes lose nothing: the rule a contract diff, drift detection and a partition write share."""

from __future__ import annotations

import re

_INTEGER_WIDTH = {"TINYINT": 1, "SMALLINT": 2, "INTEGER": 3, "BIGINT": 4, "HUGEINT": 5}
INTEGER_TYPES = tuple(_INTEGER_WIDTH)
"""DuckDB's integer types, narrowest first."""
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s?(\d+)\)$")


def widens(before: str, after: str) -> bool:
    """True if every value of type `before` fits `after` exactly (so the change loses nothing)."""
    if before == after:
        return True
    if before in _INTEGER_WIDTH and after in _INTEGER_WIDTH:
        return _INTEGER_WIDTH[after] >= _INTEGER_WIDTH[before]
    old, new = _DECIMAL.match(before), _DECIMAL.match(after)
    if old and new:
        (p1, s1), (p2, s2) = (int(g) for g in old.groups()), (int(g) for g in new.groups())
        return s2 >= s1 and p2 - s2 >= p1 - s1
    if before in _INTEGER_WIDTH and new:
        digits = {"TINYINT": 3, "SMALLINT": 5, "INTEGER": 10, "BIGINT": 19, "HUGEINT": 39}[before]
        return int(new.group(1)) - int(new.group(2)) >= digits
    return (
        after == "VARCHAR"
        or (before in ("REAL", "FLOAT") and after == "DOUBLE")
        or (before == "DATE" and after == "TIMESTAMP")
    )
