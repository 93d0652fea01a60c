"""The console in a real browser (headless Chromium through Selenium) on real data.

A small month of usage goes through the real broker, worker and sink; the operator closes
it, so invoices land in ClickHouse. The console's router runs in a tiny FastAPI app under
uvicorn, on a clock fixed in the month after the usage. Every page must load with no
browser console error; every chart's marks and totals must equal what ClickHouse holds
(asked here by SQL of the test's own); the what-if page must equal ``railyard simulate``
run as a CLI on the same events and candidate; portal links must show their customer and
nobody else, and expire; operator pages refuse a visitor without a key. Screenshots of
every page go to a folder under tmp_path (printed), and to $RAILYARD_CONSOLE_SCREENSHOTS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from connectors.clickhouse.analyst import query
from connectors.console.links import Purpose, sign
from connectors.console.router import console_router
from connectors.files import load_catalog
from connectors.kafka.billing_commands import request_close
from connectors.kafka.catalog_feed import publish_catalog
from connectors.rails.sandbox import start_peer
from streams.domain.workload import WorkloadSpec, generate
from streams.domain.workload.catalog import billing_catalog_yaml
from streams.settings import Settings
from tests.integration.conftest import namespace
from tests.integration.harness import Pipeline, free_port, railyard
from tests.integration.rails_harness import InProcess
from tests.integration.test_billing import settled
from tests.integration.test_ingest import publish

pytestmark = pytest.mark.integration

MONTH = "2026-10"
START = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
"""The console's clock: this month is 2026-11, last month the usage's."""
KEY = "op-key-for-tests"
SECRET = "console-secret-for-tests"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@dataclass
class Console:
    settings: Settings
    base: str
    events: Path
    catalog: Path
    candidate: Path
    customers: list[str]
    shots: Path


def rows(settings: Settings, sql: str) -> list[list[Any]]:
    return query(settings, sql).rows


@pytest.fixture(scope="module")
def console(kafka: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    workload = generate(
        WorkloadSpec(
            seed=5,
            customers=6,
            events=900,
            start=START,
            duration=timedelta(days=31),
            duplicate_rate=0.03,
            invalid_rate=0.02,
            unknown_subject_rate=0.01,
        )
    )
    example = (Path(__file__).parents[2] / "deploy" / "catalog.example.yaml").read_text()
    first = billing_catalog_yaml(example, workload.customers)
    in_force = first.replace('amount: "49.00"', 'amount: "45.00"')
    # The candidate doubles every unit price.
    candidate = re.sub(
        r'unit_amount: "([0-9.]+)"', lambda m: f'unit_amount: "{Decimal(m[1]) * 2}"', in_force
    )
    assert in_force != first and candidate != in_force
    files = {}
    for name, text in (("first", first), ("catalog", in_force), ("candidate", candidate)):
        files[name] = tmp / f"{name}.yaml"
        files[name].write_text(text)
    settings = namespace(
        kafka,
        tmp / "home",
        catalog=files["first"],
        max_event_age=timedelta(days=400),
        period_grace=timedelta(hours=6),
        console_secret=SECRET,
    )
    settings = settings.with_(catalog=files["catalog"])
    publish_catalog(settings, load_catalog(files["catalog"]))
    lines = [g.line for g in workload.events]
    events = tmp / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    pipeline = Pipeline(settings)
    server = None
    stops: list[Callable[[], None]] = []
    try:
        pipeline.start("sink", "worker")
        publish(settings, lines)
        valid = len({g.event["id"] for g in workload.events if g.valid and g.event})
        pipeline.wait_for(
            lambda: pipeline.count("SELECT count() FROM usage_events") >= valid,
            what="every event to land",
        )
        pipeline.wait_for(lambda: settled(settings), what="the stages to settle")
        request_close(settings, MONTH)
        customers = sorted(c.key for c in load_catalog(files["catalog"]).customers)
        pipeline.wait_for(
            lambda: pipeline.count("SELECT count() FROM invoices") >= len(customers),
            what="an invoice per customer in ClickHouse",
        )
        pipeline.wait_for(
            lambda: (
                pipeline.count("SELECT count(DISTINCT version) FROM catalog_applications FINAL")
                >= 2
            ),
            what="both catalog versions",
        )
        # Each rail's connector delivers to its local stand-in: the status history.
        for (rail,) in rows(settings, "SELECT DISTINCT rail FROM invoices"):
            (tmp / f"peer-{rail}").mkdir()
            peer = start_peer(str(rail), tmp / f"peer-{rail}")
            stops.append(peer.stop)
            runner = InProcess(settings, peer)
            stops.insert(0, runner.stop)
        pipeline.wait_for(
            lambda: pipeline.count("SELECT count() FROM invoice_delivery") >= len(customers),
            what="every invoice's delivery status",
        )
        pay(settings)
        pipeline.wait_for(
            lambda: (
                pipeline.count("SELECT count() FROM invoice_payments WHERE payment_status != ''")
                == 2
            ),
            what="the two payment notifications",
        )
        server, base = serve(settings)
        shots = tmp / "screenshots"
        shots.mkdir()
        print(f"\nconsole screenshots: {shots}")
        yield Console(
            settings, base, events, files["catalog"], files["candidate"], customers, shots
        )
    finally:
        if server is not None:
            server.should_exit = True
        for stop in stops:
            stop()
        pipeline.stop()


def pay(settings: Settings) -> None:
    """Two delivered invoices hear from their rail, as its notification receiver would say
    it on invoices.status: the largest one paid, the smallest one's payment failed."""
    from confluent_kafka import Producer

    from connectors.kafka import topics
    from streams.wire.records import INVOICE_STATUS

    delivered = rows(
        settings,
        "SELECT i.id, i.number, i.customer, i.rail FROM invoices AS i INNER JOIN"
        " invoice_delivery AS d ON d.invoice_id = i.id WHERE d.status = 'delivered'"
        " ORDER BY i.total DESC",
    )
    assert len(delivered) >= 2
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for (invoice_id, number, customer, rail), status in zip(
        (delivered[0], delivered[-1]), ("paid", "payment_failed"), strict=True
    ):
        record = {
            "invoice_id": invoice_id,
            "number": number,
            "customer": customer,
            "rail": rail,
            "status": status,
            "attempt": 0,
            "references": {"event_id": f"evt-{number}"},
            "rail_status": f"invoice.{status}",
            "error_code": None,
            "error_message": None,
            "retry_at": None,
            "at": NOW,
        }
        producer.produce(
            topics.topic_name(settings, topics.INVOICES_STATUS),
            INVOICE_STATUS.encode(record),
            key=invoice_id.encode(),
        )
    assert producer.flush(30) == 0


def serve(settings: Settings) -> tuple[Any, str]:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(console_router(settings, verify_key=lambda k: k == KEY, clock=lambda: NOW))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    return server, f"http://127.0.0.1:{port}/console"


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        why = "needs Debian's chromium and chromium-driver (deploy/setup.sh test installs them)"
        if os.environ.get("RAILYARD_SKIP_BROWSER") == "1":  # only when asked, never by default
            pytest.skip(why)
        pytest.fail(f"{why}; RAILYARD_SKIP_BROWSER=1 skips these tests on a machine without")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1200,1500",
        "--disable-gpu",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        login(driver, console)
        yield driver
    finally:
        driver.quit()


def login(driver: Any, console: Console) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{console.base}/login")
    driver.find_element(By.NAME, "key").send_keys(KEY)
    driver.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url.rstrip("/").endswith("/console"))


def visit(driver: Any, console: Console, path: str, shot: str) -> None:
    """Open a page, check the browser logged no error, and keep a screenshot of it."""
    driver.get(console.base + path)
    severe = [x for x in driver.get_log("browser") if x["level"] == "SEVERE"]
    assert not severe, f"{path}: {severe}"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1200, min(max(height + 40, 800), 6000))
    target = console.shots / f"{shot}.png"
    driver.save_screenshot(str(target))
    driver.set_window_size(1200, 1500)
    keep(console, shot)


def keep(console: Console, shot: str) -> None:
    """Also copy a screenshot to $RAILYARD_CONSOLE_SCREENSHOTS (docs/console.md's)."""
    extra = os.environ.get("RAILYARD_CONSOLE_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(console.shots / f"{shot}.png", Path(extra) / f"{shot}.png")


def marks(driver: Any, chart_label: str) -> tuple[list[dict[str, str]], str]:
    from selenium.webdriver.common.by import By

    svg = driver.find_element(By.CSS_SELECTOR, f'svg[aria-label="{chart_label}"]')
    found = [
        {k: m.get_attribute(f"data-{k}") for k in ("category", "series", "value", "x", "y")}
        for m in svg.find_elements(By.CSS_SELECTOR, ".mark")
    ]
    return found, svg.get_attribute("data-total")


def test_every_page_loads_and_charts_equal_clickhouse(browser: Any, console: Console) -> None:
    from selenium.webdriver.common.by import By

    s = console.settings
    visit(browser, console, "/", "overview")
    found, total = marks(browser, f"Revenue for periods starting {MONTH}")
    # The same figures as the documented revenue_status view (every invoice is MONTH's).
    assert (
        rows(
            s,
            "SELECT count() FROM invoices WHERE formatDateTime(period_start, '%Y-%m')"
            f" != '{MONTH}'",
        )[0][0]
        == 0
    )
    expected: dict[tuple[str, str], Decimal] = {}
    for rail, currency, *amounts in rows(
        s,
        "SELECT rail, currency, toString(issued), toString(collected), toString(outstanding),"
        " toString(failed) FROM revenue_status",
    ):
        for state, amount in zip(
            ("issued", "collected", "outstanding", "failed"), amounts, strict=True
        ):
            expected[(f"{rail} {currency}", state)] = Decimal(amount)
    drawn = {(m["category"], m["series"]): Decimal(m["value"]) for m in found}
    assert drawn == expected
    assert Decimal(total) == sum(drawn.values())
    assert any(v and k[1] == "collected" for k, v in drawn.items())
    assert any(v and k[1] == "failed" for k, v in drawn.items())
    where = dict(rows(s, "SELECT invoice_id, status FROM invoice_delivery"))
    assert "failed" in where.values()  # NetSuite and Salesforce refuse some

    found, total = marks(browser, "Dead letters by reason")
    dead = {
        f"{st}: {r}": Decimal(n)
        for st, r, n in rows(
            s, "SELECT stage, reason, count() FROM dead_letters GROUP BY stage, reason"
        )
    }
    assert dead and {m["category"]: Decimal(m["value"]) for m in found} == dead
    assert Decimal(total) == sum(dead.values())
    parked = browser.find_elements(By.CSS_SELECTOR, "#parked tbody tr")
    assert len(parked) == len(rows(s, "SELECT subject FROM unattributed_usage")) > 0
    assert len(browser.find_elements(By.CSS_SELECTOR, "#freshness tbody tr")) == 5
    found, total = marks(browser, "Accepted events per minute")
    assert Decimal(total) == sum(Decimal(m["y"]) for m in found) > 0

    browser.set_window_size(390, 844)  # a phone: the page must not need sideways scrolling
    browser.get(console.base + "/")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    browser.save_screenshot(str(console.shots / "overview-phone.png"))
    keep(console, "overview-phone")
    browser.set_window_size(1200, 1500)
    visit(browser, console, "/customers", "customers")
    listed = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#customers tbody a")]
    assert listed == console.customers
    visit(browser, console, f"/customers?q={console.customers[0][:6]}", "customers-search")
    assert console.customers[0] in browser.page_source

    who = console.customers[0]
    visit(browser, console, f"/customers/{who}", "customer")
    newest = rows(s, f"SELECT max(day) FROM usage_daily WHERE customer = '{who}'")[0][0]
    daily = rows(
        s,
        "SELECT meter, toString(day), toString(sum(quantity)) FROM usage_daily"
        f" WHERE customer = '{who}' AND day > toDate('{newest}') - 30 GROUP BY meter, day",
    )
    expected = {(m, d): Decimal(q) for m, d, q in daily}
    seen: dict[tuple[str, str], Decimal] = {}
    for meter in {m for m, _ in expected}:
        found, total = marks(browser, f"{meter} per day")
        points = {(meter, str(m["x"])): Decimal(m["y"]) for m in found}
        assert Decimal(total) == sum(points.values())
        seen.update(points)
    assert seen == expected
    spend = rows(
        s,
        f"SELECT toString(total) FROM billing_spend WHERE customer = '{who}'"
        " ORDER BY period_start DESC LIMIT 1",
    )
    if spend:
        svg = browser.find_element(By.CSS_SELECTOR, 'svg[aria-label^="Open period"]')
        bar = svg.find_element(By.CSS_SELECTOR, '.mark[data-category="spend"]')
        assert Decimal(bar.get_attribute("data-value")) == Decimal(spend[0][0])
    visit(browser, console, f"/customers/{who}?window=48h", "customer-48h")

    visit(browser, console, "/invoices", "invoices")
    shown = browser.find_elements(By.CSS_SELECTOR, "#invoices tbody tr")
    assert len(shown) == len(rows(s, "SELECT id FROM invoices"))
    visit(browser, console, f"/invoices?period={MONTH}&status=failed", "invoices-filtered")
    failed = {i for i, state in where.items() if state == "failed"}
    shown_numbers = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "#invoices tbody a")}
    numbers = {str(n) for i, n in rows(s, "SELECT id, number FROM invoices") if i in failed}
    assert shown_numbers == numbers and numbers
    biggest = rows(
        s, "SELECT id, number, toString(total) FROM invoices ORDER BY total DESC LIMIT 1"
    )[0]
    visit(browser, console, f"/invoices/{biggest[0]}", "invoice")
    assert biggest[1] in browser.title
    amounts = [
        Decimal(td.text)
        for td in browser.find_elements(By.CSS_SELECTOR, "#lines tbody td:last-child")
    ]
    assert sum(amounts) == Decimal(biggest[2])
    steps = [
        td.text for td in browser.find_elements(By.CSS_SELECTOR, "#history tbody td:nth-child(2)")
    ]
    history = rows(
        s,
        f"SELECT status FROM invoice_status_raw FINAL WHERE invoice_id = '{biggest[0]}'"
        " ORDER BY at",
    )
    assert steps == [str(r[0]) for r in history] and steps, steps
    verdicts = [
        v.text for v in browser.find_elements(By.CSS_SELECTOR, ".explain .ok, .explain .bad")
    ]
    assert verdicts and set(verdicts) <= {"ok", "not usage"}, verdicts
    # The same explanation as the command gives (one code path, connectors/clickhouse/explain.py).
    assert "ok" in railyard(s, "explain", biggest[1])

    visit(browser, console, "/catalog", "catalog")
    versions = browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
    assert len(versions) == 2
    assert "plans" in browser.find_element(By.ID, "diff-summary").text
    assert '"45.00"' in browser.find_element(By.CSS_SELECTOR, "pre.diff").text


def test_what_if_equals_railyard_simulate(browser: Any, console: Console) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    visit(browser, console, "/what-if", "what-if-form")
    # Uploading the file fills the text area (a few lines of script, no framework).
    browser.find_element(By.ID, "upload").send_keys(str(console.candidate))
    WebDriverWait(browser, 10).until(
        lambda d: (
            d.find_element(By.ID, "candidate").get_attribute("value")
            == console.candidate.read_text()
        )
    )
    period = browser.find_element(By.NAME, "period")
    assert period.get_attribute("value") == MONTH  # the newest invoiced month, proposed
    period.clear()
    period.send_keys(MONTH)
    browser.find_element(By.CSS_SELECTOR, "#what-if-form button").click()
    browser.find_element(By.ID, "what-if")
    severe = [x for x in browser.get_log("browser") if x["level"] == "SEVERE"]
    assert not severe
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(max(height + 40, 800), 6000))
    browser.save_screenshot(str(console.shots / "what-if.png"))
    browser.set_window_size(1200, 1500)
    keep(console, "what-if")
    page: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    for tr in browser.find_elements(By.CSS_SELECTOR, "#what-if tbody tr"):
        cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        page[cells[0]] = (Decimal(cells[2]), Decimal(cells[3]), Decimal(cells[4]))

    def cli(catalog: Path) -> dict[str, Decimal]:
        out = json.loads(
            railyard(
                console.settings,
                "simulate",
                "--catalog",
                str(catalog),
                "--events",
                str(console.events),
                "--period",
                MONTH,
                "--format",
                "json",
            )
        )
        totals: dict[str, Decimal] = {}
        for invoice in out["invoices"]:
            totals[invoice["customer"]] = totals.get(invoice["customer"], Decimal(0)) + Decimal(
                invoice["total"]
            )
        return totals

    before, after = cli(console.catalog), cli(console.candidate)
    assert set(page) == set(before) == set(after)
    for customer, (a, b, diff) in page.items():
        assert (a, b, diff) == (
            before[customer],
            after[customer],
            after[customer] - before[customer],
        )
    assert any(diff != 0 for _, _, diff in page.values())
    charted: dict[tuple[str, str], Decimal] = {}
    for svg in browser.find_elements(By.CSS_SELECTOR, 'svg[aria-label^="Invoice totals in"]'):
        for m in svg.find_elements(By.CSS_SELECTOR, ".mark"):
            key = (m.get_attribute("data-category"), m.get_attribute("data-series"))
            charted[key] = Decimal(m.get_attribute("data-value"))
    assert charted == {
        **{(c, "in force"): v for c, v in before.items()},
        **{(c, "candidate"): v for c, v in after.items()},
    }


def status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urlopen(Request(url, headers=headers or {}), timeout=30) as r:
            return int(r.status)
    except HTTPError as exc:
        return exc.code


def test_portal_link_shows_its_customer_only(browser: Any, console: Console) -> None:
    from selenium.webdriver.common.by import By

    me, other = console.customers[0], console.customers[1]
    # The command a support engineer runs (signed now, by the wall clock: valid for days).
    url = railyard(
        console.settings,
        "console",
        "link",
        me,
        "--days",
        "60",
        "--base-url",
        console.base.removesuffix("/console"),
    ).strip()
    browser.delete_all_cookies()  # a customer has no operator session
    driver_get = url.removeprefix(console.base)
    visit(browser, console, driver_get, "portal")
    assert f"Usage and invoices of {me}" in browser.title
    assert "<h2>Subjects</h2>" not in browser.page_source
    own = rows(console.settings, f"SELECT id FROM invoices WHERE customer = '{me}'")
    links = browser.find_elements(By.CSS_SELECTOR, "#invoices tbody a")
    assert len(links) == len(own)
    visit(
        browser,
        console,
        links[0].get_attribute("href").removeprefix(console.base),
        "portal-invoice",
    )
    assert "Invoice" in browser.title
    assert "Why each line" not in browser.page_source  # the evidence is for operators

    token = url.split("token=")[1]
    theirs = rows(console.settings, f"SELECT id FROM invoices WHERE customer = '{other}'")[0][0]
    assert status(f"{console.base}/portal/{me}?token={token}") == 200
    assert status(f"{console.base}/portal/{other}?token={token}") == 403
    assert status(f"{console.base}/portal/{me}/invoices/{theirs}?token={token}") == 403
    assert status(f"{console.base}/portal/{other}/invoices/{theirs}?token={token}") == 403
    assert status(f"{console.base}/customers/{me}?token={token}") == 401
    expired = sign(SECRET, Purpose.PORTAL, me, NOW - timedelta(days=3), timedelta(days=1))
    assert status(f"{console.base}/portal/{me}?token={expired}") == 403
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert status(f"{console.base}/portal/{me}?token={forged}") == 403
    login(browser, console)


def test_operator_pages_need_a_credential(console: Console) -> None:
    for path in (
        "/",
        "/customers",
        f"/customers/{console.customers[0]}",
        "/invoices",
        "/catalog",
        "/what-if",
    ):
        assert status(console.base + path) == 401, path
        assert status(console.base + path, {"Authorization": "Bearer wrong"}) == 401, path
        started = time.monotonic()
        assert status(console.base + path, {"Authorization": f"Bearer {KEY}"}) == 200, path
        print(f"console {path}: {time.monotonic() - started:.3f} s")
