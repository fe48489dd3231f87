"""The service's read side for applications: the published KPIs (`/kpis`) and the dataset catalog (`/catalog`).

Viewer keys suffice, and a key reads only its own organisation. Every answer carries a strong ETag (the SHA-256
of its body), so a client that sends it back in `If-None-Match` gets 304 and no body while nothing changed.
"""

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from barecount.catalog.loader import load_project_specs
from barecount.config.profiles import Settings
from barecount.consume.activation import kpi_catalog, period_evidence, published_values
from barecount.consume.catalog import build_catalog
from barecount.contracts import ContractRegistry
from barecount.errors import UsageError, WarehouseBusyError
from barecount.pipeline.periods import resolve_periods
from barecount.service.keys import ApiKey
from barecount.specs.kpi import KpiSpec
from barecount.warehouse.connection import Connection, WarehouseFile, warehouse_file

READ_WAIT_SECONDS = 10.0
"""How long a read waits for a DuckDB file a run is writing before it answers 503 with Retry-After."""


def _etagged(request_etag: str | None, body: dict[str, Any], response: Response) -> Response | dict[str, Any]:
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    etag = f'"{hashlib.sha256(payload).hexdigest()}"'
    if request_etag is not None and etag in {t.strip() for t in request_etag.split(",")}:
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return body


def numbers_router(
    caller: Any,
    own_org: Callable[[str, ApiKey], Settings],
    problem: Callable[..., Exception],
) -> APIRouter:
    """The routes, given the service's key dependency, its check of a key's organisation and how it refuses
    (RFC 9457 problems)."""
    router = APIRouter()

    @contextmanager
    def reading(settings: Settings) -> Iterator[Connection | None]:
        """The organisation's warehouse, read-only; None before its first run."""
        warehouse = warehouse_file(settings)
        if isinstance(warehouse, WarehouseFile):
            warehouse = replace(warehouse, wait_timeout_seconds=READ_WAIT_SECONDS)
        if not warehouse.exists():
            yield None
            return
        try:
            with warehouse.get_connection(read_only=True) as conn:
                yield conn
        except WarehouseBusyError:
            raise problem(
                503, "Service Unavailable", f"{settings.tenant.slug}'s warehouse is being written by a run",
                {"Retry-After": "5"},
            ) from None  # fmt: skip

    def kpi_spec(settings: Settings, kpi: str) -> KpiSpec:
        found = load_project_specs(settings.paths).published_kpis().get(kpi)
        if found is None:
            raise problem(404, "Not Found", f"no published KPI {kpi} of {settings.tenant.slug}")
        return found

    @router.get("/kpis/{org}", summary="The organisation's published KPIs, with their versions and owners")
    def kpis(org: str, key: caller, response: Response, if_none_match: Annotated[str | None, Header()] = None) -> Any:
        settings = own_org(org, key)
        return _etagged(if_none_match, {"org": org, "kpis": kpi_catalog(load_project_specs(settings.paths))}, response)

    @router.get("/kpis/{org}/{kpi}", summary="A KPI's published values per period, with verdicts and ledger hashes")
    def kpi_values(
        org: str,
        kpi: str,
        key: caller,
        response: Response,
        first: Annotated[str | None, Query(alias="from", description="First period (default: every one).")] = None,
        last: Annotated[str | None, Query(alias="to", description="Last period.")] = None,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Any:
        settings = own_org(org, key)
        spec = kpi_spec(settings, kpi)
        try:
            periods = resolve_periods(settings, None, first, last) if (first or last) else None
        except UsageError as exc:
            raise problem(422, "Unprocessable Content", str(exc), field="from" if first else "to") from None
        with reading(settings) as conn:
            body = (
                {"org": org, "rows": [], "periods": {}} if conn is None else published_values(conn, org, spec, periods)
            )
        return _etagged(if_none_match, {"org": org, **body}, response)

    @router.get("/kpis/{org}/{kpi}/{period}/evidence", summary="A published period's trace to its source files")
    def evidence(
        org: str,
        kpi: str,
        period: str,
        key: caller,
        response: Response,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Any:
        settings = own_org(org, key)
        spec = kpi_spec(settings, kpi)
        with reading(settings) as conn:
            try:
                if conn is None:
                    raise UsageError(f"{kpi} has no published {period}")
                body = period_evidence(conn, spec, period)
            except UsageError as exc:
                raise problem(404, "Not Found", str(exc)) from None
        return _etagged(if_none_match, {"org": org, **body}, response)

    @router.get("/catalog/{org}", summary="Every dataset of the organisation: layer, owner, columns, versions")
    def catalog(
        org: str, key: caller, response: Response, if_none_match: Annotated[str | None, Header()] = None
    ) -> Any:
        settings = own_org(org, key)
        registry = ContractRegistry.load(settings.paths)
        with reading(settings) as conn:
            datasets = build_catalog(conn, settings, load_project_specs(settings.paths), registry)
        body = {"org": org, "datasets": [d.as_dict() for d in datasets]}
        return _etagged(if_none_match, body, response)

    return router
