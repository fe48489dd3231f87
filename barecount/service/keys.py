"""Per-organisation API keys: `bc_<key id>_<secret>`, shown once when made, stored as a SHA-256 hash.

The secret is 32 random bytes, so a plain SHA-256 is enough to store it (a slow password hash guards guessable
secrets, which these are not); the key id in the clear finds the row, and the hashes are compared in constant
time. A viewer reads an organisation's runs; a runner also launches them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from barecount.errors import UsageError
from barecount.service.state import api_keys, now, transaction

Role = Literal["runner", "viewer"]
KEY_PREFIX = "bc"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    org: str
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def may_run(self) -> bool:
        return self.role == "runner"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(engine: Engine, org: str, role: Role, name: str) -> tuple[ApiKey, str]:
    """A new key for `org`: its record, and the key itself (the only time it is seen)."""
    key_id = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(key_id, org, role, name, now(), None)
    with transaction(engine) as conn:
        conn.execute(
            sa.insert(api_keys).values(
                key_id=key_id, org=org, role=role, name=name, secret_hash=_hash(secret), created_at=record.created_at
            )
        )
    return record, secret


def _record(row: sa.Row) -> ApiKey:
    return ApiKey(row.key_id, row.org, row.role, row.name, row.created_at, row.revoked_at)


def list_keys(engine: Engine, org: str | None = None) -> list[ApiKey]:
    query = sa.select(api_keys).order_by(api_keys.c.created_at)
    if org is not None:
        query = query.where(api_keys.c.org == org)
    with engine.connect() as conn:
        return [_record(row) for row in conn.execute(query)]


def revoke_key(engine: Engine, key_id: str) -> ApiKey:
    """Revoke a key from now on; a `UsageError` for a key that does not exist or is revoked already."""
    with transaction(engine) as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise UsageError(f"no API key {key_id} (barecount apikeys list shows them)")
        if row.revoked_at is not None:
            raise UsageError(f"API key {key_id} was revoked already, at {row.revoked_at:%Y-%m-%d %H:%M:%S}")
        conn.execute(sa.update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=now()))
        return _record(conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).one())


def authenticate(engine: Engine, presented: str) -> ApiKey | None:
    """The live key `presented` is, or None (unknown, malformed, wrong secret or revoked)."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == parts[1])).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, _hash(presented)):
        return None
    return _record(row)
