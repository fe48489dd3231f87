"""`barecount contracts …`: the data contracts, their versions and the differences between them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths
from barecount.errors import UsageError

if TYPE_CHECKING:
    from barecount.contracts import Contract, ContractRegistry
    from barecount.evidence import holds
    from barecount.pipeline.approve import Outcome

app = typer.Typer(
    help="Data contracts (ODCS v3): list, show, diff, the periods blocked by drift, and approve or reject a proposal.",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _registry() -> ContractRegistry:
    from barecount.contracts import ContractRegistry

    return ContractRegistry.load(ProjectPaths.discover())


def _rules(contract: Contract) -> dict[str, list[str]]:
    rules: dict[str, list[str]] = {}
    for c in contract.columns:
        found = [label for label, on in (("required", c.required), ("unique", c.unique)) if on]
        if c.primary_key_position:
            found.append(f"primary key #{c.primary_key_position}")
        if c.valid_values:
            found.append("one of " + ", ".join(c.valid_values))
        if c.minimum is not None or c.maximum is not None:
            found.append(
                f"between {c.minimum if c.minimum is not None else '-inf'} and "
                f"{c.maximum if c.maximum is not None else 'inf'}"
            )
        if c.pattern:
            found.append(f"matches {c.pattern}")
        if c.references:
            found.append(f"references {c.references}")
        if c.pii:
            found.append("PII")
        rules[c.name] = found
    return rules


def _summary(contract: Contract) -> dict[str, object]:
    return {
        "id": contract.id,
        "version": contract.version,
        "status": contract.status,
        "effective_from": contract.effective_from,
        "file": contract.file,
        "owners": list(contract.owners),
        "columns": len(contract.columns),
    }


@app.command("list")
def list_contracts(as_json: JsonOption = False) -> None:
    """Every contract version with its status and the period it applies from."""
    registry = _registry()
    rows = [_summary(c) for cid in registry.ids() for c in registry.versions(cid)]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "version", "status", "effective from", "columns", "owners", title="Data contracts")
    for row in rows:
        table.add_row(
            *(
                str(row[k]) if k != "owners" else ", ".join(row[k])
                for k in ("id", "version", "status", "effective_from", "columns", "owners", "file")  # type: ignore[attr-defined]
            )
        )
    out.print(table)


@app.command("show")
def show(
    contract_id: Annotated[str, typer.Argument(metavar="ID", help="Contract id, e.g. erp.orders.")],
    version: Annotated[str | None, typer.Option("--version", help="Version (default: the newest).")] = None,
    as_json: JsonOption = False,
) -> None:
    """One contract version: its columns, source names, types and rules."""
    registry = _registry()
    contract = registry.version(contract_id, version) if version else registry.versions(contract_id)[-1]
    rules = _rules(contract)
    if as_json:
        columns = [
            {"name": c.name, "source_name": c.source_name, "type": c.physical_type, "rules": rules[c.name]}
            for c in contract.columns
        ]
        print_json({**_summary(contract), "columns": columns})
        return
    table = Table(
        "column",
        "source column",
        "type",
        "rules",
        title=f"{contract.id} {contract.version} ({contract.status}, from {contract.effective_from})",
    )
    for c in contract.columns:
        table.add_row(c.name, c.source_name, c.physical_type, "; ".join(rules[c.name]))
    out.print(table)


@app.command("diff")
def diff(
    contract_id: Annotated[str, typer.Argument(metavar="ID", help="Contract id, e.g. erp.orders.")],
    versions: Annotated[
        list[str] | None, typer.Argument(metavar="[V1 V2]", help="Two versions (default: the newest two).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """What changed between two versions of a contract, and whether it breaks consumers (readers of the Raw
    table could not use the new version as the old: a major version). Whether an extract breaks the contract in
    force is drift: `contracts blocked`."""
    from barecount.contracts.diff import diff_contracts

    registry = _registry()
    if versions and len(versions) != 2:
        raise UsageError("give two versions to compare, or none for the newest two")
    if versions:
        before, after = (registry.version(contract_id, v) for v in versions)
    else:
        known = registry.versions(contract_id)
        if len(known) < 2:
            raise UsageError(f"contract {contract_id} has one version ({known[0].version}): nothing to compare")
        before, after = known[-2], known[-1]
    changes = diff_contracts(before, after)
    if as_json:
        print_json(
            {
                "id": contract_id,
                "from": before.version,
                "to": after.version,
                "breaking": any(c.breaking for c in changes),
                "changes": [c.as_dict() for c in changes],
            }
        )
        return
    table = Table(
        "column",
        "change",
        "before",
        "after",
        "breaks consumers",
        title=f"{contract_id}: {before.version} -> {after.version}",
    )
    for change in changes:
        table.add_row(
            change.column,
            change.change,
            change.before or "",
            change.after or "",
            "[red]yes[/]" if change.breaking else "no",
        )
    if not changes:
        out.print(f"{contract_id}: {before.version} and {after.version} have the same columns")
        return
    out.print(table)
    breaking = sum(c.breaking for c in changes)
    out.print(f"{breaking} of {len(changes)} change(s) break consumers." if breaking else "No change breaks consumers.")


def blocked_table(blocks: list[holds.BlockedPartition], title: str) -> Table:
    """Blocked periods with the drift that blocked them and the proposal that would accept it."""
    table = Table("contract", "period", "version in force", "drift", "proposal", "blocked by run", title=title)
    for b in blocks:
        table.add_row(
            b.contract,
            b.fiscal_period or "snapshot",
            b.contract_version,
            b.describe(),
            b.proposal,
            b.run_id[:8],
        )
    return table


@app.command("blocked")
def blocked(as_json: JsonOption = False) -> None:
    """Periods blocked by schema drift (their extract breaks the contract in force), waiting for a data owner
    to approve the proposed contract version."""
    from barecount.config.profiles import load_settings
    from barecount.evidence import holds
    from barecount.warehouse.connection import warehouse_file

    settings = load_settings(ProjectPaths.discover())
    found: list[holds.BlockedPartition] = []
    warehouse = warehouse_file(settings)
    if warehouse.exists():
        with warehouse.get_connection(read_only=True) as conn:
            found = holds.open_blocks(conn)
    if as_json:
        print_json([b.as_dict() for b in found])
        return
    out.print(blocked_table(found, "Blocked by schema drift") if found else "No period is blocked.")


ByOption = Annotated[
    str, typer.Option("--by", metavar="NAME", help="Who decides: an owner or steward of the contract (username).")
]
NoteOption = Annotated[str, typer.Option("--note", metavar="TEXT", help="Why, for the record.")]
IdArgument = Annotated[str, typer.Argument(metavar="ID", help="Contract id, e.g. erp.orders.")]
VersionArgument = Annotated[str, typer.Argument(metavar="VERSION", help="The proposed version, e.g. 2.0.0.")]


def _decide(contract_id: str, version: str, by: str, note: str, outcome: Outcome) -> None:
    from barecount.catalog.loader import load_project_specs
    from barecount.config.profiles import load_settings
    from barecount.contracts import ContractRegistry
    from barecount.contracts.files import is_drafted
    from barecount.pipeline.approve import decide
    from barecount.warehouse.connection import warehouse_file

    settings = load_settings(ProjectPaths.discover())
    specs = load_project_specs(settings.paths)
    stream = next((s.asset_ref for s in specs.streams if s.spec.contract == contract_id), None)
    with warehouse_file(settings).get_connection() as conn:
        made = decide(settings.paths, conn, contract_id, version, by, note, outcome, stream)
    periods = ", ".join(p or "snapshot" for p in made.blocked) or "none"
    if outcome == "approved":
        replaced = f"; {made.replaced_version} deprecated, still in force before it" if made.replaced_version else ""
        out.print(
            f"Approved {contract_id} {version} by {by}: in force from {made.effective_from}{replaced}. "
            f"Blocked period(s) it lets land: {periods} (the next run builds them)."
        )
    else:
        out.print(f"Rejected {contract_id} {version} by {by}. Blocked period(s) that stay blocked: {periods}.")
    registry = ContractRegistry.load(settings.paths)
    changed = [registry.version(contract_id, v) for v in (version, made.replaced_version) if v]
    drafted = is_drafted(settings.paths.root / changed[0].file)
    out.print(
        "Changed in the project: "
        + ", ".join(f"{c.file} (status: {c.status})" for c in changed)
        + (". `barecount reset` takes contracts back to the versions the project shipped." if drafted else ".")
    )


@app.command("approve")
def approve(contract_id: IdArgument, version: VersionArgument, by: ByOption, note: NoteOption = "") -> None:
    """Bring a proposed contract version into force from the period it was proposed for; recorded with who,
    when and why. Refused (exit 1) for a version that is not proposed, that would not validate, or an approver
    who is not an owner or steward of the contract."""
    _decide(contract_id, version, by, note, "approved")


@app.command("reject")
def reject(contract_id: IdArgument, version: VersionArgument, by: ByOption, note: NoteOption = "") -> None:
    """Reject a proposed contract version: it never comes into force and the periods it would have let land stay
    blocked; recorded with who, when and why."""
    _decide(contract_id, version, by, note, "rejected")
