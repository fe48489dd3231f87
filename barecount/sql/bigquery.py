"""BareCount's SQL (DuckDB's dialect) as BigQuery runs it: sqlglot's transpilation, plus what BareCount's own SQL
needs that sqlglot leaves to the caller.

- A table `layer.name` is `project.<prefix>_layer.name`: one dataset per layer.
- Parameters (`?`, `$n`) become named ones (`@p1`...), and `getvariable('k')` becomes `@v_k`, so a secret is bound
  as a parameter and never written into the SQL text.
- `CAST(x AS DECIMAL(p, s))` keeps its precision and scale (BigQuery rounds to it, as DuckDB does); sqlglot drops
  them in casts, and money would then keep digits DuckDB rounds away.
- A decimal literal (1.255) is an exact NUMERIC, as in DuckDB, not BigQuery's FLOAT64.
- `x IN (SELECT unnest(list))` is `x IN UNNEST(list)`; `list_transform` an ARRAY subquery; `ORDER BY ALL` the
  select list's positions; `sha256` hex text, as DuckDB's; `hash(...)` an exact FARM_FINGERPRINT of the row as
  JSON (a sum of them fits BIGNUMERIC, where an INT64 sum would overflow).
- An average and a quotient are DOUBLE, as in DuckDB (BigQuery keeps a NUMERIC's, rounded to 9 decimals).
- `now()` is the current time as a DATETIME: BareCount's TIMESTAMP columns are DuckDB's, without a time zone (DATETIME).
- Statements BigQuery has no SQL for here (`DESCRIBE`, `CREATE SCHEMA`, `SET VARIABLE`) are told apart, for the
  connection to carry out; so are BEGIN, COMMIT and ROLLBACK (BigQuery's TRANSACTION statements), and a statement
  says whether it changes rows or a table's definition: BigQuery runs no DDL on a dataset's tables inside a
  transaction, so the connection begins one at its first change of rows (see `warehouse.bigquery`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Literal

import sqlglot
from sqlglot import exp, transforms
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError
from sqlglot.tokens import Tokenizer, TokenType

from barecount.errors import RefusedError
from barecount.sql.binding import DIALECT

NUMERIC_INTEGER_DIGITS, NUMERIC_SCALE = 29, 9
"""BigQuery's NUMERIC: at most 29 digits before the point and 9 after; wider decimals are BIGNUMERIC."""


def _decimal_kept(expression: exp.Expr) -> exp.Expr:
    for node in expression.find_all(exp.DataType):
        if node.is_type(exp.DType.DECIMAL) and node.expressions:
            precision, *rest = (int(param.name) for param in node.expressions)
            scale = rest[0] if rest else 0
            if precision - scale > NUMERIC_INTEGER_DIGITS or scale > NUMERIC_SCALE:
                node.set("this", exp.DType.BIGDECIMAL)
    return expression


class BareCountBigQuery(BigQuery):
    """sqlglot's BigQuery, with parameterized decimal casts (BigQuery accepts them; sqlglot drops them)."""

    class Generator(BigQuery.Generator):
        TRANSFORMS: ClassVar = {**BigQuery.Generator.TRANSFORMS, exp.Cast: transforms.preprocess([_decimal_kept])}


StatementKind = Literal["query", "create_dataset", "describe", "set_variable", "begin", "commit", "rollback"]
VARIABLE_PREFIX = "v_"
"""`getvariable('k')` is the parameter `@v_k`; the n-th value given with the statement is `@p<n>`."""


@dataclass(frozen=True)
class BigQueryStatement:
    """One statement as the BigQuery connection carries it out."""

    kind: StatementKind
    sql: str = ""
    """BigQuery SQL (a query, or the SELECT a DESCRIBE describes)."""
    parameters: tuple[str, ...] = ()
    """The named parameters the SQL binds: `p<n>` for the n-th value given, `v_<name>` for a variable."""
    name: str = ""
    """The dataset to create, or the variable to set."""
    changes_rows: bool = False
    """INSERT, UPDATE, DELETE or MERGE."""
    defines_table: bool = False
    """CREATE, ALTER or DROP of a dataset's table (a session's temporary table, named without a dataset, is not)."""

    def bind(self, values: Sequence[object], variables: Mapping[str, object]) -> list[tuple[str, object]]:
        """Each parameter of the SQL with its value: from the statement's `values`, or the session's `variables`."""
        return [
            (name, variables[name.removeprefix(VARIABLE_PREFIX)])
            if name.startswith(VARIABLE_PREFIX)
            else (name, values[int(name[1:]) - 1])
            for name in self.parameters
        ]


TRANSACTION_STATEMENTS: Mapping[type[exp.Expr], tuple[StatementKind, str]] = {
    exp.Transaction: ("begin", "BEGIN TRANSACTION"),
    exp.Commit: ("commit", "COMMIT TRANSACTION"),
    exp.Rollback: ("rollback", "ROLLBACK TRANSACTION"),
}
"""One transaction across the jobs of a session."""


@lru_cache(maxsize=4096)
def to_bigquery(sql: str, project: str, dataset_prefix: str) -> BigQueryStatement:
    """`sql`, one statement in DuckDB's dialect, as BigQuery runs it in `project` with datasets `<prefix>_<layer>`."""
    statements = [s for s in sqlglot.parse(_numbered(sql), read=DIALECT) if s is not None]
    if len(statements) != 1:
        raise RefusedError(f"one statement at a time on BigQuery, got {len(statements)}: {sql[:200]}")
    (tree,) = statements
    if type(tree) in TRANSACTION_STATEMENTS:
        return BigQueryStatement(*TRANSACTION_STATEMENTS[type(tree)])
    if isinstance(tree, exp.Create) and tree.kind == "SCHEMA":
        return BigQueryStatement("create_dataset", name=f"{dataset_prefix}_{tree.this.db}")
    if isinstance(tree, exp.Set):
        (item,) = tree.expressions
        assignment = item.this
        if item.args.get("kind") != "VARIABLE" or not isinstance(assignment, exp.EQ):
            raise RefusedError(f"BigQuery: only SET VARIABLE name = value is supported: {sql[:200]}")
        if not isinstance(assignment.expression, exp.Placeholder):
            raise RefusedError(f"BigQuery: a variable's value is bound as a parameter (= ?): {sql[:200]}")
        return BigQueryStatement("set_variable", parameters=("p1",), name=assignment.this.name)
    kind: StatementKind = "query"
    if isinstance(tree, exp.Describe):
        kind, tree = "describe", tree.this
    if tree.args.get("returning") is not None:
        raise RefusedError(f"BigQuery: an INSERT, UPDATE or DELETE returns no rows (RETURNING): {sql[:200]}")
    parameters = _bind_parameters(tree)
    changes_rows = isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge))
    defined = tree.find(exp.Table) if isinstance(tree, (exp.Create, exp.Alter, exp.Drop)) else None
    defines_table = defined is not None and bool(defined.db)
    tree = tree.transform(_rewrite, project=project, dataset_prefix=dataset_prefix)
    generated = tree.sql(dialect=BareCountBigQuery, unsupported_level=ErrorLevel.RAISE)
    return BigQueryStatement(kind, generated, parameters, changes_rows=changes_rows, defines_table=defines_table)


def _numbered(sql: str) -> str:
    """`sql` with each `?` as `$n`, n its place in the text: the parsed tree does not keep the text's order (a WITH
    clause's parameters come after the main query's), the tokens do."""
    tokens = [t for t in Tokenizer(dialect=DIALECT).tokenize(sql) if t.token_type == TokenType.PLACEHOLDER]
    if not tokens or any(t.text != "?" for t in tokens):
        return sql
    pieces, start = [], 0
    for number, token in enumerate(tokens, 1):
        pieces += [sql[start : token.start], f"${number}"]
        start = token.end + 1
    return "".join(pieces) + sql[start:]


def _bind_parameters(tree: exp.Expr) -> tuple[str, ...]:
    """Name every parameter in place (`$n` as `p<n>`, `getvariable('k')` as `v_k`); the names in binding order."""
    names: set[str] = set()
    for node in list(tree.find_all(exp.Placeholder, exp.Anonymous)):
        if isinstance(node, exp.Anonymous):
            if node.name.lower() != "getvariable":
                continue
            (argument,) = node.expressions
            name = f"{VARIABLE_PREFIX}{argument.name}"
            node.replace(exp.Placeholder(this=name))
        else:
            name = f"p{node.this}"
            node.set("this", name)
        names.add(name)
    positional = sorted((n for n in names if n.startswith("p")), key=lambda n: int(n[1:]))
    return tuple(positional + sorted(names - set(positional)))


def _rewrite(node: exp.Expr, project: str, dataset_prefix: str) -> exp.Expr:
    if isinstance(node, exp.Table) and node.db and not node.catalog:
        if node.db.lower() in {"information_schema", "pg_catalog"}:
            raise RefusedError(f"BigQuery: the catalog is read through the client, not {node.db}.{node.name}")
        node.set("db", exp.to_identifier(f"{dataset_prefix}_{node.db}"))
        node.set("catalog", exp.to_identifier(project))
        return node
    if isinstance(node, exp.In) and isinstance(node.args.get("query"), exp.Subquery):
        listed = _unnested_list(node.args["query"])
        if listed is not None:
            return exp.In(this=node.this, unnest=exp.Unnest(expressions=[listed]))
    if isinstance(node, exp.Transform) and isinstance(node.expression, exp.Lambda):
        (variable,) = node.expression.expressions
        body = node.expression.this
        unnested = exp.Unnest(expressions=[node.this], alias=exp.TableAlias(columns=[variable.copy()]))
        return exp.Array(expressions=[exp.select(body).from_(unnested)])
    if isinstance(node, exp.Literal) and node.is_number and "." in node.name and "e" not in node.name.lower():
        # DuckDB reads 1.255 as an exact DECIMAL, BigQuery as a FLOAT64 (1.25499...)
        scale = len(node.name.split(".", 1)[1])
        kind = exp.DType.BIGDECIMAL if scale > NUMERIC_SCALE else exp.DType.DECIMAL
        return exp.cast(exp.Literal.string(node.name), exp.DataType(this=kind))
    if isinstance(node, exp.SHA2):  # DuckDB's sha256 is lowercase hex text
        return exp.LowerHex(this=node)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "hash":
        row = exp.Struct(expressions=list(node.expressions))
        fingerprint = exp.func("FARM_FINGERPRINT", exp.func("TO_JSON_STRING", row))
        return exp.cast(fingerprint, exp.DataType(this=exp.DType.BIGDECIMAL))
    if isinstance(node, exp.CurrentTimestamp) or (isinstance(node, exp.Anonymous) and node.name.lower() == "now"):
        # BareCount's TIMESTAMP is DuckDB's, without a zone: DATETIME
        return exp.cast(
            exp.CurrentTimestamp(), exp.DataType(this=exp.DType.DATETIME)
        )  # the emulator lacks CURRENT_DATETIME
    if isinstance(node, (exp.Avg, exp.Div)) and not _is_double(node.this):
        # DuckDB averages and divides in DOUBLE, where BigQuery keeps a NUMERIC (rounded to 9 decimals)
        node.set("this", exp.cast(node.this, exp.DataType(this=exp.DType.DOUBLE)))
        return node
    if isinstance(node, exp.Anonymous) and node.name.lower() == "to_json":
        return exp.func("TO_JSON_STRING", *node.expressions)
    if isinstance(node, exp.RegexpFullMatch):
        pattern = exp.Concat(expressions=[exp.Literal.string("^(?:"), node.expression, exp.Literal.string(")$")])
        return exp.RegexpLike(this=node.this, expression=pattern)
    if isinstance(node, exp.Min) and isinstance(node.this, exp.Tuple):
        # the least of (a, b) by a, then b: BigQuery orders no STRUCT, but keeps the first of an ordered ARRAY_AGG
        terms = node.this.expressions
        row = exp.Struct(expressions=[exp.alias_(t.copy(), f"f{i}") for i, t in enumerate(terms)])
        ordered = exp.Order(expressions=[exp.Ordered(this=t.copy(), nulls_first=True) for t in terms])
        first = exp.ArrayAgg(
            this=exp.Limit(this=exp.Order(this=row, expressions=ordered.expressions), expression=exp.Literal.number(1))
        )
        return exp.Bracket(this=first, expressions=[exp.Literal.number(0)], offset=0, safe=False)
    if isinstance(node, exp.GenerateSeries) and isinstance(node.args.get("step"), exp.Interval):
        step = node.args["step"]
        days = exp.Interval(this=exp.Literal.number(step.name), unit=step.unit)
        return exp.func("GENERATE_DATE_ARRAY", node.args["start"], node.args["end"], days)
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node.set("materialized", None)  # BigQuery decides itself
        return node
    if isinstance(node, exp.Values) and node.alias_column_names:
        return _values_as_unnest(node)
    if isinstance(node, exp.Select):
        _order_by_positions(node)
        _without_rowid(node)
    return node


def _is_double(node: exp.Expr) -> bool:
    return isinstance(node, exp.Cast) and node.to.is_type(exp.DType.DOUBLE)


def _values_as_unnest(values: exp.Values) -> exp.Expr:
    """`(VALUES (a, b), ...) AS t(x, y)` as `(SELECT * FROM UNNEST([STRUCT(a AS x, b AS y), ...])) AS t`: BigQuery
    names no VALUES columns."""
    names = values.alias_column_names
    rows = [
        exp.Struct(expressions=[exp.alias_(v.copy(), n) for v, n in zip(row.expressions, names, strict=True)])
        for row in values.expressions
    ]
    select = exp.select("*").from_(exp.Unnest(expressions=[exp.Array(expressions=rows)]))
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(values.alias)))


def _without_rowid(select: exp.Select) -> None:
    """DuckDB's `rowid` (insertion order, where a sort key repeats) has no BigQuery counterpart: the sort keeps
    its other terms."""
    order = select.args.get("order")
    if order is not None:
        kept = [o for o in order.expressions if not (isinstance(o.this, exp.Column) and o.this.name == "rowid")]
        order.set("expressions", kept)


def _unnested_list(query: exp.Subquery) -> exp.Expr | None:
    """The list of `(SELECT unnest(list))`, else None."""
    select = query.this
    if not isinstance(select, exp.Select) or len(select.expressions) != 1 or select.args.get("from_"):
        return None
    (only,) = select.expressions
    return only.this if isinstance(only, (exp.Explode, exp.Unnest)) else None


def _order_by_positions(select: exp.Select) -> None:
    """`ORDER BY ALL` as the select list's positions (BigQuery has no ORDER BY ALL)."""
    order = select.args.get("order")
    if order is None or [o.this for o in order.expressions] != [exp.var("ALL")]:
        return
    if any(isinstance(e, exp.Star) for e in select.expressions):
        raise RefusedError("BigQuery: ORDER BY ALL needs the columns named, not *")
    positions: Sequence[exp.Ordered] = [
        exp.Ordered(this=exp.Literal.number(i), nulls_first=False) for i in range(1, len(select.expressions) + 1)
    ]
    order.set("expressions", positions)


def bigquery_problems(sql: str) -> list[str]:
    """Why `sql`, project SQL in DuckDB's dialect, would not run on BigQuery as `to_bigquery` translates it: each
    construct and the reason, or a function BigQuery does not have; empty if none. `barecount check --profile
    NAME` reports them with the file, instead of the run finding them."""
    try:
        translated = to_bigquery(sql, "project", "check")
    except (UnsupportedError, ParseError, RefusedError) as exc:
        return [f"no BigQuery translation: {str(exc).splitlines()[0]}"]
    unknown = {function.name for function in sqlglot.parse_one(translated.sql, read="bigquery").find_all(exp.Anonymous)}
    return [f"{name}() is not a BigQuery function" for name in sorted(unknown)]
