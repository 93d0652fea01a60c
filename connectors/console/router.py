"""The console's routes: thin glue from a request to queries, a view model and a page.

Every page reads ClickHouse through ``connectors.clickhouse.analyst.query`` (the running
sink when it owns the embedded store) on the request's worker thread; the modules beside
this one build the SQL, turn rows into view models and render them, all pure.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from connectors.clickhouse.analyst import catalog_in_force, query, stored_catalog
from connectors.clickhouse.explain import explain_lines, stored_invoice
from connectors.console import catalog_view, customers, invoices, overview, whatif
from connectors.console.auth import (
    COOKIE,
    SESSION,
    Keys,
    KeyVerifier,
    operator,
    portal_customer,
    session_cookie,
)
from connectors.console.html import e, page
from streams.domain.catalog import Catalog
from streams.domain.catalog.parse import parse_catalog
from streams.domain.errors import StoreError
from streams.domain.rating.periods import period_of_month
from streams.domain.rating.screening import ParsedLine
from streams.settings import Settings

Clock = Callable[[], datetime]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def console_router(
    settings: Settings,
    verify_key: KeyVerifier,
    clock: Clock = _wall_clock,
    prefix: str = "/console",
) -> APIRouter:
    """The console under ``prefix``: operator pages behind ``verify_key`` (a Bearer API
    key, or the login form's session cookie), customer portal pages behind signed links."""
    keys = Keys.of(settings.console_secret.get_secret_value())
    router = APIRouter(prefix=prefix, include_in_schema=False)  # pages, not the API's schema
    nav = [
        (f"{prefix}/", "Overview"),
        (f"{prefix}/customers", "Customers"),
        (f"{prefix}/invoices", "Invoices"),
        (f"{prefix}/catalog", "Catalog"),
        (f"{prefix}/what-if", "What-if"),
        (f"{prefix}/logout", "Log out"),
    ]

    def rows(sql: str) -> list[list[Any]]:
        return query(settings, sql, open_store=False).rows  # the sink owns the store

    def in_force() -> Catalog:
        found = catalog_in_force(settings, open_store=False)
        if found is None:
            raise StoreError("no catalog in the store yet")
        return found

    def html(
        title: str, body: str, status: int = 200, menu: Sequence[tuple[str, str]] = nav
    ) -> HTMLResponse:
        return HTMLResponse(page(title, body, menu), status_code=status)

    def allowed(request: Request) -> bool:
        return operator(
            keys,
            verify_key,
            request.headers.get("authorization"),
            request.cookies.get(COOKIE),
            clock(),
        )

    def refused(request: Request) -> HTMLResponse:
        target = quote(request.url.path)
        body = (
            f'<p>Operator pages need an API key.</p><p><a href="{prefix}/login?next='
            f'{e(target)}">Log in</a> or send <code>Authorization: Bearer &lt;key&gt;'
            "</code>.</p>"
        )
        return html("Log in required", body, 401, ())

    def guarded(
        build: Callable[[], HTMLResponse],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not allowed(request):
                return refused(request)
            try:
                return await run_in_threadpool(build)
            except StoreError as exc:
                return html("Store unavailable", f"<p>{e(exc)}</p>", 503)

        return endpoint

    @router.get("/", response_class=HTMLResponse)
    async def overview_page(request: Request) -> Response:
        def build() -> HTMLResponse:
            months = overview.months(clock().date())
            model = overview.overview(
                months,
                rows(overview.revenue_sql(months)),
                rows(overview.DEAD_LETTERS_SQL),
                rows(overview.EVENTS_PER_MINUTE_SQL),
                rows(overview.FRESHNESS_SQL),
                rows(overview.PARKED_SQL),
            )
            return html("Overview", overview.render(model, f"{prefix}/invoices"))

        return await guarded(build)(request)

    @router.get("/customers", response_class=HTMLResponse)
    async def customers_page(request: Request, q: str = "") -> Response:
        def build() -> HTMLResponse:
            items = customers.customer_rows(in_force(), rows(customers.INVOICED_SQL), q)
            return html("Customers", customers.render_list(items, q, f"{prefix}/customers"))

        return await guarded(build)(request)

    def customer_body(
        key: str, window: str, href: str, invoice_href: str, full: bool, query: str = ""
    ) -> str:
        catalog = in_force()
        window = window if window in customers.WINDOWS else "30d"
        newest = rows(customers.latest_usage_sql(key))
        text = str(newest[0][0]) if newest else ""
        use = (
            customers.usage(
                window, rows(customers.usage_sql(key, window, date.fromisoformat(text)))
            )
            if text and text > "1970"
            else customers.Usage(window, ())
        )
        credit_rows = rows(customers.credits_sql(key))
        spend = customers.spend(catalog, key, clock(), rows(customers.spend_sql(key)), credit_rows)
        items = invoices.rows(rows(invoices.list_sql(invoices.Filters(customer=key))))
        parts = [
            "<h2>Usage per meter</h2>",
            customers.window_links(use, href, query),
            customers.usage_charts(use),
            "<h2>Running spend</h2>",
            customers.render_spend(spend),
            customers.render_credits(credit_rows),
            "<h2>Invoices</h2>",
            invoices.render_list(
                items, invoices.Filters(), invoice_href, (), filters=False, query=query
            ),
        ]
        if full:
            parts.append(customers.render_profile(catalog, key))
        return "".join(parts)

    @router.get("/customers/{key}", response_class=HTMLResponse)
    async def customer_page(request: Request, key: str, window: str = "30d") -> Response:
        def build() -> HTMLResponse:
            body = customer_body(
                key, window, f"{prefix}/customers/{key}", f"{prefix}/invoices", True
            )
            return html(f"Customer {key}", body)

        return await guarded(build)(request)

    @router.get("/invoices", response_class=HTMLResponse)
    async def invoices_page(
        request: Request, period: str = "", rail: str = "", status: str = ""
    ) -> Response:
        def build() -> HTMLResponse:
            f = invoices.Filters(period, rail, status)
            items = invoices.rows(rows(invoices.list_sql(f)))
            rails = [str(r[0]) for r in rows("SELECT DISTINCT rail FROM invoices ORDER BY rail")]
            return html("Invoices", invoices.render_list(items, f, f"{prefix}/invoices", rails))

        return await guarded(build)(request)

    @router.get("/invoices/{invoice_id}", response_class=HTMLResponse)
    async def invoice_page(request: Request, invoice_id: str) -> Response:
        def build() -> HTMLResponse:
            stored = stored_invoice(settings, invoice_id)
            if stored is None:
                return html("No such invoice", f"<p>{e(invoice_id)}</p>", 404)
            catalog = stored_catalog(settings, stored.catalog_version)
            # Without its catalog version in the store, the lines show unexplained.
            explained = None if catalog is None else explain_lines(settings, stored, catalog)
            body = invoices.render_invoice(stored, explained, rows(invoices.history_sql(stored.id)))
            return html(f"Invoice {stored.number}", body)

        return await guarded(build)(request)

    @router.get("/catalog", response_class=HTMLResponse)
    async def catalog_page(request: Request, a: str = "", b: str = "") -> Response:
        def build() -> HTMLResponse:
            versions = rows(catalog_view.VERSIONS_SQL)
            names = [str(v[0]) for v in versions]
            old = a or (names[-2] if len(names) > 1 else names[0] if names else "")
            new = b or (names[-1] if names else "")
            body = catalog_view.render_versions(versions, old, new)
            docs = {v: rows(catalog_view.document_sql(v)) for v in {old, new} if v}
            if old in docs and new in docs and docs[old] and docs[new]:
                changes, text = catalog_view.diff(
                    json.loads(docs[old][0][0]), json.loads(docs[new][0][0]), (old, new)
                )
                body += catalog_view.render_diff(changes, text)
            return html("Catalog", body)

        return await guarded(build)(request)

    kept = whatif.Kept()

    def stored_events() -> tuple[whatif.Fingerprint, tuple[ParsedLine, ...]]:
        """The stored events read once for both catalogs, and kept while the store's
        fingerprint (read first, so a later insert only moves it on) stays put."""
        fingerprint = tuple(rows(whatif.FINGERPRINT_SQL)[0])

        def read() -> tuple[ParsedLine, ...]:
            columns = whatif.stored_rows(rows(whatif.EVENTS_SQL))
            return whatif.parsed_events(columns, settings.max_message_bytes)

        return fingerprint, kept.events(fingerprint, read)

    def priced(
        catalog: Catalog,
        period: str,
        fingerprint: whatif.Fingerprint,
        lines: tuple[ParsedLine, ...],
    ) -> whatif.Totals:
        key = (catalog.version, period, fingerprint)
        return kept.totals(key, lambda: whatif.totals(catalog, lines, period, settings))

    def warm(period: str) -> None:
        """While the operator fills the form in: read the stored events and price the
        proposed period under the catalog in force, so only the candidate is left."""
        try:
            fingerprint, lines = stored_events()
            if period:
                priced(in_force(), period, fingerprint, lines)
        except StoreError:
            pass  # the comparison itself will say so

    @router.get("/what-if", response_class=HTMLResponse)
    async def what_if_form(request: Request) -> Response:
        def build() -> HTMLResponse:
            try:
                found = rows(whatif.LAST_PERIOD_SQL)
            except StoreError:  # no store yet: the form still works, with no proposal
                found = []
            period = str(found[0][0]) if found else ""
            response = html("What-if", whatif.render_form("", period))
            response.background = BackgroundTask(warm, period)
            return response

        return await guarded(build)(request)

    @router.post("/what-if", response_class=HTMLResponse)
    async def what_if(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        candidate = form.get("candidate", [""])[0]
        period = form.get("period", [""])[0].strip()

        def build() -> HTMLResponse:
            parsed, problems = parse_catalog(candidate, "candidate.yaml")
            issues = [str(p) for p in problems]
            try:
                period_of_month(1, period)  # the month rule simulate's --period applies
            except ValueError:
                issues.append("period must be YYYY-MM")
            if parsed is None or issues:
                return html("What-if", whatif.render_form(candidate, period, issues), 400)
            fingerprint, lines = stored_events()
            sides = whatif.sides(
                priced(in_force(), period, fingerprint, lines),
                priced(parsed, period, fingerprint, lines),
            )
            body = whatif.render_form(candidate, period) + whatif.render_result(sides, period)
            return html("What-if", body)

        return await guarded(build)(request)

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(next: str = "") -> Response:
        body = (
            '<form method="post"><p><label>API key <input type="password" name="key"'
            ' autocomplete="current-password"></label>'
            f'<input type="hidden" name="next" value="{e(next)}"> <button>Log in</button>'
            "</p></form>"
        )
        return html("Log in", body, 200, ())

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        key, target = form.get("key", [""])[0], form.get("next", [""])[0]
        if not key or not await run_in_threadpool(verify_key, key):
            return html("Log in", "<p class=bad>That key is not an operator key.</p>", 401, ())
        safe = target if target.startswith(f"{prefix}/") and "//" not in target else f"{prefix}/"
        response = RedirectResponse(safe, status_code=303)
        response.set_cookie(
            COOKIE,
            session_cookie(keys, clock()),
            max_age=int(SESSION.total_seconds()),
            httponly=True,
            samesite="strict",
            path=prefix,
        )
        return response

    @router.get("/logout")
    async def logout() -> Response:
        response = RedirectResponse(f"{prefix}/login", status_code=303)
        response.delete_cookie(COOKIE, path=prefix)
        return response

    def portal_guard(customer: str, token: str) -> HTMLResponse | None:
        who = portal_customer(keys, token, clock())
        if who is None:
            return html(
                "Link refused",
                "<p>This link is not valid or has expired. Ask your"
                " account manager for a new one.</p>",
                403,
                (),
            )
        if who != customer:
            return html("Forbidden", "<p>This link does not show that customer.</p>", 403, ())
        return None

    @router.get("/portal/{customer}", response_class=HTMLResponse)
    async def portal(customer: str, token: str = "", window: str = "30d") -> Response:
        refusal = portal_guard(customer, token)
        if refusal is not None:
            return refusal

        def build() -> HTMLResponse:
            body = customer_body(
                customer,
                window,
                f"{prefix}/portal/{customer}",
                f"{prefix}/portal/{customer}/invoices",
                False,
                f"token={token}",  # every link keeps the customer's token
            )
            return html(f"Usage and invoices of {customer}", body, 200, ())

        return await run_in_threadpool(build)

    @router.get("/portal/{customer}/invoices/{invoice_id}", response_class=HTMLResponse)
    async def portal_invoice(customer: str, invoice_id: str, token: str = "") -> Response:
        refusal = portal_guard(customer, token)
        if refusal is not None:
            return refusal

        def build() -> HTMLResponse:
            stored = stored_invoice(settings, invoice_id)
            if stored is None or stored.customer != customer:
                return html("Forbidden", "<p>Not an invoice of this customer.</p>", 403, ())
            body = invoices.render_invoice(
                stored, None, rows(invoices.history_sql(stored.id)), explanation=False
            )
            back = f'<p><a href="{prefix}/portal/{e(customer)}?token={e(token)}">Back</a></p>'
            return html(f"Invoice {stored.number}", back + body, 200, ())

        return await run_in_threadpool(build)

    return router
