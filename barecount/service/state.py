"""The service's own state, through SQLAlchemy: SQLite by default, PostgreSQL in production.

API keys (hashed), pipeline runs with their transitions, steps and log, quota reservations and idempotency
records. Every change that must be all-or-nothing (a reservation with its run, a key with its record) is one
transaction; the quota check and the reservation are one transaction holding the organisation's lock row, so
two requests never both take the last slot.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from barecount.config.project import ProjectPaths

STATE_URL_ENV = "BARECOUNT_SERVICE_DB"
"""The service's database URL (SQLAlchemy), e.g. postgresql+psycopg://user@host/barecount."""

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("org", sa.String(40), nullable=False, index=True),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

org_locks = sa.Table(
    "org_locks",
    metadata,
    sa.Column("org", sa.String(40), primary_key=True),
    sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
)
"""One row per organisation: its quota check and reservation lock this row (SELECT ... FOR UPDATE)."""

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("org", sa.String(40), nullable=False),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("pipeline_id", sa.String(100), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("requested_by", sa.String(16), nullable=False),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("periods", sa.JSON, nullable=False),
    sa.Column("validation", sa.JSON),
    sa.Column("held", sa.JSON),
    sa.Column("worker_pid", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_pipeline_runs_org_created", "org", "created_at"),
)

run_transitions = sa.Table(
    "run_transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("pipeline_runs.run_id"), nullable=False, index=True),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text),
)

run_steps = sa.Table(
    "run_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("pipeline_runs.run_id"), nullable=False, index=True),
    sa.Column("step_id", sa.String(100), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("dagster_run_id", sa.String(36)),
    sa.Column("assets", sa.JSON),
    sa.Column("rows", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("timeout_seconds", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
)

run_logs = sa.Table(
    "run_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("pipeline_runs.run_id"), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("step_id", sa.String(100)),
    sa.Column("message", sa.Text, nullable=False),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("run_id", sa.String(36), sa.ForeignKey("pipeline_runs.run_id"), primary_key=True),
    sa.Column("org", sa.String(40), nullable=False, index=True),
    sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True)),
    sa.Column("released_why", sa.Text),
)
"""A run that counts against its organisation's quotas: all of them for the daily and monthly limits, the
unreleased ones for the concurrent limit."""

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("org", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
"""A request's Idempotency-Key: `run_id` is empty while the first request is being processed."""


def now() -> datetime:
    return datetime.now(UTC)


def default_url(paths: ProjectPaths) -> str:
    """`BARECOUNT_SERVICE_DB`, else a SQLite file beside the warehouses (data/service.sqlite)."""
    configured = os.environ.get(STATE_URL_ENV)
    if configured:
        return configured
    path = paths.data / "service.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_state(url: str) -> Engine:
    """An engine on the service database, its tables created if missing. On SQLite every transaction takes the
    write lock when it begins (BEGIN IMMEDIATE), which is what a check-and-reserve needs there; on PostgreSQL
    the organisation's lock row does it (`lock_org`)."""
    if url.startswith("sqlite"):
        file = sa.engine.make_url(url).database
        if file:
            Path(file).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_settings(dbapi_connection: object, _: object) -> None:
            dbapi_connection.isolation_level = None  # type: ignore[attr-defined]  # SQLAlchemy emits BEGIN below
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    metadata.create_all(engine)
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        yield conn


def ensure_orgs(engine: Engine, orgs: list[str]) -> None:
    """A lock row for every organisation, made once at start (so that requests only ever lock, never insert)."""
    with transaction(engine) as conn:
        present = set(conn.scalars(sa.select(org_locks.c.org)))
        for org in orgs:
            if org not in present:
                conn.execute(sa.insert(org_locks).values(org=org, touched_at=now()))


def lock_org(conn: Connection, org: str) -> None:
    """Hold the organisation's lock row until the transaction ends: quota checks of one org go one at a time
    (on SQLite the transaction's write lock already serialises them)."""
    conn.execute(sa.select(org_locks.c.org).where(org_locks.c.org == org).with_for_update())
