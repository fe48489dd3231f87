"""`approve_contract`: the data owner's decision on a proposed contract version, launched from the UI's launchpad.

It does exactly what `barecount contracts approve|reject` does (`barecount.pipeline.approve.decide`),
with the same refusals; a refused decision fails the run with the reason and changes nothing.
"""

import enum
from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from barecount.config.project import ProjectPaths
from barecount.defs.resources import Warehouse
from barecount.errors import BareCountError
from barecount.pipeline.approve import Outcome, decide

APPROVAL_JOB = "approve_contract"


class Verdict(enum.Enum):
    approve = "approve"
    reject = "reject"


OUTCOME: dict[Verdict, Outcome] = {Verdict.approve: "approved", Verdict.reject: "rejected"}


class ContractDecision(dg.Config):
    """What the data owner decides, and why."""

    contract: str = Field(description="Contract id, e.g. erp.orders (see `barecount contracts blocked`).")
    version: str = Field(description="The proposed version, e.g. 2.0.0.")
    decision: Verdict = Field(description="approve: the version comes into force; reject: its periods stay blocked.")
    decided_by: str = Field(description="Who decides: an owner or steward of the contract (username).")
    note: str = Field(default="", description="Why, for the record.")


def build_approval_job(
    paths: ProjectPaths, stream_by_contract: Mapping[str, str], tags: Mapping[str, str]
) -> dg.JobDefinition:
    """The approval as a one-op job with a config form in the launchpad."""

    @dg.op(
        name="decide_on_contract",
        description="Approve or reject a proposed contract version; recorded with who, when and why.",
        out=dg.Out(dg.Nothing),
    )
    def decide_on_contract(
        context: dg.OpExecutionContext, config: ContractDecision, warehouse: dg.ResourceParam[Warehouse]
    ) -> dg.Output[None]:
        try:
            with warehouse.get_connection() as conn:
                made = decide(
                    paths,
                    conn,
                    config.contract,
                    config.version,
                    config.decided_by,
                    config.note,
                    OUTCOME[config.decision],
                    stream_by_contract.get(config.contract),
                )
        except BareCountError as exc:  # refused or unknown: the reason is the run's failure, nothing changed
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        periods = ", ".join(p or "snapshot" for p in made.blocked) or "none"
        context.log.info(
            f"{made.outcome} {made.contract} {made.version} by {made.decided_by}; blocked period(s): {periods}"
        )
        return dg.Output(
            None,
            metadata={
                "contract": made.contract,
                "version": made.version,
                "outcome": made.outcome,
                "decided_by": made.decided_by,
                "note": made.note,
                "effective_from": made.effective_from,
                "replaced_version": made.replaced_version or "",
                "blocked_periods": ", ".join(p or "snapshot" for p in made.blocked) or "none",
            },
        )

    @dg.job(
        name=APPROVAL_JOB,
        description=(
            "A data owner's decision on a proposed contract version (what `barecount contracts approve|reject` "
            "does). Fill in the contract, version, decision and your name in the launchpad. An approval makes the "
            "contract_approval_sensor resume the blocked periods."
        ),
        tags={"barecount/kind": "governance", **tags},
    )
    def approve_contract() -> None:
        decide_on_contract()

    return approve_contract
