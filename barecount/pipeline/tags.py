"""Run tags BareCount sets and reads: what launched a run, kept as evidence by the runs themselves."""

from collections.abc import Mapping

TAG_PREFIX = "barecount/"
APPROVAL_TAG = f"{TAG_PREFIX}approval"
"""`<contract> <version>`: the approved contract version a sensor's run resumes blocked periods for."""
CONTRACT_VERSION_TAG = f"{TAG_PREFIX}contract_version"
APPROVED_BY_TAG = f"{TAG_PREFIX}approved_by"
ORG_TAG = f"{TAG_PREFIX}org"
"""The organisation a run works for: set by its job, so runs launched from the UI, a schedule, a sensor, the CLI
or the service carry it; Dagster's run queue limits concurrent runs per value of it."""


def barecount_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """A run's BareCount tags, without the prefix (`approval`, `contract_version`, …)."""
    return {name.removeprefix(TAG_PREFIX): value for name, value in tags.items() if name.startswith(TAG_PREFIX)}


PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
"""Dagster's tags for a single-run range of partitions (a backfill of many periods in one run)."""

BACKFILL_TAG = f"{TAG_PREFIX}backfill"
"""The id of the governed backfill a run belongs to (`barecount backfill`)."""
REASON_TAG = f"{TAG_PREFIX}reason"
"""Why a backfill was asked for; set it when launching one from the UI, as `barecount backfill --reason` does."""
REQUESTED_BY_TAG = f"{TAG_PREFIX}requested_by"

FORCE_TAG = f"{TAG_PREFIX}force"
"""`true`: do the work even where the same work was done before (`--force`)."""
