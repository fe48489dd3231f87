"""The organisations of a deployment checked together: every tenant file, and `workspace.yaml` giving each one
its code location (`barecount check` reports every problem at once, each at its file, line and field)."""

from __future__ import annotations

from barecount.config.profiles import available_orgs, load_tenant
from barecount.config.project import ProjectPaths
from barecount.errors import SpecError, SpecErrors
from barecount.yaml_source import load_yaml

DEFINITIONS_MODULE = "barecount.defs.definitions"
"""The module whose attribute `<org>` is that organisation's definitions."""


def _tenant_problems(paths: ProjectPaths, org: str, domains: set[str]) -> list[SpecError]:
    try:
        tenant = load_tenant(paths, org)
    except SpecErrors as exc:
        return list(exc.errors)
    shown, problems = paths.relative(paths.tenants / f"{org}.yaml"), []
    _, positions = load_yaml(paths.tenants / f"{org}.yaml", shown)
    if not (paths.calendars / f"{tenant.calendar}.yaml").is_file():
        line, column = positions.get(("calendar",), (0, 0))
        known = ", ".join(sorted(p.stem for p in paths.calendars.glob("*.yaml")))
        problems.append(SpecError(shown, line, column, "calendar", f"no calendar '{tenant.calendar}' ({known})"))
    for index, domain in enumerate(tenant.domains or []):
        if domain not in domains:
            line, column = positions.get(("domains", index), (0, 0))
            known = ", ".join(sorted(domains))
            reason = f"no pipelines of domain '{domain}' in pipelines/*/ ({known or 'none'})"
            problems.append(SpecError(shown, line, column, f"domains[{index}]", reason))
    return problems


def _workspace_problems(paths: ProjectPaths, orgs: list[str]) -> list[SpecError]:
    """Each organisation needs a code location named after it, loading its attribute of the definitions module."""
    shown = "workspace.yaml"
    data, positions = load_yaml(paths.root / shown, shown)
    entries = (data or {}).get("load_from") or []
    problems, located = [], set()
    for index, entry in enumerate(entries):
        module = (entry or {}).get("python_module") or {}
        if not isinstance(module, dict) or module.get("module_name") != DEFINITIONS_MODULE:
            continue
        attribute, name = module.get("attribute"), module.get("location_name")
        line, column = positions.get(("load_from", index), (0, 0))
        where = f"load_from[{index}].python_module"
        if attribute not in orgs:
            reason = f"attribute '{attribute}' is not an organisation (resources/tenants/: {', '.join(orgs)})"
            problems.append(SpecError(shown, line, column, f"{where}.attribute", reason))
        elif name != attribute:
            reason = f"'{name}' should be the organisation's slug, '{attribute}'"
            problems.append(SpecError(shown, line, column, f"{where}.location_name", reason))
        located.add(attribute)
    for org in orgs:
        if org not in located:
            reason = f"no code location for organisation '{org}' (attribute: {org}, location_name: {org})"
            problems.append(SpecError(shown, 0, 0, "load_from", reason))
    return problems


def check_orgs(paths: ProjectPaths) -> list[str]:
    """Every organisation's tenant file and code location; `SpecErrors` with all the problems, else the slugs."""
    orgs = available_orgs(paths)
    pipelines = paths.pipelines
    domains = {d.name for d in pipelines.glob("*/*") if d.is_dir()} if pipelines.is_dir() else set()
    problems = [p for org in orgs for p in _tenant_problems(paths, org, domains)]
    problems += _workspace_problems(paths, orgs)
    if problems:
        raise SpecErrors(problems)
    return orgs
