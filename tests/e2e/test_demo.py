"""The README's demo, end to end, as a new user runs it (its own broker, store and ports).

Once in full on today's date, as ``bash deploy/setup.sh demo`` runs it; then lean
(fewer events, no delivery) on fixed dates that stress billing periods, where the
stream's invoices must still equal ``railyard simulate``'s; then twice in a row on
one home, the first run left running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.files import load_catalog
from connectors.kafka.stack import LocalBroker
from connectors.processes import stop_recorded
from streams.cli.demo import DEMO_DAYS, SEED, DemoDate
from streams.cli.demo_state import DEMO_PROCESSES
from streams.domain.rating.periods import periods_between
from streams.domain.workload import catalog_population
from streams.settings import PROJECT_ROOT, Settings
from tests.fixtures.kafka import free_ports

pytestmark = pytest.mark.e2e

RAILS = ("adyen", "netsuite", "outbox", "paypal", "salesforce", "sap", "stripe", "webhook")
"""The demo catalog bills through every built-in rail."""
EXAMPLE = load_catalog(PROJECT_ROOT / "deploy" / "catalog.example.yaml")
CUSTOMERS = 12
"""Customers of deploy/catalog.example.yaml; from 2026-11-15 on every one owns its
subjects for any five weeks, so each closed month has an invoice per customer."""
LEAN = ("--events", "1500", "--no-delivery")
"""A fixed-date run: enough events for every customer in every period, no rail delivery."""

FIXED_DATES = {
    # The month closed is February 2027, a 28-day month that ends at the demo's midnight.
    "first of a month": "2027-03-01",
    # Usage ends on the 29th; the month closed (March) ended a month ago. In the past: the
    # worker's clock starts there, or it would refuse every event as months too old (and
    # 2028 below as from the future). Hooli, Monarch and Cyberdyne are not customers yet.
    "last day of a month": "2026-04-30",
    "29 February": "2028-02-29",
    # hooli-systems is anchored on the 31st: its period Feb 28 - Mar 31 (February is short)
    # closes by event time the day before, the one starting Mar 31 by the demo's close.
    "day after an anchor day of 31": "2027-04-01",
    # vandelay-analytics (anchor 12, prepaid credit) has usage in three periods: Dec 12 -
    # Jan 12, Jan 12 - Feb 12 and Feb 12 -; credit burns on the earliest first.
    "three periods of one customer": "2027-02-14",
}


def _demo(home: Path, *args: str, timeout: float = 600) -> str:
    """``railyard demo ARGS`` on ``home``; asserts it exits 0 and returns its output."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    # Clients are closed before the broker stops: none is left retrying it.
    assert "Connection refused" not in done.stderr, done.stderr
    return done.stdout


_PORTS: dict[Path, list[int]] = {}


def _env(home: Path) -> dict[str, str]:
    """The demo's environment for ``home``: the same free ports for every run on it."""
    kafka, controller, query, api = _PORTS.setdefault(home, free_ports(4))
    env = {
        **os.environ,
        "RAILYARD_HOME": str(home),
        "RAILYARD_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}",
        "RAILYARD_KAFKA_CONTROLLER_PORT": str(controller),
        "RAILYARD_QUERY_PORT": str(query),
        "RAILYARD_API_PORT": str(api),
        "COLUMNS": "200",
    }
    env.pop("RAILYARD_CLICKHOUSE_DSN", None)
    env.pop("RAILYARD_CLOCK_START", None)
    return env


def _assert_billed_exactly(out: str, today: date) -> None:
    """The usage spans the five weeks before ``today`` for every customer owning subjects
    then, everything landed and was attributed, and every invoice of last month equals
    simulate's, one at least per customer with usage."""
    when = DemoDate(today)
    customers = len(catalog_population(EXAMPLE, SEED, when.first_day, when.now).customers)
    assert f"Railyard demo on {today:%Y-%m-%d}" in out
    # railyard explain recomputed every usage line of every invoice from its stored events.
    assert "usage lines recomputed from their stored events: every one equal" in out
    assert (
        f"for the catalog's {customers} customers from {when.first_day:%Y-%m-%d} "
        f"to {when.last_day:%Y-%m-%d}"
    ) in out
    assert "the parked event is now billed to nakatomi-io" in out
    assert re.search(r"unattributed 0", out)
    counts = dict(re.findall(r"\b(accepted|attributed) (\d+)", out))
    assert counts["accepted"] == counts["attributed"], "every accepted event was attributed"
    assert f"Invoices on invoices.<rail>, {when.month}" in out
    verdict = re.search(
        r"stream vs railyard simulate: identical, to the cent \((\d+) invoices", out
    )
    assert verdict is not None, out.split("Rating and invoicing")[-1]
    assert int(verdict[1]) >= customers
    if today >= date(2026, 12, 1):  # every customer, every subject: one invoice each
        assert (customers, int(verdict[1])) == (CUSTOMERS, CUSTOMERS)


def test_the_demo_lands_every_valid_event_once_and_dead_letters_the_rest(tmp_path: Path) -> None:
    out = _demo(tmp_path / "home", "--events", "4000")
    fresh = f"fresh state: nothing from an earlier run under {tmp_path / 'home'}"
    assert fresh in " ".join(out.split())
    assert "What landed, per subject and event type" in out
    assert "usage.dlq by reason" in out
    # every defect kind the generator makes, and the third-party garbage, were dead-lettered
    for reason in (
        "malformed_payload",
        "unknown_schema",
        "negative_value",
        "non_numeric_value",
        "missing_field",
        "timestamp_out_of_range",
        "oversized_payload",
    ):
        assert re.search(rf"{reason}\s*│\s*\d+", out), reason
    # metering: the unknown key was parked, then attributed by a catalog change
    assert re.search(r"key_demo_new_teammate\s*│\s*ai\.tokens\s*│\s*1\s*│", out)
    assert "Biggest dimension per customer and meter" in out
    # billing: last month closed, one invoice per subscribed customer on its rail topic,
    # equal to railyard simulate on the same lines
    dated = re.search(r"Railyard demo on (\d{4}-\d{2}-\d{2})", out)
    assert dated is not None and date.fromisoformat(dated[1]) in _today_or_yesterday()
    _assert_billed_exactly(out, date.fromisoformat(dated[1]))
    for rail in RAILS:
        assert re.search(rf"│ {rail}\s*│", out), rail
    # delivery: every invoice on the rail topics reached its rail's sandbox peer through the
    # real connector, and ClickHouse says so
    assert "Delivery per rail (invoice_delivery)" in out
    delivery = out.split("Delivery per rail (invoice_delivery)", 1)[1].split(
        "Delivery per invoice"
    )[0]
    rows = {
        m[0]: tuple(map(int, m[1:]))
        for m in re.findall(r"│ (\w+)\s*│\s*(\d+) │\s*(\d+) │\s*(\d+) │\s*(\d+) │", delivery)
    }
    assert sorted(rows) == sorted(RAILS), delivery
    for rail, (invoices, delivered, _retried, dead) in rows.items():
        assert invoices >= 1 and delivered == invoices and dead == 0, (rail, delivery)
    assert re.search(r"stripe\s*│.*│ .*invoice=in_\w+", delivery), delivery
    per_invoice = out.split("Delivery per invoice", 1)[1]
    assert "failed" not in per_invoice.split("invoices delivered to")[0], per_invoice
    # payment status: the stand-ins' signed notifications, through railyard rails listen
    assert "Rail status per invoice (invoice_delivery)" in out
    payments = out.split("Rail status per invoice (invoice_delivery)", 1)[1]
    payments = payments.split("payment statuses:", 1)[0]
    for status in ("paid", "payment_failed", "refunded"):
        assert re.search(rf"│ {status}\s*│", payments), (status, payments)
    _assert_doors_answered(out)
    assert "stopped API, worker, sink and broker" in out
    assert not (tmp_path / "home" / "run" / "sink.pid").exists(), "the sink exited cleanly"


def _assert_doors_answered(out: str) -> None:
    """The demo asked ClickHouse's HTTP interface and the OpenMeter-compatible API a question
    it knew the answer to, and printed where to point each tool."""
    flat = " ".join(out.split())
    assert re.search(
        r"/ping says Ok\.; SELECT count\(\) FROM invoices = \d+, as railyard sql", flat
    )
    assert re.search(
        r"API at http://\S+/api/v1: \d+ meters; \w+ for [\w-]+ from .* as usage_quantity says", flat
    )
    assert "Where to point your tools" in out
    for tool in ("browser", "Grafana", "DBeaver", "Prometheus", "OpenMeter client"):
        assert re.search(rf"│ {tool}\s*│", out), tool
    assert re.search(r"portal link for [\w-]+: http://\S+/console/portal/", out)


def _today_or_yesterday() -> tuple[date, date]:
    """The demo's default date is today's (UTC) when it started: the test may end a day on."""
    today = datetime.now(UTC).date()
    return today, today - timedelta(days=1)


def test_the_fixed_dates_stress_what_they_claim() -> None:
    catalog = EXAMPLE
    anchors = {c.key: c.billing.anchor_day for c in catalog.customers}
    assert anchors["hooli-systems"] == 31
    days = {name: date.fromisoformat(text) for name, text in FIXED_DATES.items()}
    assert days["first of a month"].day == 1
    assert (days["last day of a month"] + timedelta(days=1)).day == 1
    assert (days["29 February"].month, days["29 February"].day) == (2, 29)
    after_31 = DemoDate(days["day after an anchor day of 31"])
    closed = periods_between(31, after_31.first_day, after_31.now)[-2]
    assert (closed.start.day, closed.end.day) == (28, 31)
    assert closed.end == after_31.now - timedelta(days=1)
    when = DemoDate(days["three periods of one customer"])
    assert DEMO_DAYS == 35
    spans = periods_between(anchors["vandelay-analytics"], when.first_day, when.now)
    assert len(spans) == 3, spans
    assert any(c.credits for c in catalog.customers if c.key == "vandelay-analytics")


@pytest.mark.parametrize("today", list(FIXED_DATES.values()), ids=list(FIXED_DATES))
def test_the_demo_bills_exactly_on_a_date_that_stresses_periods(tmp_path: Path, today: str) -> None:
    out = _demo(tmp_path / "home", "--today", today, *LEAN)
    _assert_billed_exactly(out, date.fromisoformat(today))
    assert "delivery to the rails skipped (--no-delivery)" in out
    _assert_doors_answered(out)
    assert "stopped API, worker, sink and broker" in out


def test_the_demo_runs_twice_in_a_row_on_one_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    today = "2027-06-15"
    try:
        first = _demo(home, "--today", today, *LEAN, "--keep-running")
        assert "API, worker, sink and broker keep running" in first
        _assert_console_serves_what_the_demo_printed(first)
        second = _demo(home, "--today", today, *LEAN)
    finally:  # whatever failed, nothing of the first run outlives the test
        settings = Settings(home=home, kafka_bootstrap=_env(home)["RAILYARD_KAFKA_BOOTSTRAP"])
        stop_recorded(settings.run_dir, DEMO_PROCESSES)
        LocalBroker(settings).down()
    assert "fresh state: nothing from an earlier run" in first
    assert (
        "stopped the api, worker, sink, broker an earlier demo left running; "
        f"deleted its kafka, clickhouse, run, logs under {home}"
    ) in " ".join(second.split()), second  # the console wraps long lines
    for out in (first, second):
        _assert_billed_exactly(out, date.fromisoformat(today))
    assert "stopped API, worker, sink and broker" in second


def _assert_console_serves_what_the_demo_printed(out: str) -> None:
    """While a --keep-running demo is up, its printed portal link shows that customer's
    page, the same token opens no other customer's, and operator pages want a key."""
    found = re.search(r"portal link for ([\w-]+): (http://\S+)", out)
    assert found is not None, out
    customer, link = found[1], found[2]
    with urllib.request.urlopen(link, timeout=30) as resp:
        assert resp.status == 200 and customer in resp.read().decode()
    other = next(c.key for c in EXAMPLE.customers if c.key != customer)
    for refused in (
        link.replace(f"/portal/{customer}", f"/portal/{other}"),
        link.split("/console/")[0] + "/console/invoices",
    ):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(refused, timeout=30)
        assert caught.value.code in (401, 403), refused
