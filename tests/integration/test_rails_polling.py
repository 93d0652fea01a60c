"""Payment state polled from NetSuite, SAP and Salesforce lands in the store (issue 16, item 1).

Against each rail's stand-in, over the rail's own client (``requests`` with OAuth 1.0a,
``pyodata``, ``simple-salesforce``): the real runner delivers four invoices, the
stand-in moves them as the customer's payments would (paid; partly paid then paid;
partly paid; overdue), the poller reads each document back from the rail and publishes
the changes to ``invoices.status``, a restarted poller publishes nothing again, and the
sink's ``invoice_delivery`` and ``revenue_status`` show the statuses and the amounts
this test computes on its own from the invoices it issued.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from connectors.clickhouse.analyst import query
from connectors.kafka import topics
from connectors.rails.polling.poller import Poller, PollSettings
from connectors.rails.polling.schedule import Backoff
from connectors.rails.registry import create
from connectors.rails.sandbox import RailPeer, start_peer
from streams.domain.invoice import Invoice
from streams.settings import Settings
from streams.wire.invoices import encode_invoice
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.integration.harness import Pipeline, railyard
from tests.integration.rails_harness import InProcess, has, statuses, wait_for

pytestmark = pytest.mark.integration

POLLED = ("netsuite", "sap", "salesforce")
PARTIAL = {"netsuite": Decimal("10"), "sap": None, "salesforce": Decimal("15.5")}
"""What each stand-in records as partly paid (SAP's sales order carries no amount)."""


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[dict[str, RailPeer]]:
    for rail in POLLED:
        (tmp_path / rail).mkdir()
    started = {rail: start_peer(rail, tmp_path / rail) for rail in POLLED}
    yield started
    for peer in started.values():
        peer.stop()


def issue(settings: Settings, invoices: list[Invoice]) -> None:
    """The invoices on ``invoices`` too, as the rate stage issues them, for the store."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    topic = topics.topic_name(settings, topics.INVOICES)
    for inv in invoices:
        producer.produce(topic, encode_invoice(inv), inv.customer.encode())
    assert producer.flush(30) == 0


def four_invoices(rail: str, k: int, account: str | None) -> list[Invoice]:
    """Four customers' invoices for one period (``n % 12`` is the month), amounts differing."""
    return [sample_invoice(12 * j + k, rail, "EUR", account=account) for j in range(1, 5)]


def poller(
    stack: Settings, peer: RailPeer, clock: Callable[[], datetime], terms: timedelta
) -> Poller:
    config = peer.config()
    polling = PollSettings(Backoff(timedelta(minutes=5), timedelta(hours=1)), terms)
    return Poller(stack, config, create(peer.rail, config), clock, polling)  # type: ignore[arg-type]


def payment_steps(stack: Settings, invoice: Invoice) -> list[dict[str, Any]]:
    return [
        s
        for s in statuses(stack)
        if s["invoice_id"] == invoice.id and s["status"] not in ("delivered", "retrying")
    ]


def test_polled_payments_land_in_the_store_and_the_revenue_view(
    stack: Settings,
    pipeline: Pipeline,
    peers: dict[str, RailPeer],
    running: Callable[..., InProcess],
) -> None:
    issued: dict[str, list[Invoice]] = {}
    for k, rail in enumerate(POLLED):
        running(peers[rail])
        issued[rail] = four_invoices(rail, k, getattr(peers[rail], "account", None))
        publish(stack, issued[rail])
        issue(stack, issued[rail])
    every = [i for batch in issued.values() for i in batch]

    def all_delivered() -> bool:
        done = {s["invoice_id"] for s in statuses(stack) if s["status"] == "delivered"}
        return done >= {i.id for i in every}

    wait_for(all_delivered, "every invoice delivered")

    for rail, (paid, later, partial, late) in issued.items():
        peer = peers[rail]
        amount = PARTIAL[rail]
        peer.set_payment(paid.idempotency_key, "paid")  # type: ignore[attr-defined]
        for inv in (later, partial):
            peer.set_payment(inv.idempotency_key, "partially_paid", float(amount or 1))  # type: ignore[attr-defined]
        peer.set_payment(late.idempotency_key, "overdue")  # type: ignore[attr-defined]
        # The poller's clock starts at the last delivery, hours apart per poll; the terms
        # run out 30 days later, so only what the stand-in moved is overdue.
        start = max(s["at"] for s in statuses(stack) if s["rail"] == rail)
        terms = start - paid.issued_at + timedelta(days=30)
        ticks = (start + timedelta(hours=n) for n in count())
        clock: Callable[[], datetime] = ticks.__next__
        polling = poller(stack, peer, clock, terms)
        assert polling.poll_once().published == 4
        assert polling.poll_once().published == 0  # an hour on: nothing new, nothing again
        peer.set_payment(later.idempotency_key, "paid")  # type: ignore[attr-defined]
        assert polling.poll_once().published == 1  # partly paid, then paid
        polling.close()

        steps = {
            inv.number: [s["status"] for s in payment_steps(stack, inv)] for inv in issued[rail]
        }
        assert steps == {
            paid.number: ["paid"],
            later.number: ["partially_paid", "paid"],
            partial.number: ["partially_paid"],
            late.number: ["overdue"],
        }, rail
        [partly] = payment_steps(stack, partial)
        recorded = partly["references"].get("amount_paid")
        assert (recorded and Decimal(recorded)) == amount, rail
        assert partly["rail"] == rail and partly["attempt"] == 0
        restarted = poller(stack, peer, clock, terms)
        assert restarted.poll_once().published == 0, f"{rail}: a restart publishes nothing again"
        restarted.close()

    pipeline.start("sink")
    ids = ", ".join(f"'{i.id}'" for i in every)
    pipeline.wait_for(
        lambda: (
            pipeline.count(f"SELECT count() FROM invoices WHERE id IN ({ids})") == len(every)
            and pipeline.count(
                f"SELECT count() FROM invoice_delivery WHERE invoice_id IN ({ids}) "
                "AND payment_status IS NOT NULL"
            )
            == len(every)
        ),
        what="the invoices and their payment status in the store",
    )
    payment = dict(
        query(
            stack,
            f"SELECT number, payment_status FROM invoice_delivery WHERE invoice_id IN ({ids})",
        ).rows
    )
    for paid, later, partial, late in issued.values():
        assert (payment[paid.number], payment[later.number]) == ("paid", "paid")
        assert (payment[partial.number], payment[late.number]) == ("partially_paid", "overdue")

    rows = query(
        stack,
        "SELECT rail, currency, issued, collected, outstanding, failed, refunded "
        "FROM revenue_status WHERE rail IN ('netsuite', 'sap', 'salesforce')",
    ).rows
    got = {r[0]: (r[1], *(Decimal(str(v)) for v in r[2:])) for r in rows}
    for rail, (paid, later, partial, late) in issued.items():
        part = PARTIAL[rail] or Decimal(0)
        collected = paid.total + later.total + part
        outstanding = partial.total - part + late.total
        total = sum((i.total for i in issued[rail]), Decimal(0))
        assert got[rail] == ("EUR", total, collected, outstanding, Decimal(0), Decimal(0)), rail
        assert collected > 0 and outstanding > 0

    shown = railyard(stack, "invoices", "--status", "--rail", "salesforce")
    paid, later, partial, late = issued["salesforce"]
    assert "Revenue per rail and currency" in shown
    assert f"{paid.total + later.total + (PARTIAL['salesforce'] or 0):f}" in shown


def test_railyard_rails_poll_reads_the_rail_from_its_config_until_sigterm(
    stack: Settings, peers: dict[str, RailPeer], running: Callable[..., InProcess]
) -> None:
    peer = peers["sap"]
    running(peer)
    invoice = sample_invoice(7, "sap", "EUR", account=getattr(peer, "account", None))
    publish(stack, [invoice])
    wait_for(lambda: has(stack, invoice.id, "delivered"), f"{invoice.number} delivered")
    peer.set_payment(invoice.idempotency_key, "paid")  # type: ignore[attr-defined]
    env = {
        **os.environ,
        **stack.to_env(),
        **peer.config().to_env(),
        "RAILYARD_RAIL_SAP_PAYMENT_TERMS": "36500d",
        "COLUMNS": "200",
    }
    cli = [sys.executable, "-m", "streams.cli", "rails", "poll", "sap"]
    process = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: payment_steps(stack, invoice) != [], "the paid step", timeout=30)
    finally:
        process.terminate()
        out, err = (b.decode() for b in process.communicate(timeout=30))
    assert process.returncode == 0, out + err[-3000:]
    assert "1 polled, 1 changed, 0 error(s)" in out
    assert [s["status"] for s in payment_steps(stack, invoice)] == ["paid"]
    assert peer.config().values["password"] not in out + err


def test_the_revenue_rule_of_the_docs_example_on_the_engine(tmp_path: Path) -> None:
    """docs/rails.md's five EUR invoices (plus a credit note and a USD invoice no rail has
    reported on), landed as the sink lands them: the view gives the documented sums."""
    from connectors.clickhouse.client import connect
    from connectors.clickhouse.migrate import prepare_store

    settings = Settings(home=tmp_path, clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}")
    client = connect(settings)
    totals = {"A": "100", "B": "200", "C": "300", "D": "400", "E": "500", "F": "-50", "G": "7"}
    prepare_store(client)
    client.command(
        "INSERT INTO invoices_raw (id, number, kind, customer, customer_name, rail, currency, "
        "period_start, period_end, usage_amount, subtotal, discount_total, commitment_true_up, "
        "credits_total, total, idempotency_key, catalog_version, issued_at) VALUES "
        + ", ".join(
            f"('{n}', '{n}', '{'credit_note' if n == 'F' else 'invoice'}', 'c', 'C', 'sap', "
            f"'{'USD' if n == 'G' else 'EUR'}', now(), now(), 0, 0, 0, 0, 0, {t}, '{n}', 'v', now())"
            for n, t in totals.items()
        )
    )
    steps = [
        ("A", "delivered", ""),
        ("A", "paid", ""),
        ("B", "partially_paid", "'amount_paid': '50.00'"),
        ("C", "paid", ""),
        ("C", "refunded", ""),
        ("D", "payment_failed", ""),
        ("E", "voided", ""),
    ]
    client.command(
        "INSERT INTO invoice_status_raw (invoice_id, number, customer, rail, status, attempt, "
        "rail_refs, at) VALUES "
        + ", ".join(
            f"('{n}', '{n}', 'c', 'sap', '{s}', 0, {{{refs}}}, now64() + {k})"
            for k, (n, s, refs) in enumerate(steps)
        )
    )
    rows = client.query(
        "SELECT currency, invoices, issued, collected, outstanding, failed, refunded "
        "FROM revenue_status ORDER BY currency"
    ).result_rows
    money = [tuple(Decimal(v) for v in row[2:]) for row in rows]
    assert [row[:2] for row in rows] == [("EUR", 5), ("USD", 1)]
    assert money[0] == (Decimal(1500), Decimal(150), Decimal(550), Decimal(400), Decimal(300))
    assert money[1] == (Decimal(7), Decimal(0), Decimal(7), Decimal(0), Decimal(0))
    status = dict(client.query("SELECT number, payment_status FROM invoice_delivery").result_rows)
    assert (status["B"], status["C"], status["E"]) == ("partially_paid", "refunded", "voided")
