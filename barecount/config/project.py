"""Where the project's folders are. The only module (with `profiles.py`) that reads the environment."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from barecount.errors import UsageError

PROJECT_ROOT_ENV = "BARECOUNT_PROJECT_ROOT"
PROFILE_ENV = "BARECOUNT_PROFILE"
ORG_ENV = "BARECOUNT_ORG"
WAREHOUSE_ENV = "BARECOUNT_WAREHOUSE"
DAGSTER_HOME_ENV = "DAGSTER_HOME"
PROJECT_FILES = ("assets", "contracts", "kpis", "pipelines", "resources", "workspace.yaml")
"""What makes a project: its declarative files (data and DAGSTER_HOME are not part of it)."""


@dataclass(frozen=True)
class ProjectPaths:
    """The folders of one BareCount project, found from `root`."""

    root: Path

    @classmethod
    def discover(cls, start: Path | None = None) -> ProjectPaths:
        """`BARECOUNT_PROJECT_ROOT`, else the nearest parent of `start` (the cwd) holding `workspace.yaml`."""
        configured = os.environ.get(PROJECT_ROOT_ENV)
        if configured:
            root = Path(configured).resolve()
            if not (root / "workspace.yaml").is_file():
                raise UsageError(f"{PROJECT_ROOT_ENV}={configured}: no workspace.yaml there")
            return cls(root)
        here = (start or Path.cwd()).resolve()
        for candidate in (here, *here.parents):
            if (candidate / "workspace.yaml").is_file():
                return cls(candidate)
        raise UsageError(
            f"no BareCount project found: no workspace.yaml in {here} or its parents "
            f"(run inside the project or set {PROJECT_ROOT_ENV})"
        )

    @property
    def assets(self) -> Path:
        return self.root / "assets"

    @property
    def contracts(self) -> Path:
        return self.root / "contracts"

    @property
    def kpis(self) -> Path:
        return self.root / "kpis"

    @property
    def pipelines(self) -> Path:
        return self.root / "pipelines"

    @property
    def resources(self) -> Path:
        return self.root / "resources"

    @property
    def calendars(self) -> Path:
        return self.resources / "calendars"

    @property
    def profiles(self) -> Path:
        return self.resources / "profiles"

    @property
    def tenants(self) -> Path:
        return self.resources / "tenants"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def copy_to(self, target: Path, sources: Path | None = None) -> ProjectPaths:
        """The project's declarative files copied into `target` (new), its profiles reading `sources` if given:
        the project a benchmark or a test works on without touching this one."""
        for name in PROJECT_FILES:
            if (self.root / name).is_dir():
                shutil.copytree(self.root / name, target / name)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.root / name, target / name)
        copied = ProjectPaths(target)
        for profile in sorted(copied.profiles.glob("*.yaml")) if sources is not None else []:
            data = yaml.safe_load(profile.read_text(encoding="utf-8"))
            data["sources_dir"] = str(sources)
            profile.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return copied

    def dagster_home(self) -> Path:
        """`DAGSTER_HOME` when the user set it, else `.dagster/` in the project."""
        configured = os.environ.get(DAGSTER_HOME_ENV)
        return Path(configured) if configured else self.root / ".dagster"

    def relative(self, path: Path) -> str:
        """A path as users see it in messages: relative to the project root when inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)
