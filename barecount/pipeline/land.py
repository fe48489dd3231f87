"""Land a stream: plan the intake (each period under the contract version in force for it, what drifted),
read the extracts as one checked SELECT, split good rows from quarantined ones, write, and judge the gates.

A period whose extract breaks its contract (drift) is blocked: nothing of it lands, its previous rows stay,
and a next contract version is drafted for a data owner to approve.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from barecount.catalog.loader import LoadedStream
from barecount.contracts import ContractRegistry
from barecount.errors import TransientSourceError, scrubbed
from barecount.evidence import fingerprints, holds, ledger
from barecount.pipeline.connectors import BadSourceFile
from barecount.pipeline.fingerprint import files_read
from barecount.pipeline.gates import GateVerdict
from barecount.pipeline.gates.contract import raw_gates
from barecount.pipeline.ingestion import (
    checked_select,
    landed_tables,
    parent_keys,
    quarantine_split,
    union_of_extracts,
)
from barecount.pipeline.intake import IntakePlan, plan_intake
from barecount.pipeline.materialize import Materialized, materialize
from barecount.pipeline.scope import RunScope
from barecount.pipeline.sources import Sources
from barecount.sql.hashing import code_version
from barecount.sql.relation import Column, HeldBack, SqlRelation, schema_hash
from barecount.warehouse.writes import transaction

MAX_ATTEMPTS = 4
"""Attempts at a landing whose source is still being delivered (a transient error): the first and 3 retries."""


@dataclass(frozen=True)
class Landing:
    """What landing a stream did: the intake plan, the write, the gates' verdicts and the data version read."""

    stream: LoadedStream
    plan: IntakePlan
    written: Materialized | None
    """None when every period was blocked: nothing was written."""
    gates: tuple[GateVerdict, ...]
    data_version: str | None

    @property
    def blocked_everything(self) -> bool:
        return not self.plan.groups


def stream_version(stream: LoadedStream) -> str:
    """The code version of a stream: a short hash of its manifest. The locations its connector does not use are
    left out: a file stream's version is what it was before connectors could read BigQuery."""
    unused = {name for name in ("path", "table", "query") if getattr(stream.spec.connector, name) is None}
    return code_version(stream.spec.model_dump_json(exclude={"connector": unused}))


def stream_parents(
    stream: LoadedStream, registry: ContractRegistry, stream_by_contract: Mapping[str, str]
) -> list[str]:
    """The streams whose rows this one's foreign keys are checked against: they land first."""
    return sorted(
        {
            stream_by_contract[parent]
            for _, parent, _ in registry.in_force(stream.spec.contract, None).references()
            if parent in stream_by_contract and stream_by_contract[parent] != stream.spec.name
        }
    )


def land_stream(
    scope: RunScope,
    registry: ContractRegistry,
    stream: LoadedStream,
    keys: Sequence[str] | None,
    stream_by_contract: Mapping[str, str],
) -> Landing:
    """Land the periods `keys` of a partitioned stream (None: the snapshot of an unpartitioned one).

    Every failed attempt goes on the record; a `TransientSourceError` (an extract still being delivered) is
    raised for the caller to retry, anything else as it is: another attempt would fail the same way.
    """
    written, data_version = None, None
    try:
        plan = _plan(scope, registry, stream, keys)
        held = _blocked(stream, plan)
        if plan.groups:
            parents = stream_parents(stream, registry, stream_by_contract)
            relation, data_version = _read(scope, stream, plan, held, stream_by_contract, parents)
            try:
                written = materialize(scope, stream.asset_ref, relation, keys)
            except Exception as exc:
                bad_file = scope.sources.undecodable(exc, stream.spec)
                if bad_file is None:
                    raise
                raise bad_file from None
    except Exception as exc:
        _record_attempt(scope, stream, keys, exc, transient=isinstance(exc, TransientSourceError))
        raise
    if written is None:  # no write to put them on the record
        with transaction(scope.conn):
            holds.hold_back(scope.conn, stream.asset_ref, scope.run_id, held)
        scope.hold(stream.asset_ref, {k: h.reason for k, h in held.items()})
    return Landing(stream, plan, written, tuple(raw_gates(scope, registry, stream)), data_version)


def _record_attempt(
    scope: RunScope, stream: LoadedStream, keys: Sequence[str] | None, error: Exception, transient: bool
) -> None:
    attempt = scope.retry_number + 1
    facts = {
        "attempt": attempt,
        "of": MAX_ATTEMPTS,
        "error": f"{type(error).__name__}: {scrubbed(str(error))}",
        "transient": transient,
        "retrying": transient and attempt < MAX_ATTEMPTS,
        "periods": list(keys or []),
    }
    with transaction(scope.conn):
        ledger.append(scope.conn, [ledger.NewEntry("attempt", stream.asset_ref, None, scope.run_id, facts)])


def _plan(scope: RunScope, registry: ContractRegistry, stream: LoadedStream, keys: Sequence[str] | None) -> IntakePlan:
    """Each period's extract against the contract version in force for it."""
    spec, sources = stream.spec, scope.sources
    snapshot_period = "" if keys else scope.calendar.period_of(sources.extract_date(spec)).key
    schemas = sources.describe(spec, list(keys) if keys is not None else None, scope.conn)
    if spec.connector.kind == "csv":
        _check_headers(registry, stream, schemas, sources)
    plan = plan_intake(
        registry,
        spec.contract,
        schemas,
        typed_source=spec.connector.kind != "csv",
        paths=scope.paths,
        snapshot_period=snapshot_period,
    )
    with transaction(scope.conn):
        fingerprints.record_use(scope.conn, plan.contracts, scope.run_id)
    for key, drift in plan.blocked.items():
        scope.warn(f"{spec.name} {key or 'snapshot'} blocked by schema drift: {drift.describe()}")
    return plan


def _check_headers(
    registry: ContractRegistry,
    stream: LoadedStream,
    schemas: Mapping[str | None, Sequence[Column]],
    sources: Sources,
) -> None:
    """A CSV whose first line names none of the contract's columns has no header (its first row stands there):
    a bad file, not a source that renamed every column."""
    for key, source in schemas.items():
        expected = [c.source_name for c in registry.in_force(stream.spec.contract, key).columns]
        if not set(expected) & {c.name for c in source}:
            (file,) = sources.files.files_for(stream.spec, None if key is None else [key])
            raise BadSourceFile(
                f"{sources.files.shown(file)}: its first line names none of the contract's columns "
                f"({', '.join(expected)}): the file has no header line"
            )


def _blocked(stream: LoadedStream, plan: IntakePlan) -> dict[str | None, HeldBack]:
    return {
        key: HeldBack(
            "block",
            f"{stream.spec.contract} {drift.contract.version} blocked by schema drift: {drift.describe()}; "
            f"approve {drift.proposal} to land it",
            drift.facts(),
        )
        for key, drift in plan.blocked.items()
    }


def _read(
    scope: RunScope,
    stream: LoadedStream,
    plan: IntakePlan,
    held: dict[str | None, HeldBack],
    stream_by_contract: Mapping[str, str],
    parents: Sequence[str],
) -> tuple[SqlRelation, str]:
    """The checked SELECT over the extracts that land, and the data version of what it reads."""
    spec, sources = stream.spec, scope.sources
    landed_now = landed_tables(scope.conn)
    selects = [
        checked_select(
            group.contract,
            sources.scan_sql(spec, list(group.keys) if spec.partitioned else None, group.source, scope.conn),  # type: ignore[arg-type]
            group.source,
            spec.partitioned,
            parent_keys(group.contract, spec.name, stream_by_contract, landed_now, scope.org_slug),
        )
        for group in plan.groups
    ]
    landed_keys = [k for g in plan.groups for k in g.keys]
    read = sources.fingerprints(
        spec, [k for k in landed_keys if k is not None] if spec.partitioned else None, scope.conn
    )
    version = stream_version(stream)
    # the data version is what was read, so Dagster marks what was built from other extracts as stale
    read_under = {
        str(key): [g.contract.version, files_read(read[key])] for g in plan.groups for key in g.keys if key in read
    }
    data_version = code_version(version, json.dumps(read_under, sort_keys=True))
    retried = {"attempt": scope.retry_number + 1} if scope.retry_number else {}
    relation = SqlRelation(
        sql=union_of_extracts(selects),
        pipeline_id=stream.pipeline_id,
        credential_id=spec.credential_id,
        data_date=None if spec.partitioned else sources.extract_date(spec),
        quarantine=quarantine_split(plan.contracts, spec.partitioned),
        code_version=version,
        evidence={"contract": spec.contract} | retried,
        checked_against=tuple(f"raw/{parent}" for parent in parents),
        partition_evidence={
            key: {
                "contract_version": g.contract.version,
                "source_schema_hash": schema_hash(g.source),
                "source_files_read": read[key],
            }
            for g in plan.groups
            for key in g.keys
        },
        drifted={key: drift.facts() for key, drift in plan.drifted.items()},
        held_back=held,
    )
    return relation, data_version
