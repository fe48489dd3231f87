"""`barecount serve`: the pipeline-run service, an ASGI app (FastAPI) over the service state and the launcher.

Other systems start pipelines over HTTP: `POST /pipelines/run/{org}/{provider}/{domain}/{pipeline}` checks the
key, the subscription and the quotas, creates the run with its reservation in one transaction and launches it;
the run then goes `pending -> validating -> running -> completed | failed`. Errors are RFC 9457 problem details.
A key only ever sees its own organisation: anything of another answers 404, as if it did not exist.
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from barecount.catalog.pipelines import LoadedPipeline, load_pipelines
from barecount.config.profiles import Settings, available_orgs, load_settings
from barecount.config.project import ProjectPaths
from barecount.errors import BareCountError
from barecount.pipeline.periods import resolve_periods
from barecount.service import records
from barecount.service.keys import ApiKey, authenticate
from barecount.service.launcher import Launcher
from barecount.service.numbers import numbers_router
from barecount.service.quotas import OverQuota
from barecount.service.state import ensure_orgs, open_state, run_logs, run_steps, run_transitions

PROBLEM_JSON = "application/problem+json"
PERIOD_KEY = r"^FY\d{4}-P\d{2}$"
API_KEY = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An organisation's key, from `barecount apikeys create`."
)
LOCATIONS = ("body", "query", "path", "header")
"""Where FastAPI says a request's field was; the problem names the field alone."""


class Problem(Exception):
    """An RFC 9457 problem: status, title, detail, and members of its own (e.g. which limit)."""

    def __init__(self, status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers, self.extra = status, title, detail, headers or {}, extra


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        **problem.extra,
    }
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON)


class RunBody(BaseModel):
    """Which fiscal periods to run: one `period`, a range `from`..`to`, or by default the period that ended last
    before `run_date` (default: today, UTC)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    period: str | None = Field(default=None, pattern=PERIOD_KEY, description="One fiscal period, e.g. FY1995-P03.")
    from_: str | None = Field(default=None, alias="from", pattern=PERIOD_KEY, description="First period of a range.")
    to: str | None = Field(default=None, pattern=PERIOD_KEY, description="Last period of a range.")
    run_date: date | None = Field(default=None, description="The data date; picks the period when none is named.")


class Service:
    """What the routes share: the project, its organisations and pipelines, the state and the launcher."""

    def __init__(self, paths: ProjectPaths, state_url: str) -> None:
        self.paths = paths
        self.state_url = state_url
        self.orgs: dict[str, Settings] = {org: load_settings(paths, org=org) for org in available_orgs(paths)}
        self.pipelines: dict[str, LoadedPipeline] = load_pipelines(paths)
        self.engine: Engine = open_state(state_url)
        ensure_orgs(self.engine, list(self.orgs))
        # on DuckDB an organisation's file admits one writer: one run at a time; BigQuery takes its limit
        lanes = {
            org: settings.tenant.subscription.limits.concurrent_runs if settings.on_bigquery else 1
            for org, settings in self.orgs.items()
        }
        self.launcher = Launcher(paths, state_url, self.engine, lanes)

    def pipelines_of(self, org: str) -> list[LoadedPipeline]:
        domains = self.orgs[org].tenant.domains
        return [p for p in self.pipelines.values() if domains is None or p.spec.domain in domains]


def _periods(settings: Settings, body: RunBody) -> list[str]:
    """The run's periods, or a 422 naming the field that is wrong."""
    field = "period" if body.period else "from" if body.from_ else "to" if body.to else "run_date"
    try:
        if body.period or body.from_ or body.to:
            if body.period and (body.from_ or body.to):
                raise Problem(422, "Unprocessable Content", "give period, or from and to, not both", field="period")
            return resolve_periods(settings, body.period, body.from_, body.to)
        day = body.run_date or datetime.now(UTC).date()
        closed = settings.calendar.previous(settings.calendar.which(day).key).key
        return resolve_periods(settings, closed, None, None)
    except BareCountError as exc:
        raise Problem(422, "Unprocessable Content", f"{field}: {exc}", field=field) from None


def _view(engine: Engine, row: sa.Row) -> dict[str, Any]:
    """A run as the status endpoint shows it."""
    return {
        "run_id": row.run_id,
        "org": row.org,
        "pipeline": row.pipeline,
        "pipeline_id": row.pipeline_id,
        "status": row.status,
        "reason": row.reason,
        "periods": row.periods,
        "requested_by": row.requested_by,
        "idempotency_key": row.idempotency_key,
        "created_at": _time(row.created_at),
        "updated_at": _time(row.updated_at),
        "transitions": [_transition(t) for t in records.rows_of(engine, run_transitions, row.run_id)],
        "steps": [_step(s) for s in records.rows_of(engine, run_steps, row.run_id)],
        "held": row.held or {},
        "validation": row.validation,
    }


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _transition(row: sa.Row) -> dict[str, Any]:
    return {"status": row.status, "at": _time(row.at), "note": row.note}


def _step(row: sa.Row) -> dict[str, Any]:
    return {
        "step_id": row.step_id,
        "attempt": row.attempt,
        "status": row.status,
        "dagster_run_id": row.dagster_run_id,
        "rows": row.rows,
        "assets": row.assets,
        "error": row.error,
        "started_at": _time(row.started_at),
        "ended_at": _time(row.ended_at),
    }


def _log_line(row: sa.Row) -> dict[str, Any]:
    return {"at": _time(row.at), "level": row.level, "step_id": row.step_id, "message": row.message}


def _catalog_entry(pipeline: LoadedPipeline) -> dict[str, Any]:
    spec = pipeline.spec
    return {
        "path": pipeline.path,
        "pipeline_id": spec.pipeline_id,
        "name": spec.name,
        "description": spec.description,
        "version": spec.version,
        "schedule": spec.schedule,
        "steps": [
            {
                "step_id": s.step_id,
                "ps_type": s.ps_type,
                "select": s.config.select,
                "depends_on": s.depends_on,
                "timeout_seconds": s.timeout_seconds,
                "retry": s.retry.model_dump(),
            }
            for s in spec.steps
        ],
    }


def create_app(paths: ProjectPaths, state_url: str) -> FastAPI:
    """The service's app for the project at `paths`, its state at `state_url`."""
    service = Service(paths, state_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.launcher.start()
        yield
        service.launcher.stop()

    app = FastAPI(
        title="BareCount pipeline service",
        description="Run governed pipelines per organisation; follow their status, steps and logs; read the "
        "published KPIs and the catalog of datasets.",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(Problem)
    async def _problem(request: Request, problem: Problem) -> JSONResponse:
        return problem_response(request, problem)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p not in LOCATIONS), "reason": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "reason": "malformed request"}
        detail = f"{first['field']}: {first['reason']}" if first["field"] else first["reason"]
        return problem_response(request, Problem(422, "Unprocessable Content", detail, errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(request, Problem(exc.status_code, str(exc.detail), str(exc.detail)))

    def caller(presented: Annotated[str | None, Depends(API_KEY)]) -> ApiKey:
        key = authenticate(service.engine, presented) if presented else None
        if key is None:
            raise Problem(
                401, "Unauthorized", "a valid API key is needed in the X-API-Key header", {"WWW-Authenticate": "ApiKey"}
            )
        return key

    Caller = Annotated[ApiKey, Depends(caller)]

    def own_org(org: str, key: ApiKey) -> Settings:
        """The organisation, if the key is one of its own; 404 otherwise, as for an organisation that is not."""
        if org not in service.orgs or key.org != org:
            raise Problem(404, "Not Found", f"no organisation {org}")
        return service.orgs[org]

    def own_run(org: str, run_id: str, key: ApiKey) -> sa.Row:
        own_org(org, key)
        row = records.run_row(service.engine, org, run_id)
        if row is None:
            raise Problem(404, "Not Found", f"no run {run_id} of {org}")
        return row

    app.include_router(numbers_router(Caller, own_org, Problem))

    @app.get("/pipelines", summary="The pipelines the key's organisation may run")
    def catalog(key: Caller) -> dict[str, Any]:
        return {"org": key.org, "pipelines": [_catalog_entry(p) for p in service.pipelines_of(key.org)]}

    @app.post(
        "/pipelines/run/{org}/{provider}/{domain}/{pipeline}",
        status_code=202,
        summary="Run a pipeline for fiscal periods",
        responses={200: {"description": "The run this Idempotency-Key made before"}},
    )
    def run_pipeline(
        org: str,
        provider: str,
        domain: str,
        pipeline: str,
        body: RunBody,
        key: Caller,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> dict[str, Any]:
        settings = own_org(org, key)
        path = f"{provider}/{domain}/{pipeline}"
        chosen = next((p for p in service.pipelines_of(org) if p.path == path), None)
        if chosen is None:
            raise Problem(404, "Not Found", f"no pipeline {path} for {org}")
        if not key.may_run:
            raise Problem(403, "Forbidden", f"API key {key.key_id} is a viewer: a runner key launches runs")
        subscription = settings.tenant.subscription
        if not subscription.may_run:
            raise Problem(403, "Forbidden", f"{org}'s subscription is {subscription.status}: no runs")
        periods = _periods(settings, body)
        request = body.model_dump(mode="json", by_alias=True, exclude_none=True)
        if idempotency_key is not None:
            first = _claim(org, idempotency_key, records.body_hash(path, request))
            if first is not None:
                response.status_code = 200
                response.headers["Idempotent-Replayed"] = "true"
                return _view(service.engine, records.run_by_id(service.engine, first))
        run = records.NewRun(
            str(uuid.uuid4()), org, path, chosen.spec.pipeline_id, key.key_id, request, periods, idempotency_key
        )
        try:
            records.create_run(service.engine, run, subscription.limits)
        except OverQuota as over:
            if idempotency_key is not None:
                records.give_back_key(service.engine, org, idempotency_key)
            raise Problem(
                429,
                "Too Many Requests",
                f"{org}: {over}",
                {"Retry-After": str(over.retry_after)},
                limit=over.limit,
                allowed=over.allowed,
            ) from None
        except BaseException:
            if idempotency_key is not None:
                records.give_back_key(service.engine, org, idempotency_key)
            raise
        service.launcher.launch(run.run_id, org)
        response.headers["Location"] = f"/pipelines/status/{org}/{run.run_id}"
        return _view(service.engine, records.run_by_id(service.engine, run.run_id))

    def _claim(org: str, idempotency_key: str, digest: str) -> str | None:
        try:
            return records.claim_key(service.engine, org, idempotency_key, digest)
        except records.KeyReused:
            raise Problem(
                422, "Unprocessable Content", "Idempotency-Key was used before with another request body"
            ) from None
        except records.KeyInFlight:
            raise Problem(
                409, "Conflict", "a request with this Idempotency-Key is still being processed", {"Retry-After": "1"}
            ) from None

    @app.get("/pipelines/status/{org}/{run_id}", summary="A run's status, transitions, steps and held periods")
    def status(org: str, run_id: str, key: Caller) -> dict[str, Any]:
        return _view(service.engine, own_run(org, run_id, key))

    @app.get("/pipelines/history/{org}", summary="The organisation's runs, newest first")
    def history(
        org: str,
        key: Caller,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        own_org(org, key)
        total, page = records.history(service.engine, org, limit, offset)
        runs = [
            {
                "run_id": r.run_id,
                "pipeline": r.pipeline,
                "status": r.status,
                "periods": r.periods,
                "created_at": _time(r.created_at),
                "updated_at": _time(r.updated_at),
            }
            for r in page
        ]
        following = offset + limit if offset + limit < total else None
        return {"org": org, "total": total, "limit": limit, "offset": offset, "next_offset": following, "runs": runs}

    @app.get("/pipelines/logs/{org}/{run_id}", summary="A run's log")
    def logs(org: str, run_id: str, key: Caller) -> dict[str, Any]:
        own_run(org, run_id, key)
        return {"run_id": run_id, "lines": [_log_line(r) for r in records.rows_of(service.engine, run_logs, run_id)]}

    @app.get("/pipelines/logs/{org}/{run_id}/steps", summary="A run's steps, one row per attempt")
    def steps(org: str, run_id: str, key: Caller) -> dict[str, Any]:
        own_run(org, run_id, key)
        return {"run_id": run_id, "steps": [_step(r) for r in records.rows_of(service.engine, run_steps, run_id)]}

    @app.get("/pipelines/logs/{org}/{run_id}/transitions", summary="A run's status transitions, in order")
    def transitions(org: str, run_id: str, key: Caller) -> dict[str, Any]:
        own_run(org, run_id, key)
        found = records.rows_of(service.engine, run_transitions, run_id)
        return {"run_id": run_id, "transitions": [_transition(r) for r in found]}

    @app.get("/pipelines/logs/{org}/{run_id}/download", summary="A run's whole log as a text file")
    def download(org: str, run_id: str, key: Caller) -> PlainTextResponse:
        own_run(org, run_id, key)
        lines = records.rows_of(service.engine, run_logs, run_id)
        text = "".join(
            f"{_time(r.at)} {r.level:<7} {('[' + r.step_id + '] ') if r.step_id else ''}{r.message}\n" for r in lines
        )
        return PlainTextResponse(
            text, headers={"Content-Disposition": f'attachment; filename="barecount-run-{run_id}.log"'}
        )

    return app
