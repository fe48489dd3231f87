"""Errors BareCount raises on purpose, each with enough context to act on.

CLI exit codes follow from the class: `SpecError`/`SpecErrors`/`UsageError` mean bad input (exit 2),
`RefusedError` a failed run, check or refused action (exit 1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

QUOTED_VALUES = re.compile(
    r"""(?P<quoted>\b(?:value|string|line)\s*)(?:"[^"\n]*"|'[^'\n]*')|(?P<whole>\bOriginal Line:)[^\n]*""",
    re.IGNORECASE,
)
"""Where library errors quote data: DuckDB's `value "…" is not valid UTF8`, `Could not convert string '…'`,
the `Original Line: …` of a CSV error."""


def scrubbed(message: str) -> str:
    """A library's error message without the data values it quotes: errors reach the console, the Dagster event
    log and the ledger (which cannot forget), and a value of a source row may be personal."""
    return QUOTED_VALUES.sub(lambda m: f"{(m['quoted'] or m['whole']).rstrip()} (value withheld)", message)


class BareCountError(Exception):
    """Base class: the message is meant for the person at the terminal or in the UI."""

    exit_code: int = 1


class UsageError(BareCountError):
    """Bad usage or bad input that is not a file (a malformed period key, a missing source file)."""

    exit_code = 2


class RefusedError(BareCountError):
    """A failed run or check, a blocked partition or a refused action."""

    exit_code = 1


class TransientSourceError(BareCountError):
    """A source that cannot be read just now but may be soon (an extract still being delivered): worth a retry."""

    exit_code = 1


class WarehouseQueryError(Exception):
    """BigQuery failed a statement (its job error, message kept): what `duckdb.Error` is on DuckDB. Not a
    BareCountError: like DuckDB's, it is a failure of the work, reported where the work is."""


class WarehouseBusyError(BareCountError):
    """The warehouse file stayed locked by another process past the wait limit."""

    exit_code = 1


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in one declarative file: where it is, which field, and why."""

    path: str
    line: int
    column: int
    field: str
    reason: str
    follows_from: str = ""
    """The file whose own error causes this one (an asset it would declare is missing), if any."""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class SpecErrors(BareCountError):
    """Every problem found in the declarative files, sorted by file and line."""

    exit_code = 2

    def __init__(self, errors: Iterable[SpecError]) -> None:
        ordered = sorted(errors)
        roots = [e for e in ordered if not e.follows_from]
        knock_ons: dict[str, list[SpecError]] = {}
        for error in ordered:
            if error.follows_from:
                knock_ons.setdefault(error.follows_from, []).append(error)
        self.errors: tuple[SpecError, ...] = (*roots, *(e for group in knock_ons.values() for e in group))
        """The errors files have of their own first, then those that follow from them."""
        lines = [str(e) for e in roots]
        for source, group in knock_ons.items():  # folded under the error they follow from
            lines.append(f"  ... and {len(group)} more that follow from {source}, the first: {group[0]}")
        super().__init__("\n".join(lines))

    @classmethod
    def single(cls, path: Path | str, field: str, reason: str, line: int = 0, column: int = 0) -> SpecErrors:
        return cls([SpecError(str(path), line, column, field, reason)])
