"""The `barecount` command: exit 0 ok, 1 a failed run/check or refused action, 2 bad usage or a bad file."""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

# Light on purpose: typer builds every command's help from these modules, so `--help` and the commands
# that need no Dagster run import none of Dagster, ibis or pandera. Heavy imports go in function bodies.
from barecount.cli import (
    bench_cmd,
    calendar_cmd,
    catalog_cmd,
    contracts_cmd,
    export_cmd,
    kpi_cmd,
    ledger_cmd,
    pipeline_cmd,
    plan_cmd,
    quarantine_cmd,
    reset_cmd,
    retention_cmd,
    schedules_cmd,
    serve_cmd,
    status_cmd,
)
from barecount.cli.console import err, out, quiet_dagster_notices, setup_logging
from barecount.cli.tabular import RowFormat, print_rows
from barecount.config.project import ORG_ENV, PROFILE_ENV, ProjectPaths
from barecount.errors import BareCountError, SpecError, SpecErrors, UsageError, WarehouseQueryError

if TYPE_CHECKING:
    from pydantic import BaseModel

app = typer.Typer(
    help="BareCount: governed data pipelines on Dagster, partitioned by your fiscal calendar.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        parts = ", ".join(f"{name} {version(name)}" for name in ("dagster", "duckdb"))
        out.print(f"barecount {version('barecount')} ({parts})")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Options that come before the command."""


app.add_typer(calendar_cmd.app, name="calendar")
app.add_typer(contracts_cmd.app, name="contracts")
app.add_typer(quarantine_cmd.app, name="quarantine")
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(kpi_cmd.app, name="kpi")
app.command("run")(pipeline_cmd.run)
app.command("backfill")(pipeline_cmd.backfill)
app.command("demo")(pipeline_cmd.demo)
app.command("plan")(plan_cmd.plan)
app.command("bench")(bench_cmd.bench)
app.command("reset")(reset_cmd.reset)
app.command("schedules")(schedules_cmd.schedules)
app.command("status")(status_cmd.status)
app.command("retention")(retention_cmd.retention)
app.command("serve")(serve_cmd.serve)
app.command("export")(export_cmd.export)
app.command("catalog")(catalog_cmd.catalog)
app.add_typer(serve_cmd.apikeys, name="apikeys")


def schema_models() -> dict[str, type[BaseModel]]:
    """Every declarative file format, by the name of its JSON Schema file."""
    from barecount.calendar.spec import CalendarSpec
    from barecount.config.profiles import Profile, Tenant
    from barecount.devtools.sample_data import SampleManifest
    from barecount.specs import KpiSpec, ModelSpec, StreamsFile
    from barecount.specs.kpi import KpiFixture
    from barecount.specs.pipeline import PipelineSpec

    return {
        "streams": StreamsFile,
        "gdp-model": ModelSpec,
        "kpi": KpiSpec,
        "kpi-fixture": KpiFixture,
        "calendar": CalendarSpec,
        "profile": Profile,
        "tenant": Tenant,
        "pipeline": PipelineSpec,
        "sample-manifest": SampleManifest,
    }


@app.command("sample-data")
def sample_data(
    scale: Annotated[float, typer.Option("--scale", help="TPC-H scale factor (1 = 6 M order lines).")] = 0.1,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: the profile's sources_dir).")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed for the CRM extract and scenarios (default: the tenant's sample_data.seed)."),
    ] = None,
    bad_rows: Annotated[
        int, typer.Option("--bad-rows", min=0, help="Invalid rows to inject across the ERP and CRM extracts.")
    ] = 0,
    late_fraction: Annotated[
        float,
        typer.Option(
            "--late-fraction",
            min=0.0,
            max=1.0,
            help="Share of each of the last three periods' orders (and their lines) delivered in the next extract.",
        ),
    ] = 0.0,
    drift: Annotated[
        bool,
        typer.Option("--drift", help="The most recent orders extract renames a column and widens another's type."),
    ] = False,
    anomaly: Annotated[
        list[str] | None,
        typer.Option(
            "--anomaly",
            metavar="K|PERIOD",
            help="Triple the line prices of K periods picked by the seed, or of the period named (repeatable): "
            "the KPIs they change fail their thresholds and score as anomalies.",
        ),
    ] = None,
) -> None:
    """Generate TPC-H sample sources laid out as the ERP and CRM deliver them, optionally with scenarios."""
    from barecount.config.profiles import load_settings
    from barecount.devtools.sample_data import generate_sample_data

    settings = load_settings(ProjectPaths.discover())
    target = out_dir or settings.sources_dir
    seed = settings.tenant.sample_data.seed if seed is None else seed
    if scale <= 0:
        raise UsageError(f"--scale: must be greater than 0 (got {scale:g})")
    with err.status("generating sample data") as status:
        manifest = generate_sample_data(
            target,
            scale,
            seed,
            settings.calendar,
            progress=lambda message: status.update(message),
            bad_rows=bad_rows,
            late_fraction=late_fraction,
            drift=drift,
            anomalies=_anomalies(anomaly or []),
        )
    table = Table(title=f"Sample data in {target}: TPC-H SF{scale:g}, seed {seed}", title_justify="left")
    table.add_column("table")
    table.add_column("files", justify="right")
    table.add_column("rows", justify="right")
    per_table: dict[str, tuple[int, int]] = {}
    for file in manifest.files:
        files, rows = per_table.get(file.table, (0, 0))
        per_table[file.table] = (files + 1, rows + file.rows)
    for name, (files, rows) in per_table.items():
        table.add_row(name, str(files), f"{rows:,}")
    out.print(table)
    out.print(f"Periods {manifest.first_period} .. {manifest.last_period}; manifest: {target / 'manifest.json'}")
    if manifest.injected:
        out.print(f"Injected {len(manifest.injected)} invalid rows (listed in the manifest under 'injected').")
    for late in manifest.scenarios.late:
        out.print(f"Late: {late.orders:,} orders of {late.order_period} arrive in the {late.extract_period} extract.")
    for inflated in manifest.scenarios.anomalies:
        out.print(f"Anomaly: {inflated.lines:,} line prices of {inflated.period} multiplied by {inflated.factor:g}.")
    if manifest.scenarios.drift:
        changed = manifest.scenarios.drift
        renamed = ", ".join(f"{a} -> {b}" for a, b in changed.renamed.items())
        retyped = ", ".join(f"{a} as {b}" for a, b in changed.retyped.items())
        out.print(f"Drift: the {changed.stream} extract of {changed.period} renames {renamed} and delivers {retyped}.")
    if manifest.scenarios.any:
        out.print(reset_cmd.scenario_note(settings, target, manifest))


def _anomalies(given: list[str]) -> int | list[str]:
    """`--anomaly 2` is a count; `--anomaly FY1995-P03` (repeatable) names periods."""
    counts = [g for g in given if g.isdigit()]
    if counts and len(given) > 1:
        raise UsageError("--anomaly: give one count (e.g. --anomaly 2) or period keys, not both")
    return int(counts[0]) if counts else given


@app.command("check")
def check() -> None:
    """Validate every declarative file (profile, tenant, calendar, contracts, streams, models, KPIs) and the graph;
    with a warehouse, also that no contract version changed since a run used it."""
    # validating the graph needs Dagster's definitions: `check` is the one read-only command that loads it
    import dagster as dg

    from barecount.catalog.loader import load_project_specs
    from barecount.catalog.pipelines import load_pipelines, selection_problems
    from barecount.config.orgs import check_orgs
    from barecount.config.profiles import load_settings
    from barecount.consume.exports import export_problems
    from barecount.contracts import ContractRegistry
    from barecount.defs.assembly import build_definitions
    from barecount.defs.runner import every_asset, resolve_selection
    from barecount.evidence import fingerprints
    from barecount.pipeline.sources import source_problems
    from barecount.sql.pii import check_masking_keys
    from barecount.warehouse.connection import warehouse_file

    paths = ProjectPaths.discover()
    orgs = check_orgs(paths)
    settings = load_settings(paths)
    specs = load_project_specs(settings.paths)
    pipelines = load_pipelines(paths)
    check_masking_keys(specs.masking())  # what a run needs from the environment, named now
    defs = build_definitions(settings, specs)
    dg.Definitions.validate_loadable(defs)
    problems = source_problems(specs, settings.on_bigquery)
    problems += selection_problems(
        paths, pipelines, every_asset(defs), lambda patterns: resolve_selection(defs, patterns)
    )
    problems += export_problems(paths, orgs, specs)
    if settings.on_bigquery:
        from barecount.sql.bigquery import bigquery_problems

        problems += [
            SpecError(item.sql_file, 0, 0, "", f"does not run on BigQuery: {problem}")
            for item in (*specs.models, *specs.kpis)
            for problem in bigquery_problems(item.sql)
        ]
    if problems:
        raise SpecErrors(problems)
    warehouse = warehouse_file(settings)
    if warehouse.exists():
        registry = ContractRegistry.load(settings.paths)
        with warehouse.get_connection(read_only=True) as conn:
            changed = fingerprints.changed_since_used(
                conn, [c for cid in registry.ids() for c in registry.versions(cid)]
            )
        if changed:
            raise SpecErrors([SpecError(contract.file, 0, 0, "content", reason) for contract, reason in changed])
    out.print(
        f"[green]ok[/]: profile {settings.profile.name}, organisations {', '.join(orgs)}; "
        f"{settings.tenant.slug}: calendar "
        f"{settings.calendar.name} ({len(settings.partition_keys)} periods), {len(specs.streams)} streams, "
        f"{len(specs.models)} models, {len(specs.kpis)} KPIs; {len(pipelines)} pipelines"
    )


@app.command("schema")
def schema(
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the JSON Schemas (default: schemas/).")
    ] = None,
) -> None:
    """Write a JSON Schema for every declarative file format, for editors to complete and validate."""
    from barecount.contracts.odcs import odcs_json_schema

    paths = ProjectPaths.discover()
    target = out_dir or paths.root / "schemas"
    target.mkdir(parents=True, exist_ok=True)
    schemas = {name: model.model_json_schema() for name, model in schema_models().items()}
    # contracts follow the standard itself: editors get the official ODCS v3 schema
    schemas["contract"] = odcs_json_schema()
    for name, content in schemas.items():
        file = target / f"{name}.schema.json"
        file.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        out.print(f"wrote {paths.relative(file)}")


@app.command("query")
def query(
    sql: Annotated[str, typer.Argument(metavar="SQL", help="One read-only SQL statement against the warehouse.")],
    output: Annotated[
        RowFormat,
        typer.Option(
            "--format",
            help="table: numbers formatted and right-aligned, one column per line if wider than the terminal; "
            "line: one column per line; csv: a header and the rows; json: a list of objects (dates and decimals "
            "as exact strings). csv and json print every row, exact.",
        ),
    ] = "table",
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Most rows to print as a table or lines (0: all).")] = 200,
) -> None:
    """Run one read-only statement against the warehouse (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE).

    Anything else is refused with exit 2, naming the construct: writes, COPY/EXPORT, ATTACH, INSTALL/LOAD,
    SET/PRAGMA, file-reading table functions, session variables, several statements. The connection
    itself can reach no file but the warehouse.
    """
    if as_json and output not in ("table", "json"):
        raise UsageError(f"--json asks for JSON and --format for {output}: give one of them")
    import duckdb

    from barecount.config.profiles import load_settings
    from barecount.sql.read_only import check_read_only
    from barecount.warehouse.catalog import tables
    from barecount.warehouse.connection import warehouse_file

    warehouse = warehouse_file(load_settings(ProjectPaths.discover()), sealed=True)
    try:
        with warehouse.get_connection(read_only=True) as conn:
            cursor = conn.execute(check_read_only(sql, tables(conn)))
            names = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall()
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    except (duckdb.Error, WarehouseQueryError) as exc:
        raise UsageError(f"query failed: {exc}") from None
    print_rows(names, rows, "json" if as_json else output, limit)


DAGSTER_DEV_NOTICES = (
    # `dagster dev` points to `dg dev`, which needs dagster-dg-cli: not a dependency
    "Function `dev_command` is superseded",
)
"""How the warnings begin that `dagster dev` and each process it starts would print about APIs we chose. Those
are new interpreters: they get the filters through PYTHONWARNINGS, which can name Dagster's warning classes only
by a module that cannot be imported when an interpreter starts, hence by message."""


def dagster_dev_environment() -> dict[str, str]:
    """Our environment with DAGSTER_DEV_NOTICES ignored; a PYTHONWARNINGS of the user's comes after, so it wins."""
    ignored = [f"ignore:{notice}" for notice in DAGSTER_DEV_NOTICES]
    own = os.environ.get("PYTHONWARNINGS")
    return {**os.environ, "PYTHONWARNINGS": ",".join([*ignored, *([own] if own else [])])}


@app.command("ui")
def ui(
    port: Annotated[int, typer.Option("--port", help="Port of the web UI.")] = 3000,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Start the Dagster UI and daemon (`dagster dev`) on this project's workspace.yaml."""
    from barecount.config.instance import open_instance
    from barecount.config.profiles import load_settings

    paths = ProjectPaths.discover()
    settings = load_settings(paths)
    with open_instance(paths):  # prepares DAGSTER_HOME; runs whose process died are failed before the queue starts
        home = paths.dagster_home().resolve()
    with ExitStack() as held:
        if settings.on_bigquery and settings.bigquery.emulator:
            # one emulator for the webserver, the daemon and every run they start, for as long as the UI runs
            from barecount.warehouse.bigquery_emulator import emulator_python, holding_emulator

            python = emulator_python(paths.root)
            held.enter_context(holding_emulator(python, settings.emulator_dir, settings.bigquery.project))
        out.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops it.")
        dagster = Path(sys.executable).with_name("dagster")
        command = [str(dagster), "dev", "-w", str(paths.root / "workspace.yaml"), "-h", host, "-p", str(port)]
        # Started in the background, we ignore SIGINT; `dagster dev` makes SIGTERM do what SIGINT does, so it
        # would ignore both. It gets the terminal's handling of SIGINT, and our SIGTERM stops it as well.
        server = subprocess.Popen(
            command,
            cwd=paths.root,
            env=dagster_dev_environment(),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        signal.signal(signal.SIGTERM, lambda *_: server.terminate())
        try:
            code = server.wait()
        except KeyboardInterrupt:  # Ctrl-C reaches the server too: let it shut down
            code = server.wait()
    raise typer.Exit(code)


def _with_metavars(command: Any) -> Any:
    """Help that shows what to type: `--period PERIOD`, and nothing after a flag, where Typer shows the Python
    type (`<str>`, `<bool>`). Options and arguments without a metavar of their own are named after themselves. (Typer's
    commands are its own click's: they are told apart by what they have.)"""
    for param in command.params:
        kind = getattr(param, "param_type_name", "")
        if kind == "option" and param.metavar is None:
            param.metavar = "" if param.is_flag else param.opts[-1].lstrip("-").upper().replace("-", "_")
        elif kind == "argument":  # its name is shown already; the type column would only say <str>
            param.display_type_rich = lambda ctx: None
    made_help = command.get_help_option

    def help_option(ctx: Any, made: Any = made_help) -> Any:  # made per call, so named here
        option = made(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _with_metavars(sub)
    return command


ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", metavar="NAME", help="Profile in resources/profiles/ (default: $BARECOUNT_PROFILE, else local)."
    ),
]
OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        metavar="SLUG",
        help="Organisation in resources/tenants/ (default: $BARECOUNT_ORG, else the profile's tenant).",
    ),
]
ENVIRONMENT_OPTIONS = {"profile": (ProfileOption, PROFILE_ENV), "org": (OrgOption, ORG_ENV)}
"""Options every command takes, each as if its environment variable were set for the command."""


def _taking_environment_options(callback: Any) -> Any:
    """`callback` with `--profile NAME` and `--org SLUG`, which set BARECOUNT_PROFILE and BARECOUNT_ORG for the
    command and what it starts."""
    signature = inspect.signature(callback, eval_str=True)
    taken = [name for name in ENVIRONMENT_OPTIONS if name not in signature.parameters]
    if not taken:
        return callback

    @functools.wraps(callback)
    def command(*args: Any, **kwargs: Any) -> Any:
        for name in taken:
            value = kwargs.pop(name, None)
            if value:
                os.environ[ENVIRONMENT_OPTIONS[name][1]] = value
        return callback(*args, **kwargs)

    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ENVIRONMENT_OPTIONS[name][0])
        for name in taken
    ]
    command.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *added])  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}  # type: ignore[attr-defined]
    return command


def _with_environment_options(commands: typer.Typer) -> typer.Typer:
    """Every command takes `--profile NAME` and `--org SLUG`."""
    for info in commands.registered_commands:
        info.callback = _taking_environment_options(info.callback)
    for group in commands.registered_groups:
        assert group.typer_instance is not None
        _with_environment_options(group.typer_instance)
    return commands


def main() -> None:
    """Entry point: BareCount's own errors become a message and an exit code, never a stack trace.

    Usage errors (unknown option, missing argument) are click's: exit 2 with the command's usage.
    """
    setup_logging()
    # A SIGTERM ignored by whoever started us would be inherited by the `tail -F` that Dagster's log capture
    # starts for each run: nothing could stop it, so each run would wait 30 s for it at the end, and the
    # orphan would then hold our output open for good.
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Dagster's beta/preview notices (backfill policies, code references) are for library authors
    quiet_dagster_notices()
    try:
        _with_metavars(typer.main.get_command(_with_environment_options(app)))()
    except BareCountError as exc:
        label = "invalid files" if isinstance(exc, SpecErrors) else "error"
        err.print(f"[red]{label}:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
