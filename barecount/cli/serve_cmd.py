"""`barecount serve` (the pipeline-run service) and `barecount apikeys` (its per-organisation keys)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths
from barecount.errors import UsageError

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="The service's database, a SQLAlchemy URL (default: $BARECOUNT_SERVICE_DB, else data/service.sqlite); "
        "postgresql+psycopg://user@host/db in production.",
    ),
]

apikeys = typer.Typer(
    help="API keys of the service, one organisation each: create, list, revoke.", no_args_is_help=True
)


def _engine(db: str | None):
    from barecount.service.state import default_url, open_state

    return open_state(db or default_url(ProjectPaths.discover()))


def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8001,
    db: DbOption = None,
) -> None:
    """Serve the pipeline-run API (OpenAPI docs at /docs) until Ctrl-C: runs launched per organisation, with API
    keys, quotas, idempotency keys and a status lifecycle; each run shows in the Dagster UI with its tags."""
    import uvicorn

    from barecount.config.instance import prepare_dagster_home
    from barecount.service.app import create_app
    from barecount.service.state import default_url

    paths = ProjectPaths.discover()
    prepare_dagster_home(paths)  # the runs' instance, for their processes too
    app = create_app(paths, db or default_url(paths))
    out.print(f"BareCount service on http://{host}:{port} (API docs: http://{host}:{port}/docs)", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@apikeys.command("create")
def create(
    org: Annotated[str, typer.Option("--org", help="The organisation the key belongs to.")],
    role: Annotated[
        Literal["runner", "viewer"], typer.Option("--role", help="viewer reads runs; runner also launches them.")
    ] = "runner",
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key, for the list.")] = "",
    db: DbOption = None,
) -> None:
    """Make a key for an organisation. The key is printed once, as the last line: store it now."""
    from barecount.config.profiles import available_orgs
    from barecount.service.keys import create_key

    orgs = available_orgs(ProjectPaths.discover())
    if org not in orgs:
        raise UsageError(f"--org: unknown organisation '{org}'; known: {', '.join(orgs)}")
    record, secret = create_key(_engine(db), org, role, name or f"{role} key")
    out.print(f"Created {record.role} key {record.key_id} for {record.org}. It is shown once; store it now:")
    print(secret)


@apikeys.command("list")
def list_(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    db: DbOption = None,
) -> None:
    """The keys (never their secrets): id, organisation, role, name, when made, when revoked."""
    from barecount.service.keys import list_keys

    keys = list_keys(_engine(db), org)
    rows = [
        {
            "key_id": k.key_id,
            "org": k.org,
            "role": k.role,
            "name": k.name,
            "created_at": k.created_at.isoformat(),
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        }
        for k in keys
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="API keys", title_justify="left")
    for column in ("key_id", "org", "role", "name", "created_at", "revoked_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c] or "") for c in ("key_id", "org", "role", "name", "created_at", "revoked_at")))
    out.print(table)


@apikeys.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (apikeys list shows it).")],
    db: DbOption = None,
) -> None:
    """Revoke a key: from now on every request with it is refused (401)."""
    from barecount.service.keys import revoke_key

    record = revoke_key(_engine(db), key_id)
    out.print(f"Revoked key {record.key_id} of {record.org}.")
