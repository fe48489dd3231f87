"""A real PostgreSQL server for the tests, from Debian's `postgresql` package (`make test` installs it).

`initdb` refuses to run as root, so under root the cluster belongs to `nobody` and its commands run through
`runuser`. It listens on 127.0.0.1 on a free port with trust authentication (a throwaway cluster in a temporary
folder) and is stopped when the block ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from barecount.config.processes import free_port

UNPRIVILEGED = "nobody"


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: `make test` installs Debian's postgresql")
    return str(found)


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", UNPRIVILEGED, "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """A running server with its cluster in a temporary folder of its own (one the unprivileged owner can reach,
    which pytest's folders under root are not); yields its SQLAlchemy URL (database `postgres`)."""
    base = Path(tempfile.mkdtemp(prefix="barecount-postgres-"))
    base.chmod(0o755)
    data, sockets, log = base / "data", base / "sockets", base / "server.log"
    sockets.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, UNPRIVILEGED)
        shutil.chown(sockets, UNPRIVILEGED)
    subprocess.run(
        _as_owner([_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        _as_owner([_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]), check=False)
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """A new, empty database on the server: its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
