"""The poller's pure parts: which documents are due a poll, and each rail's fields as a status."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from connectors.rails.notifications.mapping import PaymentStatus
from connectors.rails.polling.schedule import SETTLED, Backoff, Tracked, due, next_poll, polled
from connectors.rails.polling.states import (
    READERS,
    PaymentState,
    StateError,
    changed,
    event_id,
    netsuite_state,
    salesforce_state,
    sap_state,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BACKOFF = Backoff(timedelta(minutes=5), timedelta(hours=1))
TODAY = date(2026, 3, 10)
TERMS = timedelta(days=30)

# --- schedule -------------------------------------------------------------------------------


def test_a_document_is_due_at_delivery_then_after_a_doubling_wait_capped() -> None:
    doc = Tracked("inv-1", T0)
    assert next_poll(doc, BACKOFF) == T0
    waits = []
    for _ in range(6):
        doc = polled(doc, T0, None, changed=False)
        waits.append(next_poll(doc, BACKOFF) - T0)  # type: ignore[operator]
    assert waits == [timedelta(minutes=m) for m in (10, 20, 40, 60, 60, 60)]


def test_a_change_starts_the_doubling_over_and_records_the_status() -> None:
    doc = Tracked("inv-1", T0, last_poll=T0, unchanged=4)
    after = polled(doc, T0 + timedelta(hours=1), PaymentStatus.PARTIALLY_PAID, changed=True)
    assert (after.unchanged, after.status) == (0, PaymentStatus.PARTIALLY_PAID)
    assert next_poll(after, BACKOFF) == T0 + timedelta(hours=1, minutes=5)
    same = polled(after, T0 + timedelta(hours=2), PaymentStatus.OVERDUE, changed=False)
    assert same.status == PaymentStatus.PARTIALLY_PAID  # no change: the recorded status stays


@pytest.mark.parametrize("status", list(PaymentStatus))
def test_only_paid_voided_and_refunded_documents_stop_being_polled(status: PaymentStatus) -> None:
    doc = Tracked("inv-1", T0, status=status)
    settled = status in {PaymentStatus.PAID, PaymentStatus.VOIDED, PaymentStatus.REFUNDED}
    assert (next_poll(doc, BACKOFF) is None) == settled
    assert doc.settled == settled and (status in SETTLED) == settled


def test_due_lists_what_is_due_at_now_most_overdue_first_up_to_a_limit() -> None:
    docs = [
        Tracked("c", T0 + timedelta(minutes=1)),  # delivered after now: not yet
        Tracked("b", T0 - timedelta(minutes=1)),
        Tracked("a", T0 - timedelta(minutes=1)),  # same time as b: by invoice id
        Tracked("d", T0 - timedelta(hours=2), last_poll=T0 - timedelta(minutes=9), unchanged=1),
        Tracked("e", T0 - timedelta(hours=2), last_poll=T0 - timedelta(minutes=11), unchanged=1),
        Tracked("f", T0 - timedelta(hours=9), status=PaymentStatus.PAID),
        Tracked("g", T0),  # due exactly now
    ]
    assert [d.invoice_id for d in due(docs, T0, BACKOFF)] == ["a", "b", "e", "g"]
    assert [d.invoice_id for d in due(docs, T0, BACKOFF, limit=2)] == ["a", "b"]
    assert due([], T0, BACKOFF) == []


def test_a_huge_number_of_unchanged_polls_waits_the_maximum() -> None:
    assert BACKOFF.wait(10_000) == timedelta(hours=1)
    assert BACKOFF.wait(0) == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("interval", "maximum"),
    [(timedelta(0), timedelta(hours=1)), (timedelta(hours=2), timedelta(hours=1))],
)
def test_a_backoff_needs_a_positive_interval_below_its_maximum(
    interval: timedelta, maximum: timedelta
) -> None:
    with pytest.raises(ValueError, match="poll interval"):
        Backoff(interval, maximum)


# --- NetSuite --------------------------------------------------------------------------------


def ns(status: str, code: str, total: Any, remaining: Any, **more: Any) -> dict[str, Any]:
    return {
        "status": {"id": code, "refName": status},
        "total": total,
        "amountRemaining": remaining,
        "tranDate": "2026-03-01",
        **more,
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (ns("Open", "A", 120.5, 120.5), PaymentState(None, "Open")),
        (
            ns("Open", "A", 120.5, 20.25),
            PaymentState(PaymentStatus.PARTIALLY_PAID, "Open", Decimal("100.25")),
        ),
        (
            ns("Paid In Full", "B", 120.5, 0),
            PaymentState(PaymentStatus.PAID, "Paid In Full", Decimal("120.5")),
        ),
        (ns("Open", "A", 99, 0), PaymentState(PaymentStatus.PAID, "Open", Decimal(99))),
        (ns("Voided", "V", 99, 99), PaymentState(PaymentStatus.VOIDED, "Voided")),
        (
            ns("Open", "A", 120.5, 120.5, dueDate="2026-03-09"),
            PaymentState(PaymentStatus.OVERDUE, "Open"),
        ),
        (
            ns("Open", "A", 120.5, 0.5, dueDate="2026-03-09"),
            PaymentState(PaymentStatus.OVERDUE, "Open", Decimal(120)),
        ),
        (ns("Open", "A", 120.5, 120.5, dueDate="2026-03-10"), PaymentState(None, "Open")),
        # no dueDate: tranDate + terms (2026-01-01 + 30 days = 2026-01-31, before today)
        (
            ns("Open", "A", 10, 10, tranDate="2026-01-01"),
            PaymentState(PaymentStatus.OVERDUE, "Open"),
        ),
        (
            {"status": "Paid In Full", "total": 5, "amountRemaining": 0},
            PaymentState(PaymentStatus.PAID, "Paid In Full", Decimal(5)),
        ),
        (
            {"status": {"id": "B"}, "total": 5, "amountRemaining": 0},
            PaymentState(PaymentStatus.PAID, "B", Decimal(5)),
        ),
    ],
)
def test_netsuite_status_and_amount_remaining(
    fields: dict[str, Any], expected: PaymentState
) -> None:
    assert netsuite_state(fields, TODAY, TERMS) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"status": {"id": "A"}, "amountRemaining": 1},
        {"status": {"id": "A"}, "total": "lots", "amountRemaining": 1},
        {"status": {"id": "A"}, "total": True, "amountRemaining": 1},
        ns("Open", "A", 10, 10, dueDate="soon"),
    ],
)
def test_netsuite_fields_it_cannot_read_are_an_error(fields: dict[str, Any]) -> None:
    with pytest.raises(StateError):
        netsuite_state(fields, TODAY, TERMS)


# --- SAP -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ordered", "expected"),
    [
        ("C", datetime(2026, 3, 1, tzinfo=UTC), PaymentStatus.PAID),
        ("B", datetime(2026, 1, 1, tzinfo=UTC), PaymentStatus.PARTIALLY_PAID),
        ("A", datetime(2026, 3, 1, tzinfo=UTC), None),
        ("A", datetime(2026, 2, 8, tzinfo=UTC), None),  # due 2026-03-10: today, not past
        ("A", datetime(2026, 2, 7, tzinfo=UTC), PaymentStatus.OVERDUE),
        ("A", None, None),
    ],
)
def test_sap_overall_process_status(
    code: str, ordered: datetime | None, expected: PaymentStatus | None
) -> None:
    fields = {"OverallSDProcessStatus": code, "SalesOrderDate": ordered, "TotalNetAmount": "9.99"}
    state = sap_state(fields, TODAY, TERMS)
    assert (state.status, state.rail_status, state.amount_paid) == (expected, code, None)


@pytest.mark.parametrize("code", ["", "D", None])
def test_sap_an_unknown_process_status_is_an_error(code: str | None) -> None:
    with pytest.raises(StateError, match="OverallSDProcessStatus"):
        sap_state({"OverallSDProcessStatus": code}, TODAY, TERMS)


# --- Salesforce ------------------------------------------------------------------------------


def sf(status: str, paid: Any = None, issued: str = "2026-03-01T10:00:00+00:00") -> dict[str, Any]:
    return {"Status__c": status, "Amount_Paid__c": paid, "Total__c": 80.0, "Issued_At__c": issued}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (sf("Issued"), PaymentState(None, "Issued")),
        (sf("Issued", 0.0), PaymentState(None, "Issued")),
        (sf("Paid"), PaymentState(PaymentStatus.PAID, "Paid", Decimal(80))),
        (
            sf("Partially Paid", 30.5),
            PaymentState(PaymentStatus.PARTIALLY_PAID, "Partially Paid", Decimal("30.5")),
        ),
        (sf("Partially Paid"), PaymentState(PaymentStatus.PARTIALLY_PAID, "Partially Paid")),
        (sf("Overdue"), PaymentState(PaymentStatus.OVERDUE, "Overdue")),
        (sf("Overdue", 10), PaymentState(PaymentStatus.OVERDUE, "Overdue", Decimal(10))),
        (sf("Void", 10), PaymentState(PaymentStatus.VOIDED, "Void")),
        (
            sf("Issued", issued="2026-01-02T00:00:00Z"),
            PaymentState(PaymentStatus.OVERDUE, "Issued"),
        ),
        (
            sf("Issued", 5, issued="2026-01-02T00:00:00Z"),
            PaymentState(PaymentStatus.OVERDUE, "Issued", Decimal(5)),
        ),
        (sf("Issued", 5), PaymentState(PaymentStatus.PARTIALLY_PAID, "Issued", Decimal(5))),
        ({"Status__c": None, "Total__c": 1.0}, PaymentState(None, "Issued")),
    ],
)
def test_salesforce_status_picklist_and_amount_paid(
    fields: dict[str, Any], expected: PaymentState
) -> None:
    assert salesforce_state(fields, TODAY, TERMS) == expected


def test_salesforce_a_value_not_in_the_picklist_is_an_error() -> None:
    with pytest.raises(StateError, match="picklist"):
        salesforce_state(sf("Written Off"), TODAY, TERMS)


# --- changes and event ids -------------------------------------------------------------------


def test_the_polled_rails_are_exactly_those_without_notifications() -> None:
    from connectors.rails.notifications.mapping import MAPPERS

    assert set(READERS) == {"netsuite", "sap", "salesforce"}
    assert not set(READERS) & set(MAPPERS)


@pytest.mark.parametrize(
    ("previous", "previous_paid", "state", "news"),
    [
        (None, None, PaymentState(None, "Open"), False),
        (PaymentStatus.PARTIALLY_PAID, Decimal(5), PaymentState(None, "Open"), False),
        (None, None, PaymentState(PaymentStatus.PAID, "B", Decimal(9)), True),
        (PaymentStatus.PAID, Decimal(9), PaymentState(PaymentStatus.PAID, "B", Decimal(9)), False),
        (
            PaymentStatus.PARTIALLY_PAID,
            Decimal(5),
            PaymentState(PaymentStatus.PARTIALLY_PAID, "A", Decimal(6)),
            True,
        ),
        (
            PaymentStatus.PARTIALLY_PAID,
            Decimal(5),
            PaymentState(PaymentStatus.PARTIALLY_PAID, "A", Decimal("5.0")),
            False,
        ),
        (
            PaymentStatus.PARTIALLY_PAID,
            Decimal(5),
            PaymentState(PaymentStatus.OVERDUE, "A", Decimal(5)),
            True,
        ),
    ],
)
def test_a_state_is_news_only_when_it_differs_from_the_latest_recorded_step(
    previous: PaymentStatus | None,
    previous_paid: Decimal | None,
    state: PaymentState,
    news: bool,
) -> None:
    assert changed(previous, previous_paid, state) is news


def test_event_ids_name_the_invoice_the_step_and_the_status() -> None:
    paid = PaymentState(PaymentStatus.PAID, "B", Decimal(1))
    assert event_id("inv-1", 0, paid) == "poll:inv-1:0:paid"
    assert event_id("inv-1", 0, paid) == event_id("inv-1", 0, paid)  # two pollers, one id
    assert event_id("inv-1", 1, paid) != event_id("inv-1", 0, paid)
    assert event_id("inv-2", 0, paid) != event_id("inv-1", 0, paid)


# --- settings ---------------------------------------------------------------------------------


def test_poll_settings_from_the_rails_config_with_their_defaults() -> None:
    from connectors.rails.config import RailConfig
    from connectors.rails.polling.poller import PollSettings

    default = PollSettings.from_config(RailConfig("sap", {}))
    assert default == PollSettings(Backoff(timedelta(minutes=5), timedelta(hours=6)), TERMS)
    values = {"poll_interval": "90s", "poll_max_interval": "2h", "payment_terms": "14d"}
    given = PollSettings.from_config(RailConfig("sap", values))
    assert given == PollSettings(Backoff(timedelta(seconds=90), timedelta(hours=2)), timedelta(14))


def test_a_zero_poll_interval_and_a_rail_that_notifies_are_refused_at_start() -> None:
    from connectors.rails.config import RailConfig
    from connectors.rails.polling.poller import PollSettings, start_poller
    from streams.domain.errors import ConfigError
    from streams.settings import Settings

    with pytest.raises(ConfigError, match="rail sap: poll interval"):
        PollSettings.from_config(RailConfig("sap", {"poll_interval": "0s"}))
    with pytest.raises(ConfigError, match="rail stripe: not polled .*railyard rails listen"):
        start_poller(Settings(), RailConfig("stripe", {}), lambda: T0)
