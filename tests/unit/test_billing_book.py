"""The rate stage's billing book: when periods close, what they bill, and corrections."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.files import load_catalog
from streams.domain.billing_book import BillingBook, LateChange, WindowChange
from streams.domain.catalog import Catalog, parse_catalog
from streams.domain.invoice import Invoice, LineKind
from streams.domain.rating.assemble import LateQuantity

EXAMPLE = Path(__file__).parents[2] / "deploy" / "catalog.example.yaml"
WHO = "monarch-labs"  # Starter EUR, anchor day 22: api_calls at EUR 0.46 per started 1000
OCT = datetime(2026, 10, 22, tzinfo=UTC)
NOV = datetime(2026, 11, 22, tzinfo=UTC)
DEC = datetime(2026, 12, 22, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(EXAMPLE)


def calls(at: datetime, value: int, revision: int) -> WindowChange:
    hour = at.replace(minute=0, second=0, microsecond=0)
    return WindowChange(WHO, "api_calls", ("/v1/chat/completions",), hour, Decimal(value), revision)


def api_line(invoice: object) -> Decimal:
    lines = [ln for ln in invoice.lines if ln.meter == "api_calls"]  # type: ignore[attr-defined]
    return sum((ln.amount for ln in lines), Decimal(0))


def october_issued(catalog: Catalog) -> tuple[BillingBook, Invoice]:
    """A book holding 2,500 October calls, with October closed by event time and issued."""
    book = BillingBook(grace=timedelta(hours=1))
    book.fold_windows([calls(OCT + timedelta(days=3), 2500, 10)])
    issued = next_invoice(book, catalog, NOV + timedelta(hours=2))
    book.record_issued(issued)
    return book, issued


def next_invoice(book: BillingBook, catalog: Catalog, until: datetime) -> Invoice:
    """Advance event time to ``until`` and issue the one period it closes."""
    book.advance(until)
    [(_, period)] = book.due(catalog, [WHO])
    invoice = book.invoice(catalog, WHO, period, issued_at=period.end)
    assert invoice is not None
    return invoice


def test_a_period_closes_once_event_time_passes_its_end_plus_grace(catalog: Catalog) -> None:
    book = BillingBook(grace=timedelta(hours=1))
    book.fold_windows([calls(OCT + timedelta(days=3), 2500, 10)])
    book.advance(NOV + timedelta(minutes=59))
    assert book.due(catalog, [WHO]) == []
    book.advance(NOV + timedelta(hours=1))
    [(customer, period)] = book.due(catalog, [WHO])
    assert (customer, period.start, period.end) == (WHO, OCT, NOV)
    invoice = book.invoice(catalog, WHO, period, issued_at=period.end)
    assert invoice is not None and api_line(invoice) == Decimal("1.38")  # 3 started packages


def test_an_issued_period_is_never_due_again(catalog: Catalog) -> None:
    book, invoice = october_issued(catalog)
    book.record_issued(invoice)  # read back after a restart: still once
    assert book.due(catalog, [WHO]) == []
    assert book.due(catalog, [WHO], month="2026-10") == []


def test_an_operator_close_takes_the_period_starting_that_month(catalog: Catalog) -> None:
    book = BillingBook(grace=timedelta(hours=1))
    book.fold_windows([calls(OCT + timedelta(days=3), 2500, 10)])
    book.advance(OCT + timedelta(days=4))  # the period has not ended
    assert book.due(catalog, [WHO]) == []
    [(_, period)] = book.due(catalog, [WHO], month="2026-10")
    assert (period.start, period.end) == (OCT, NOV)


def test_usage_for_an_issued_period_is_billed_as_an_adjustment_once(catalog: Catalog) -> None:
    book, first = october_issued(catalog)

    # More October usage after the invoice went out: the window's new total, and a late event.
    book.fold_windows([calls(OCT + timedelta(days=3), 3100, 14)])
    book.fold_late(
        [
            LateChange(
                WHO,
                b"d1",
                LateQuantity("api_calls", ("/v1/files",), OCT + timedelta(days=5), Decimal(950)),
            )
        ]
    )
    second = next_invoice(book, catalog, DEC + timedelta(hours=2))
    [adjustment] = [ln for ln in second.lines if ln.kind is LineKind.ADJUSTMENT]
    assert adjustment.amount == Decimal("0.92")  # 4050 calls: 5 packages instead of 3
    assert adjustment.service_start == OCT and first.number in adjustment.description
    assert first.lines == book.issued[(WHO, OCT)].lines  # the issued invoice never changes
    book.record_issued(second)

    third = next_invoice(book, catalog, DEC + timedelta(days=32))
    assert not [ln for ln in third.lines if ln.kind is LineKind.ADJUSTMENT]  # billed once


def test_a_catalog_fix_after_issue_is_an_adjustment(catalog: Catalog) -> None:
    book, issued = october_issued(catalog)
    fixed_text = EXAMPLE.read_text().replace(
        'package_size: 1000, amount: "0.46"', 'package_size: 1000, amount: "0.40"'
    )
    fixed, problems = parse_catalog(fixed_text, "fixed.yaml")
    assert fixed is not None, problems
    invoice = next_invoice(book, fixed, DEC + timedelta(hours=2))
    [adjustment] = [ln for ln in invoice.lines if ln.kind is LineKind.ADJUSTMENT]
    assert adjustment.amount == Decimal("-0.18")  # 3 packages at 0.40 instead of 0.46


def test_replayed_and_older_revisions_change_nothing(catalog: Catalog) -> None:
    book = BillingBook(grace=timedelta(hours=1))
    assert book.fold_windows([calls(OCT + timedelta(days=3), 2500, 10)]) == {WHO}
    assert book.fold_windows([calls(OCT + timedelta(days=3), 2500, 10)]) == set()
    assert book.fold_windows([calls(OCT + timedelta(days=3), 2000, 8)]) == set()
    late = LateChange(WHO, b"d1", LateQuantity("api_calls", ("/v1/files",), OCT, Decimal(5)))
    assert book.fold_late([late]) == {WHO}
    assert book.fold_late([late]) == set()
    assert book.revision(WHO) == 11


def test_batching_does_not_change_the_invoice(catalog: Catalog) -> None:
    updates = [calls(OCT + timedelta(hours=h), 100 + h, 1 + h) for h in range(0, 200, 7)]
    one, many = BillingBook(timedelta(hours=1)), BillingBook(timedelta(hours=1))
    one.fold_windows(updates)
    for u in reversed(updates):
        many.fold_windows([u])
    for book in (one, many):
        book.advance(NOV + timedelta(hours=1))
    [(_, period)] = one.due(catalog, [WHO])
    assert one.invoice(catalog, WHO, period, period.end) == many.invoice(
        catalog, WHO, period, period.end
    )


def test_a_credit_owed_after_the_subscription_ended_goes_out_as_a_credit_note(
    catalog: Catalog,
) -> None:
    book, issued = october_issued(catalog)
    # The subscription ends with October, and a price fix lowers what October cost.
    text = (
        EXAMPLE.read_text()
        .replace(
            "{customer: monarch-labs, plan: starter-eur, effective_from: 2026-07-22T00:00:00Z}",
            "{customer: monarch-labs, plan: starter-eur, effective_from: 2026-07-22T00:00:00Z,"
            " effective_to: 2026-11-22T00:00:00Z}",
        )
        .replace('package_size: 1000, amount: "0.46"', 'package_size: 1000, amount: "0.40"')
    )
    ended, problems = parse_catalog(text, "ended.yaml")
    assert ended is not None, problems
    note = next_invoice(book, ended, DEC + timedelta(hours=2))
    assert note.kind == "credit_note"
    assert note.total == Decimal("-0.18") and note.id != issued.id


def test_usage_seen_before_the_first_watermark_is_redrafted_when_event_time_arrives(
    catalog: Catalog,
) -> None:
    """Windows can reach the rate stage before event time does (the watermark waits for
    every usage partition): the first watermark alone must bring those customers back."""
    book = BillingBook(grace=timedelta(hours=1))
    book.fold_windows([calls(OCT + timedelta(days=3), 2500, 10)])
    assert book.draft(catalog, WHO) is None  # no event time yet: no open period
    assert book.advance(OCT + timedelta(days=3, hours=2)) == {WHO}
    draft = book.draft(catalog, WHO)
    assert draft is not None and api_line(draft) == Decimal("1.38")


def test_only_a_new_day_of_event_time_redrafts_customers_whose_usage_did_not_change(
    catalog: Catalog,
) -> None:
    book = BillingBook(grace=timedelta(hours=1))
    book.fold_windows([calls(OCT + timedelta(days=3), 2500, 10)])
    book.advance(OCT + timedelta(days=3, hours=2))
    assert book.advance(OCT + timedelta(days=3, hours=5)) == set()  # same day, same period
    assert book.advance(OCT + timedelta(days=3, hours=1)) == set()  # never goes back
    assert book.advance(NOV + timedelta(minutes=5)) == {WHO}  # a new period opened
