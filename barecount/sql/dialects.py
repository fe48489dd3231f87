"""Project SQL is written once, in DuckDB's dialect; on a BigQuery profile it runs as sqlglot transpiles it. What
sqlglot cannot express in BigQuery, and functions BigQuery does not know, are found when the project is checked
(`barecount check --profile NAME`), with the file, instead of at run time."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from barecount.sql.binding import DIALECT


def bigquery_problems(sql: str) -> list[str]:
    """Why `sql` (DuckDB's dialect) would not run on BigQuery: each construct and the reason; empty if none."""
    try:
        translated = sqlglot.transpile(sql, read=DIALECT, write="bigquery", unsupported_level=ErrorLevel.RAISE)
    except (UnsupportedError, ParseError) as exc:
        return [f"no BigQuery translation: {str(exc).splitlines()[0]}"]
    unknown = {
        function.name
        for statement in translated
        for function in sqlglot.parse_one(statement, read="bigquery").find_all(exp.Anonymous)
    }
    return [f"{name}() is not a BigQuery function" for name in sorted(unknown)]
