"""The FastAPI adapter: OpenMeter's routes over Railyard's rules (``docs/api.md``).

Every decision is made by a pure module; this one reads the request, asks them, and
writes the answer. Order of checks on ingest: key (401), size (413), body (415/400),
sources (403), events (400), rate (429), backpressure (429), broker ack (204 or 503).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import Counter
from starlette.exceptions import HTTPException

from connectors.api import ingest_rules, keys, meter_query, problems
from connectors.api.keystore import KeyFile
from connectors.api.publisher import Backpressure, NotAcknowledged, Publisher
from connectors.api.ratelimit import Buckets, retry_after
from streams.domain.catalog import Catalog
from streams.domain.errors import RailyardError
from streams.domain.validation import Limits
from streams.settings import Settings

REQUESTS = Counter(
    "railyard_api_requests", "API requests answered, by route and status", ["route", "status"]
)
EVENTS = Counter(
    "railyard_api_events",
    "Events in ingest requests, by outcome (acknowledged, invalid, forbidden, throttled,"
    " unacknowledged)",
    ["outcome"],
)
ANONYMOUS = keys.ApiKey("anonymous", "anonymous", "", datetime.min.replace(tzinfo=UTC))


@dataclass
class ApiContext:
    """What the routes need; the clocks are passed in so nothing here reads them itself."""

    settings: Settings
    publisher: Publisher
    key_file: KeyFile
    catalog: Callable[[], Catalog | None]
    query: Callable[[str], list[list[object]]]
    now: Callable[[], datetime]
    monotonic: Callable[[], float] = time.monotonic
    buckets: Buckets = field(init=False)
    catalog_seen: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.buckets = Buckets(self.settings.api_rate, self.settings.api_burst)


def problem_response(problem: problems.Problem, request: Request, route: str) -> Response:
    REQUESTS.labels(route, str(problem.status)).inc()
    return Response(
        json.dumps(problem.to_json(request.url.path)),
        problem.status,
        problem.headers(),
        media_type=problems.MEDIA_TYPE,
    )


def _authenticate(ctx: ApiContext, request: Request) -> keys.ApiKey | problems.Problem:
    stored = ctx.key_file.keys()
    presented = keys.bearer(request.headers.get("authorization"))
    if presented is None:
        host = request.client.host if request.client else None
        if keys.anonymous_allowed(stored, host, ctx.settings.api_anonymous_loopback):
            return ANONYMOUS
        return problems.Problem(401, "unauthorized", "send Authorization: Bearer <API key>")
    found = keys.find(stored, presented)
    if found is None:
        return problems.Problem(401, "unauthorized", "the API key is unknown or revoked")
    return found


async def _read_body(request: Request, limit: int) -> bytes | problems.Problem:
    too_large = problems.Problem(
        413,
        "content-too-large",
        f"the body is larger than {limit} bytes (RAILYARD_API_MAX_BODY_BYTES)",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return too_large
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Railyard ingest and usage API",
        version="1",
        description="OpenMeter-compatible: POST /api/v1/events, GET /api/v1/meters, "
        "GET /api/v1/meters/{meterIdOrSlug}/query (docs/api.md).",
    )

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> Response:
        problem = problems.Problem(exc.status_code, "http-error", str(exc.detail))
        return problem_response(problem, request, "other")

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError) -> Response:
        problem = problems.Problem(400, "invalid-request", str(exc.errors())[:2000])
        return problem_response(problem, request, "other")

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    async def openapi_document() -> Response:
        return Response(json.dumps(app.openapi()), media_type="application/json")

    @app.post("/api/v1/events", status_code=204, response_class=Response)
    async def ingest_events(request: Request) -> Response:
        """Ingest one CloudEvent or a batch; 204 once the broker acknowledged every event."""
        route = "ingest"
        key = _authenticate(ctx, request)
        if isinstance(key, problems.Problem):
            return problem_response(key, request, route)
        body = await _read_body(request, ctx.settings.api_max_body_bytes)
        if isinstance(body, problems.Problem):
            return problem_response(body, request, route)
        objs = ingest_rules.parse_body(request.headers.get("content-type"), body)
        if isinstance(objs, problems.Problem):
            return problem_response(objs, request, route)
        forbidden = ingest_rules.forbidden_sources(objs, key.allowed_sources)
        if forbidden:
            EVENTS.labels("forbidden").inc(len(objs))
            return problem_response(
                problems.forbidden_sources(forbidden, len(objs)), request, route
            )
        catalog = ctx.catalog()
        s = ctx.settings
        limits = Limits(s.max_event_bytes, s.max_event_age, s.max_clock_skew)
        screened = ingest_rules.screen(
            objs, ctx.now(), limits, catalog.meter_index if catalog else None
        )
        if screened.invalid:
            EVENTS.labels("invalid").inc(len(objs))
            return problem_response(
                problems.invalid_events(screened.invalid, len(objs)), request, route
            )
        wait = ctx.buckets.take(key.id, len(screened.events), ctx.monotonic())
        if wait > 0:
            EVENTS.labels("throttled").inc(len(objs))
            problem = problems.Problem(
                429,
                "rate-limited",
                f"this API key may send {s.api_rate:g} events/s (burst {s.api_burst})",
                retry_after_s=retry_after(wait),
            )
            return problem_response(problem, request, route)
        try:
            await ctx.publisher.publish(screened.events)
        except Backpressure as exc:
            EVENTS.labels("throttled").inc(len(objs))
            problem = problems.Problem(429, "backpressure", str(exc), retry_after_s=1)
            return problem_response(problem, request, route)
        except NotAcknowledged as exc:
            EVENTS.labels("unacknowledged").inc(len(objs))
            problem = problems.Problem(
                503,
                "not-acknowledged",
                f"the broker did not acknowledge every event ({exc}); send the request again,"
                " events already in are de-duplicated by (source, id)",
                retry_after_s=1,
            )
            return problem_response(problem, request, route)
        EVENTS.labels("acknowledged").inc(len(objs))
        REQUESTS.labels(route, "204").inc()
        return Response(status_code=204)

    def _meters(request: Request, route: str) -> Catalog | Response:
        key = _authenticate(ctx, request)
        if isinstance(key, problems.Problem):
            return problem_response(key, request, route)
        catalog = ctx.catalog()
        if catalog is None:
            problem = problems.Problem(503, "no-catalog", "no catalog is in force yet")
            return problem_response(problem, request, route)
        ctx.catalog_seen.setdefault(catalog.version, ctx.now())
        return catalog

    @app.get("/api/v1/meters")
    def list_meters(request: Request) -> Response:
        """The meters of the catalog in force, as OpenMeter's ``Meter`` objects."""
        catalog = _meters(request, "meters")
        if isinstance(catalog, Response):
            return catalog
        seen = ctx.catalog_seen[catalog.version]
        body = [meter_query.meter_json(m, seen) for m in catalog.meters]
        REQUESTS.labels("meters", "200").inc()
        return Response(json.dumps(body), media_type="application/json")

    @app.get("/api/v1/meters/{meterIdOrSlug}/query")
    def query_meter(request: Request, meterIdOrSlug: str) -> Response:  # noqa: N803
        """Exact usage of a meter per customer, window and group (``usage_quantity``)."""
        route = "query"
        catalog = _meters(request, route)
        if isinstance(catalog, Response):
            return catalog
        meter = next((m for m in catalog.meters if m.key == meterIdOrSlug), None)
        if meter is None:
            problem = problems.Problem(404, "not-found", f"no meter {meterIdOrSlug!r:.80}")
            return problem_response(problem, request, route)
        params = {k: request.query_params.getlist(k) for k in request.query_params}
        parsed = meter_query.parse_query(meter, params, ctx.settings.window_size, ctx.now())
        if isinstance(parsed, problems.Problem):
            return problem_response(parsed, request, route)
        try:
            rows = ctx.query(meter_query.to_sql(parsed))
        except RailyardError as exc:
            problem = problems.Problem(503, "store-unavailable", str(exc), retry_after_s=5)
            return problem_response(problem, request, route)
        body = meter_query.result_json(parsed, meter_query.fold(parsed, rows))
        REQUESTS.labels(route, "200").inc()
        return Response(body, media_type="application/json")

    return app
