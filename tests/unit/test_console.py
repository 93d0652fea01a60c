"""The console's pure parts: link signing, charts, view models, the catalog diff, and the
router's refusals (which need no store)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from connectors.api.keys import bearer
from connectors.console import catalog_view, customers, invoices, overview, whatif
from connectors.console.auth import COOKIE, Keys, operator, session_cookie
from connectors.console.links import Purpose, sign, verify
from connectors.console.router import console_router
from connectors.console.svg import Series, bar_chart, line_chart, number
from connectors.files import load_catalog
from streams.domain.cloudevents import from_json
from streams.settings import Settings

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "deploy" / "catalog.example.yaml"


def svg_of(markup: str) -> ET.Element:
    found = re.search(r"<svg.*</svg>", markup, re.S)
    assert found is not None
    return ET.fromstring(found.group(0))


# -- links ---------------------------------------------------------------------------------


def test_a_link_verifies_until_it_expires() -> None:
    token = sign("s", Purpose.PORTAL, "acme", NOW, timedelta(days=2))
    ok = verify("s", Purpose.PORTAL, token, NOW + timedelta(days=1))
    assert ok is not None and ok.subject == "acme"
    assert ok.expires == NOW + timedelta(days=2)
    assert verify("s", Purpose.PORTAL, token, NOW + timedelta(days=2)) is None
    assert verify("s", Purpose.PORTAL, token, NOW + timedelta(days=3)) is None


def test_a_link_is_bound_to_its_secret_purpose_subject_and_expiry() -> None:
    token = sign("s", Purpose.PORTAL, "acme", NOW, timedelta(days=2))
    subject, expires, mac = token.split(".")
    assert verify("other", Purpose.PORTAL, token, NOW) is None
    assert verify("s", Purpose.OPERATOR, token, NOW) is None
    assert verify("s", Purpose.PORTAL, f"globex.{expires}.{mac}", NOW) is None
    assert verify("s", Purpose.PORTAL, f"{subject}.{int(expires) + 86400}.{mac}", NOW) is None
    assert verify("", Purpose.PORTAL, token, NOW) is None
    for junk in ("", "a.b", "a.x.c", "a.1.2.3"):
        assert verify("s", Purpose.PORTAL, junk, NOW) is None


def test_signing_needs_a_secret_and_a_plain_subject() -> None:
    with pytest.raises(ValueError, match="RAILYARD_CONSOLE_SECRET"):
        sign("", Purpose.PORTAL, "acme", NOW, timedelta(days=1))
    with pytest.raises(ValueError):
        sign("s", Purpose.PORTAL, "a.b", NOW, timedelta(days=1))


def test_operator_by_bearer_key_or_session_cookie() -> None:
    keys = Keys.of("")
    assert keys.portal == "" and len(keys.session) == 64  # sessions still work, per process
    assert bearer("Bearer k1") == "k1" and bearer("bearer  k1 ") == "k1"
    assert bearer("Basic abc") is None and bearer(None) is None

    def good(key: str) -> bool:
        return key == "k1"

    assert operator(keys, good, "Bearer k1", None, NOW)
    assert not operator(keys, good, "Bearer k2", session_cookie(keys, NOW), NOW)
    assert operator(keys, good, None, session_cookie(keys, NOW), NOW)
    assert not operator(keys, good, None, session_cookie(keys, NOW - timedelta(days=1)), NOW)
    assert not operator(keys, good, None, None, NOW)


# -- charts --------------------------------------------------------------------------------


def test_bar_chart_marks_and_total_are_the_input() -> None:
    series = [
        Series("issued", (Decimal("10.50"), Decimal("0"))),
        Series("paid", (Decimal("3.25"), Decimal("7"))),
    ]
    svg = svg_of(bar_chart("Revenue <2026>", ["stripe EUR", "sap <EUR>"], series))
    rects = svg.findall(".//rect")
    got = {(r.get("data-category"), r.get("data-series")): r.get("data-value") for r in rects}
    assert got == {
        ("stripe EUR", "issued"): "10.5",
        ("sap <EUR>", "issued"): "0",
        ("stripe EUR", "paid"): "3.25",
        ("sap <EUR>", "paid"): "7",
    }
    assert svg.get("data-total") == "20.75"
    assert svg.get("aria-label") == "Revenue <2026>"  # escaped in the markup, intact here
    heights = {
        (r.get("data-category"), r.get("data-series")): float(r.get("height") or 0) for r in rects
    }
    assert heights[("stripe EUR", "issued")] > heights[("sap <EUR>", "paid")] > 0


def test_line_chart_points_are_the_input_in_order() -> None:
    xs = ["2026-10-01", "2026-10-02", "2026-10-03"]
    values = (Decimal("1.000000000"), Decimal("2.5"), Decimal("0"))
    svg = svg_of(line_chart("tokens", xs, [Series("ai_tokens", values)]))
    points = [(c.get("data-x"), c.get("data-y")) for c in svg.findall(".//circle")]
    assert points == [("2026-10-01", "1"), ("2026-10-02", "2.5"), ("2026-10-03", "0")]
    assert svg.get("data-total") == "3.5"
    cx = [float(c.get("cx") or 0) for c in svg.findall(".//circle")]
    assert cx == sorted(cx)


def test_charts_of_nothing_render() -> None:
    assert svg_of(bar_chart("x", [], [])).get("data-total") == "0"
    assert svg_of(line_chart("x", [], [])).get("data-total") == "0"
    assert number(Decimal("0E-9")) == "0" and number(Decimal("12.500")) == "12.5"


# -- view models ---------------------------------------------------------------------------


def test_overview_months_and_revenue_states() -> None:
    assert overview.months(date(2027, 1, 31)) == ("2027-01-01", "2026-12-01")
    assert overview.months(date(2026, 11, 1)) == ("2026-11-01", "2026-10-01")
    # docs/rails.md's example: issued 1500, collected 150, outstanding 550, failed 400.
    model = overview.overview(
        ("2026-11-01", "2026-10-01"),
        [["2026-10-01", "stripe", "EUR", 5, "1500", "150", "550", "400", "300"]],
        [["ingest", "negative_value", 2]],
        [["2026-11-20 10:01:00", 5]],
    )
    (r,) = model.revenue
    assert (r.month, r.invoices, r.issued, r.collected, r.outstanding, r.failed, r.refunded) == (
        "2026-10",
        5,
        Decimal(1500),
        Decimal(150),
        Decimal(550),
        Decimal(400),
        Decimal(300),
    )
    html = overview.render(model, "/console/invoices")
    svg = svg_of(html.split("<h2>Dead")[0])
    drawn = {r.get("data-series"): r.get("data-value") for r in svg.findall(".//rect")}
    assert drawn == {"issued": "1500", "collected": "150", "outstanding": "550", "failed": "400"}
    assert Decimal(svg.get("data-total") or "") == Decimal(2600)  # the four marks added
    assert "No invoices for periods starting in 2026-11" in html


def test_overview_sql_reads_revenue_status_rules_per_month() -> None:
    sql = overview.revenue_sql(("2026-11-01", "2026-10-01"))
    assert "toDate('2026-11-01'), toDate('2026-10-01')" in sql
    assert "FROM invoice_payments" in sql and "payment_status != 'voided'" in sql


def test_customers_search_and_spend_against_commitment() -> None:
    catalog = load_catalog(EXAMPLE)
    rows = customers.customer_rows(catalog, [["aperture-ai", 2, "10.5"]], "APERT")
    assert [(c.key, c.invoices, c.invoiced) for c in rows] == [("aperture-ai", 2, Decimal("10.5"))]
    assert len(customers.customer_rows(catalog, [], "")) == len(catalog.customers)
    spend = customers.spend(
        catalog,
        "aperture-ai",
        NOW,
        [
            [
                "EUR",
                "2026-11-15 00:00:00",
                "2026-12-15 00:00:00",
                "90",
                "0",
                "840",
                "2026-11-20 01:00:00",
            ]
        ],
        [["g1", "EUR", "100", "30", "70"], ["g2", "USD", "5", "0", "5"]],
    )
    assert spend is not None
    assert (spend.total, spend.commitment, spend.credits_left) == (
        Decimal(840),
        Decimal("5000.00"),
        Decimal(70),
    )
    svg = svg_of(customers.spend_chart(spend))
    assert {r.get("data-category"): r.get("data-value") for r in svg.findall(".//rect")} == {
        "spend": "840",
        "commitment": "5000",
        "credits left": "70",
    }
    assert customers.spend(catalog, "aperture-ai", NOW, [], []) is None


def test_usage_windows_build_their_spans() -> None:
    sql = customers.usage_sql("acme", "7d", date(2026, 10, 31))
    assert "BETWEEN '2026-10-25' AND '2026-10-31'" in sql and "usage_daily" in sql
    sql = customers.usage_sql("acme", "48h", date(2026, 10, 31))
    assert "'2026-10-30 00:00:00'" in sql and "'2026-11-01 00:00:00'" in sql
    model = customers.usage(
        "30d", [["2026-10-01", "b", "1"], ["2026-10-02", "b", "2"], ["2026-10-01", "a", "3"]]
    )
    assert model.meters == (
        ("a", (("2026-10-01", Decimal(3)),)),
        ("b", (("2026-10-01", Decimal(1)), ("2026-10-02", Decimal(2)))),
    )


def test_invoice_filters_are_quoted() -> None:
    sql = invoices.list_sql(invoices.Filters("2026-10", "sap", "paid", "o'brien"))
    assert "= '2026-10'" in sql and "i.rail = 'sap'" in sql and "= 'paid'" in sql
    assert "'o\\'brien'" in sql


def test_catalog_diff_names_what_changed() -> None:
    old = json.loads(load_catalog(EXAMPLE).to_json())
    new = json.loads(json.dumps(old))
    new["customers"] = [c for c in new["customers"] if c["key"] != "aperture-ai"]
    new["customers"][0]["name"] = "Renamed"
    new["rounding"] = "half_up"
    changes, text = catalog_view.diff(old, new)
    by_section = {c.section: c for c in changes}
    assert set(by_section) == {"customers", "rounding"}
    assert by_section["customers"].removed == ("aperture-ai",)
    assert by_section["customers"].changed == (new["customers"][0]["key"],)
    assert '+      "name": "Renamed"' in text
    assert catalog_view.diff(old, old) == ((), "")


def test_stored_events_become_the_lines_simulate_reads() -> None:
    row = [
        "e1",
        "gw",
        "ai.tokens",
        "key_1",
        "2026-10-03 10:00:00.250000",
        ["tokens"],
        ["1200.500000000"],
        {"model": "gpt-4o"},
        None,
    ]
    (line,) = whatif.event_lines([row])
    event = from_json(line)
    assert not hasattr(event, "reason")
    assert event.time == datetime(2026, 10, 3, 10, 0, 0, 250000, tzinfo=UTC)  # type: ignore[union-attr]
    assert event.values == {"tokens": Decimal("1200.5")}  # type: ignore[union-attr]
    assert event.dimensions == {"model": "gpt-4o"}  # type: ignore[union-attr]


# -- the router's refusals need no store ---------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    app = FastAPI()
    settings = Settings(home=tmp_path, console_secret="s")  # type: ignore[arg-type]
    app.include_router(console_router(settings, verify_key=lambda k: k == "k1", clock=lambda: NOW))
    return TestClient(app)


def test_operator_pages_refuse_without_a_key(client: TestClient) -> None:
    for path in ("/console/", "/console/customers", "/console/invoices", "/console/catalog"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/console/what-if", headers={"Authorization": "Bearer k1"}).status_code == 200


def test_login_sets_an_http_only_session(client: TestClient) -> None:
    refused = client.post(
        "/console/login",
        content="key=nope",
        follow_redirects=False,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 401 and COOKIE not in refused.cookies
    done = client.post(
        "/console/login",
        content="key=k1&next=/console/what-if",
        follow_redirects=False,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/what-if"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert client.get("/console/what-if").status_code == 200
    off_site = client.post(
        "/console/login",
        content="key=k1&next=//evil.example/",
        follow_redirects=False,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert off_site.headers["location"] == "/console/"


def test_portal_refuses_bad_expired_and_other_customers_links(client: TestClient) -> None:
    good = sign("s", Purpose.PORTAL, "acme", NOW, timedelta(days=1))
    expired = sign("s", Purpose.PORTAL, "acme", NOW - timedelta(days=2), timedelta(days=1))
    assert client.get(f"/console/portal/globex?token={good}").status_code == 403
    assert client.get(f"/console/portal/globex/invoices/x?token={good}").status_code == 403
    assert client.get(f"/console/portal/acme?token={expired}").status_code == 403
    assert client.get("/console/portal/acme?token=junk").status_code == 403
    assert client.get("/console/portal/acme").status_code == 403


def test_what_if_lists_every_problem_of_a_candidate(client: TestClient) -> None:
    refused = client.post(
        "/console/what-if",
        content="candidate=meters%3A+%5B&period=2026",
        headers={"Authorization": "Bearer k1", "content-type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 400
    assert "period must be YYYY-MM" in refused.text and "candidate.yaml" in refused.text


def test_what_if_refuses_a_month_that_does_not_exist(client: TestClient) -> None:
    candidate = (
        Path(__file__).resolve().parents[2] / "deploy" / "catalog.example.yaml"
    ).read_text()
    refused = client.post(
        "/console/what-if",
        data={"candidate": candidate, "period": "2026-13"},
        headers={"Authorization": "Bearer k1"},
    )
    assert refused.status_code == 400 and "period must be YYYY-MM" in refused.text


def test_railyard_console_link_prints_a_link_that_verifies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from streams.cli.main import app

    monkeypatch.setenv("RAILYARD_CONSOLE_SECRET", "s")
    done = CliRunner().invoke(
        app, ["console", "link", "acme", "--days", "3", "--base-url", "https://billing.example/"]
    )
    assert done.exit_code == 0, done.output
    url = done.output.strip()
    assert url.startswith("https://billing.example/console/portal/acme?token=acme.")
    found = verify("s", Purpose.PORTAL, url.split("token=")[1], datetime.now(UTC))
    assert found is not None and found.subject == "acme"
    assert timedelta(days=2) < found.expires - datetime.now(UTC) <= timedelta(days=3)
    monkeypatch.setenv("RAILYARD_CONSOLE_SECRET", "")
    refused = CliRunner().invoke(app, ["console", "link", "acme"])
    assert refused.exit_code == 2 and "RAILYARD_CONSOLE_SECRET" in refused.output


def test_console_pages_stay_out_of_the_api_schema(client: TestClient) -> None:
    assert not [p for p in client.get("/openapi.json").json()["paths"] if "console" in p]


def test_portal_links_carry_the_token_and_operator_links_do_not() -> None:
    use = customers.Usage("30d", ())
    row = invoices.InvoiceRow(
        "inv_1", "INV-1", "acme", "stripe", "EUR", "2026-10-01", Decimal(1), "x"
    )
    portal = customers.window_links(use, "/p/acme", "token=acme.9.ab")
    assert 'href="/p/acme?token=acme.9.ab&amp;window=7d"' in portal
    assert 'href="/c/acme?window=7d"' in customers.window_links(use, "/c/acme")
    listed = invoices.render_list([row], invoices.Filters(), "/p/i", (), False, "token=acme.9.ab")
    assert 'href="/p/i/inv_1?token=acme.9.ab"' in listed
    assert 'href="/c/i/inv_1"' in invoices.render_list([row], invoices.Filters(), "/c/i", ())
