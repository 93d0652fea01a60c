"""Running spend without a broker: the record the rate stage sends, and alerts only on crossings."""

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.files import load_catalog
from streams.domain.billing_book import BillingBook, WindowChange
from streams.domain.spend import running_spend
from streams.wire.records import SPEND

EXAMPLE = Path(__file__).parents[2] / "deploy" / "catalog.example.yaml"
WHO = "initech-io"  # Pro EUR (45.00 platform fee), anchor day 3, a 20.00 EUR welcome credit
AT = datetime(2026, 11, 10, 9, tzinfo=UTC)


def open_book() -> BillingBook:
    book = BillingBook(grace=timedelta(hours=1))
    book.fold_windows([WindowChange(WHO, "api_calls", ("/v1/x",), AT, Decimal(10), 4)])
    book.advance(AT + timedelta(hours=2))
    return book


def test_the_open_period_burns_the_credit_and_says_so_once() -> None:
    catalog = load_catalog(EXAMPLE)
    book = open_book()
    draft = book.draft(catalog, WHO)
    assert draft is not None and draft.period_start == datetime(2026, 11, 3, tzinfo=UTC)
    first = running_spend(book, catalog, WHO, draft, reported=None)
    assert first is not None
    record = first.record
    # 45.00 platform fee; 10 calls fall in the free tier; the 20.00 grant pays part of it
    assert (record.subtotal, record.credits_total, record.total) == (
        Decimal("45.00"),
        Decimal("20.00"),
        Decimal("25.00"),
    )
    assert record.usage_amount == Decimal("0.00") and record.as_of == book.watermark
    [grant] = record.balances
    assert (grant.granted, grant.consumed, grant.remaining) == (Decimal(20), Decimal(20), 0)
    kinds = sorted((str(a.kind), a.percent) for a in first.alerts)
    assert kinds == [("exhausted", 100), ("threshold", 50), ("threshold", 80)]  # 100 %: exhausted
    again = running_spend(book, catalog, WHO, draft, reported=first.consumed)
    assert again is not None and again.alerts == () and again.record == record


def test_more_usage_raises_the_revision_and_the_record_encodes() -> None:
    catalog = load_catalog(EXAMPLE)
    book = open_book()
    before = running_spend(book, catalog, WHO, book.draft(catalog, WHO), None)  # type: ignore[arg-type]
    book.fold_windows([WindowChange(WHO, "api_calls", ("/v1/x",), AT, Decimal(12), 5)])
    after = running_spend(book, catalog, WHO, book.draft(catalog, WHO), None)  # type: ignore[arg-type]
    assert before is not None and after is not None
    assert after.record.revision == before.record.revision + 1
    assert SPEND.decode(SPEND.encode(asdict(after.record)))["revision"] == after.record.revision


def test_an_unknown_customer_has_no_spend() -> None:
    catalog = load_catalog(EXAMPLE)
    book = open_book()
    draft = book.draft(catalog, WHO)
    assert draft is not None
    assert running_spend(book, catalog, "nobody", draft, None) is None
