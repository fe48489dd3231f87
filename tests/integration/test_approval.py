"""A data owner approves or rejects a proposed contract version from the CLI; the decision is on the record."""

from __future__ import annotations

import json
import re
from pathlib import Path

from barecount.config.project import ProjectPaths
from tests.cli import barecount


def _propose(folder: Path, version: str, effective_from: str) -> Path:
    text = (folder / "1.0.0.yaml").read_text()
    text = re.sub(r"(?m)^status: \w+$", "status: proposed", text.replace("version: 1.0.0", f"version: {version}"))
    proposal = folder / f"{version}.yaml"
    proposal.write_text(text.replace("value: FY1991-P01", f"value: {effective_from}"))
    return proposal


def _statuses() -> dict[str, str]:
    listed = json.loads(barecount("contracts", "list", "--json").stdout)
    return {c["version"]: c["status"] for c in listed if c["id"] == "erp.orders"}


def test_an_owner_approves_a_proposal_and_the_decision_is_on_the_record(project_copy: ProjectPaths) -> None:
    folder = project_copy.contracts / "erp" / "orders"
    proposal = _propose(folder, "1.1.0", "FY1995-P03")
    untouched = proposal.read_text()

    stranger = barecount("contracts", "approve", "erp.orders", "1.1.0", "--by", "eve")
    said = " ".join(stranger.stderr.split())
    assert stranger.returncode == 1 and "eve may not decide on erp.orders" in said and "dana.owner" in said
    assert proposal.read_text() == untouched
    assert barecount("contracts", "approve", "erp.orders", "9.9.9", "--by", "dana.owner").returncode == 2
    assert barecount("contracts", "approve", "erp.nope", "1.1.0", "--by", "dana.owner").returncode == 2

    approved = barecount(
        "contracts", "approve", "erp.orders", "1.1.0", "--by", "dana.owner", "--note", "new priority codes"
    )
    assert approved.returncode == 0, approved.stderr
    assert "in force from FY1995-P03; 1.0.0 deprecated" in " ".join(approved.stdout.split())
    assert _statuses() == {"1.0.0": "deprecated", "1.1.0": "active"}
    assert barecount("check").returncode == 0  # only statuses changed: both versions' content is as it was
    recorded = barecount("query", "SELECT * EXCLUDE (decided_at) FROM evidence.contract_approvals", "--json")
    assert json.loads(recorded.stdout) == [
        {
            "contract": "erp.orders",
            "version": "1.1.0",
            "outcome": "approved",
            "decided_by": "dana.owner",
            "note": "new priority codes",
            "effective_from": "FY1995-P03",
            "replaced_version": "1.0.0",
        }
    ]
    (entry,) = [e for e in json.loads(barecount("ledger", "show", "--json").stdout) if e["kind"] == "approval"]
    assert (entry["asset"], entry["partition"], entry["facts"]["decided_by"]) == (
        "raw/orders",
        "FY1995-P03",
        "dana.owner",
    )
    assert barecount("ledger", "verify").returncode == 0

    again = barecount("contracts", "approve", "erp.orders", "1.1.0", "--by", "dana.owner")
    assert again.returncode == 1 and "is active, not proposed" in " ".join(again.stderr.split())

    # a proposal that cannot come into force (a version is already in force from that period) is refused whole
    clash = _propose(folder, "1.2.0", "FY1995-P03")
    before = clash.read_text()
    refused = barecount("contracts", "approve", "erp.orders", "1.2.0", "--by", "sam.steward")
    assert refused.returncode == 1 and "cannot come into force" in " ".join(refused.stderr.split())
    assert clash.read_text() == before and _statuses()["1.1.0"] == "active"

    rejected = barecount("contracts", "reject", "erp.orders", "1.2.0", "--by", "sam.steward", "--note", "duplicate")
    assert rejected.returncode == 0, rejected.stderr
    assert _statuses() == {"1.0.0": "deprecated", "1.1.0": "active", "1.2.0": "rejected"}
    outcomes = barecount("query", "SELECT version, outcome FROM evidence.contract_approvals ORDER BY 1", "--json")
    assert json.loads(outcomes.stdout) == [
        {"version": "1.1.0", "outcome": "approved"},
        {"version": "1.2.0", "outcome": "rejected"},
    ]
    assert [e["kind"] for e in json.loads(barecount("ledger", "show", "--json").stdout)] == ["approval", "rejection"]
