"""Invoice assembly: lines in application order, each rounded once, terms and credits exact."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.catalog import Catalog, Customer, Plan, Subscription, parse_catalog
from streams.domain.invoice import (
    CreditApplication,
    DocumentKind,
    Invoice,
    InvoiceLine,
    LineKind,
    TierSlice,
    invoice_identity,
)
from streams.domain.rating import BillingPeriod, UnpricedUsage, period_of_month
from streams.domain.rating.assemble import (
    LateQuantity,
    WindowTotal,
    credit_note,
    rate_period,
    running_total,
    usage_amount,
)
from streams.domain.rating.terms import RatingError

D = Decimal
NOV = period_of_month(1, "2026-11")  # 30 days
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

CATALOG = dedent(
    """\
    meters:
      - {key: api_calls, event_type: api.calls, aggregation: SUM, value_property: calls, group_by: [endpoint]}
      - {key: ai_tokens, event_type: ai.tokens, aggregation: SUM, value_property: tokens, group_by: [model, direction]}
      - {key: seats, event_type: seats.active, aggregation: MAX, value_property: seats, group_by: [workspace]}
      - {key: level, event_type: tank.level, aggregation: LATEST, value_property: litres}
    customers:
      - key: acme
        name: Acme Inc
        billing: {currency: USD, anchor_day: 1, rail: stripe, account: cus_A1, segment: self_service, region: us-east-1}
        credits:
          - {key: acme-promo, amount: "5.00", currency: USD, effective_from: 2026-10-01T00:00:00Z, priority: 10}
          - {key: acme-prepaid, amount: "100.00", currency: USD, effective_from: 2026-01-01T00:00:00Z}
      - key: globex
        name: Globex
        billing: {currency: EUR, anchor_day: 1, rail: netsuite, account: "0042", segment: enterprise, region: eu-west-1}
      - key: late-co
        billing: {currency: USD, anchor_day: 1, rail: stripe, segment: self_service, region: us-east-1}
    plans:
      - key: starter-usd
        currency: USD
        rate_card:
          - {key: base_fee, model: flat, amount: "10.00"}
          - {meter: api_calls, model: per_unit, unit_amount: "0.002"}
      - key: pro-usd
        currency: USD
        rate_card:
          - {key: platform_fee, model: flat, amount: "30.00"}
          - {meter: api_calls, model: per_unit, unit_amount: "0.001", included: 1000}
          - meter: ai_tokens
            model: graduated
            tiers:
              - {up_to: 1000, unit_amount: "0"}
              - {unit_amount: "0.0001"}
          - {meter: seats, model: per_unit, unit_amount: "10.00"}
          - {meter: level, model: per_unit, unit_amount: "1.00"}
      - key: ent-eur
        currency: EUR
        maximum_spend: "900.00"
        rate_card:
          - {key: support, model: flat, amount: "100.00"}
          - meter: ai_tokens
            model: dimension
            included: 1000
            prices:
              - {when: {model: big, direction: input}, unit_amount: "0.01"}
              - {when: {model: big, direction: output}, unit_amount: "0.03"}
              - {when: {model: small, direction: input}, unit_amount: "0.001"}
    subscriptions:
      - {customer: acme, plan: starter-usd, effective_from: 2026-01-01T00:00:00Z, effective_to: 2026-11-11T00:00:00Z}
      - {customer: acme, plan: pro-usd, effective_from: 2026-11-11T00:00:00Z}
      - customer: globex
        plan: ent-eur
        effective_from: 2026-01-01T00:00:00Z
        contract: {reference: MSA-1, minimum_commitment: "500.00", discount_percent: 10}
      - {customer: late-co, plan: pro-usd, effective_from: 2026-12-01T00:00:00Z}
    """
)


def catalog_of(text: str = CATALOG) -> Catalog:
    catalog, problems = parse_catalog(text, "rating.yaml")
    assert catalog is not None, "\n".join(map(str, problems))
    return catalog


CAT = catalog_of()


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def w(meter: str, group: tuple[str, ...], start: datetime, value: str) -> WindowTotal:
    return WindowTotal(meter, group, start, D(value))


def lines_of(invoice: Invoice | None, kind: LineKind) -> list[InvoiceLine]:
    assert invoice is not None
    return [line for line in invoice.lines if line.kind is kind]


def tokens(model: str, direction: str, value: str, day: int = 3) -> WindowTotal:
    return w("ai_tokens", (model, direction), at(day), value)


# (a) + (b): usage per segment, fees prorated, one rounding per line.


def test_a_mid_period_upgrade_rates_each_segment_and_prorates_each_fee() -> None:
    windows = [
        w("api_calls", ("/v1/chat",), at(2, 5), "1500"),  # starter: 0.002 each
        w("api_calls", ("/v1/embed",), at(10, 23), "500"),  # starter, the last hour
        w("api_calls", ("/v1/chat",), at(11), "1800"),  # pro: 1000 included, 0.001 each
        w("api_calls", ("/v1/embed",), at(20), "700"),
    ]
    invoice = rate_period(CAT, "acme", NOV, windows, consumed_credits={"acme-promo": D(5)})
    assert invoice is not None
    assert [(ln.kind, ln.price_key, ln.amount) for ln in invoice.lines] == [
        (LineKind.USAGE, "api_calls", D("4.00")),  # starter: 2000 x 0.002
        # pro: 2500 less 20/30 of the 1000 included units, at 0.001 each
        (LineKind.USAGE, "api_calls", D("1.83")),
        (LineKind.RECURRING, "base_fee", D("3.33")),  # 10.00 x 10/30
        (LineKind.RECURRING, "platform_fee", D("20.00")),  # 30.00 x 20/30
    ]
    starter, pro = lines_of(invoice, LineKind.USAGE)
    assert (starter.quantity, starter.unit_amount) == (D(2000), D("0.002"))
    assert (starter.service_start, starter.service_end) == (NOV.start, at(11))
    assert (pro.quantity, pro.service_start, pro.service_end) == (
        D("1833.333333334"),
        at(11),
        NOV.end,
    )
    assert "666.666666666 included" in pro.description and "prorated" in pro.description
    fees = lines_of(invoice, LineKind.RECURRING)
    assert [(f.service_start, f.service_end) for f in fees] == [
        (NOV.start, at(11)),
        (at(11), NOV.end),
    ]
    assert invoice.subtotal == D("29.16") == sum(ln.amount for ln in invoice.lines)
    # The promo is used up, so the prepaid grant pays the lot.
    assert invoice.credits == (CreditApplication("acme-prepaid", D("29.16")),)
    assert invoice.total == 0


def test_a_whole_period_under_one_plan_is_not_prorated() -> None:
    invoice = rate_period(CAT, "acme", period_of_month(1, "2026-12"), [])
    assert invoice is not None
    assert [(ln.description, ln.amount) for ln in invoice.lines] == [("platform_fee", D("30.00"))]


def test_included_units_are_free_and_never_a_credit() -> None:
    period = period_of_month(1, "2026-12")
    below = rate_period(CAT, "acme", period, [w("api_calls", ("/a",), period.start, "800")])
    (line,) = lines_of(below, LineKind.USAGE)
    assert (line.quantity, line.amount) == (D(0), D("0.00"))
    above = rate_period(CAT, "acme", period, [w("api_calls", ("/a",), period.start, "1000.5")])
    (line,) = lines_of(above, LineKind.USAGE)
    assert (line.quantity, line.amount) == (D("0.5"), D("0.00"))  # 0.0005 rounds half-even


def test_graduated_lines_carry_their_tiers() -> None:
    period = period_of_month(1, "2026-12")
    invoice = rate_period(
        CAT, "acme", period, [w("ai_tokens", ("a", "input"), period.start, "1500")]
    )
    (line,) = lines_of(invoice, LineKind.USAGE)
    assert line.amount == D("0.05")
    assert line.tiers == (
        TierSlice(D(1000), D(1000), D(0), D(0), D(0)),
        TierSlice(None, D(500), D("0.0001"), D(0), D("0.0500")),
    )


def test_max_meters_bill_each_groups_peak_and_add_the_groups() -> None:
    period = period_of_month(1, "2026-12")
    s = period.start
    windows = [
        w("seats", ("research",), s, "3"),
        w("seats", ("research",), s + HOUR, "5"),
        w("seats", ("default",), s + DAY, "2"),
    ]
    (line,) = lines_of(rate_period(CAT, "acme", period, windows), LineKind.USAGE)
    assert (line.quantity, line.amount) == (D(7), D("70.00"))


def test_dimension_prices_give_one_line_per_combination_and_use_included_units_in_order() -> None:
    windows = [
        tokens("small", "input", "500"),
        tokens("big", "output", "100"),
        tokens("big", "input", "600", day=4),
        tokens("big", "input", "400", day=5),
    ]
    usage = lines_of(rate_period(CAT, "globex", NOV, windows), LineKind.USAGE)
    assert [(ln.dimensions, ln.quantity, ln.unit_amount, ln.amount) for ln in usage] == [
        # 1000 included units go to the combinations in value order: big/input takes them all.
        ((("model", "big"), ("direction", "input")), D(0), D("0.01"), D("0.00")),
        ((("model", "big"), ("direction", "output")), D(100), D("0.03"), D("3.00")),
        ((("model", "small"), ("direction", "input")), D(500), D("0.001"), D("0.50")),
    ]


def test_usage_nobody_priced_stops_rating() -> None:
    with pytest.raises(UnpricedUsage, match="model='small', direction='output'"):
        rate_period(CAT, "globex", NOV, [tokens("small", "output", "1001")])


# (c) discount, (d) commitment, (e) cap.


def test_discount_comes_off_usage_and_fees_then_the_commitment_tops_up() -> None:
    windows = [tokens("big", "output", "12000")]  # 1000 included, then 330.00
    invoice = rate_period(CAT, "globex", NOV, windows)
    assert invoice is not None
    assert [(ln.kind, ln.amount) for ln in invoice.lines] == [
        (LineKind.USAGE, D("330.00")),
        (LineKind.RECURRING, D("100.00")),
        (LineKind.DISCOUNT, D("-43.00")),
        (LineKind.COMMITMENT, D("113.00")),
    ]
    assert invoice.lines[2].description == "Discount 10% (MSA-1)"
    assert (invoice.subtotal, invoice.discount_total, invoice.commitment_true_up) == (
        D("500.00"),
        D("-43.00"),
        D("113.00"),
    )


@pytest.mark.parametrize(
    "output_tokens, true_up, cap, subtotal",
    [
        ("0", "410.00", None, "500.00"),  # fees only: 100 - 10 = 90
        (
            "16185.185",
            "0.00",
            None,
            "500.00",
        ),  # 1000 included; 455.56 + 100 - 55.56 = 500.00 exactly
        ("21000", None, None, "630.00"),  # 600 + 100 - 70
        ("41000", None, "-270.00", "900.00"),  # 1200 + 100 - 130 = 1170, capped at 900
    ],
)
def test_commitment_under_at_and_over_and_the_cap(
    output_tokens: str, true_up: str | None, cap: str | None, subtotal: str
) -> None:
    windows = [tokens("big", "output", output_tokens)] if output_tokens != "0" else []
    invoice = rate_period(CAT, "globex", NOV, windows)
    assert invoice is not None
    commitment = lines_of(invoice, LineKind.COMMITMENT)
    capped = lines_of(invoice, LineKind.CAP)
    if true_up is None or D(true_up) == 0:
        assert commitment == []
    else:
        assert [ln.amount for ln in commitment] == [D(true_up)]
    assert [ln.amount for ln in capped] == ([] if cap is None else [D(cap)])
    assert invoice.subtotal == D(subtotal)


def test_commitment_and_cap_are_prorated_over_a_partial_subscription() -> None:
    text = CATALOG.replace(
        "    effective_from: 2026-01-01T00:00:00Z\n    contract: {reference: MSA-1",
        "    effective_from: 2026-11-16T00:00:00Z\n    contract: {reference: MSA-1",
    )
    invoice = rate_period(catalog_of(text), "globex", NOV, [])
    assert invoice is not None
    assert [(ln.kind, ln.amount) for ln in invoice.lines] == [
        (LineKind.RECURRING, D("50.00")),  # half a period of support
        (LineKind.DISCOUNT, D("-5.00")),
        (LineKind.COMMITMENT, D("205.00")),  # half of 500, less 45
    ]


# (f) adjustments, (g) credits.


def test_adjustments_follow_the_terms_and_are_outside_the_cap() -> None:
    fix = InvoiceLine(LineKind.ADJUSTMENT, "Correction to INV-1", D("-12.34"), service_start=at(1))
    invoice = rate_period(CAT, "globex", NOV, [tokens("big", "output", "41000")], adjustments=[fix])
    assert invoice is not None
    assert invoice.lines[-1] == fix and invoice.subtotal == D("887.66")


def test_an_adjustment_finer_than_the_currency_is_refused() -> None:
    fix = InvoiceLine(LineKind.ADJUSTMENT, "bad", D("0.001"))
    with pytest.raises(ValueError, match="minor unit"):
        rate_period(CAT, "globex", NOV, [], adjustments=[fix])


def test_credits_burn_by_priority_and_never_below_zero() -> None:
    windows = [w("api_calls", ("/a",), at(2), "1000")]  # 2.00 + 3.33 fee
    invoice = rate_period(CAT, "acme", NOV, windows)
    assert invoice is not None and invoice.subtotal == D("25.33")
    assert invoice.credits == (
        CreditApplication("acme-promo", D("5.00")),
        CreditApplication("acme-prepaid", D("20.33")),
    )
    assert (invoice.credits_total, invoice.total) == (D("25.33"), D("0.00"))
    big = rate_period(
        CAT, "acme", NOV, windows, consumed_credits={"acme-promo": D(5), "acme-prepaid": D(90)}
    )
    assert big is not None and big.credits == (CreditApplication("acme-prepaid", D("10.00")),)
    assert big.total == D("15.33")


def test_a_negative_subtotal_burns_no_credit() -> None:
    refund = InvoiceLine(LineKind.ADJUSTMENT, "refund", D("-50.00"))
    invoice = rate_period(CAT, "acme", NOV, [], adjustments=[refund])
    assert invoice is not None and invoice.credits == () and invoice.total == invoice.subtotal < 0


# Rounding: once per line, per currency and mode.


@pytest.mark.parametrize(
    "currency, rounding, amount",
    [
        ("USD", "half_even", "0.12"),  # 0.125 -> even
        ("USD", "half_up", "0.13"),
        ("USD", "down", "0.12"),
        ("USD", "up", "0.13"),
        ("EUR", "half_even", "0.12"),
        ("JPY", "half_even", "0"),  # 0.125 yen
        ("JPY", "up", "1"),
        ("KWD", "half_even", "0.125"),
        ("KWD", "down", "0.125"),
    ],
)
def test_each_line_is_rounded_once_to_its_currency(
    currency: str, rounding: str, amount: str
) -> None:
    text = dedent(
        f"""\
        rounding: {rounding}
        meters:
          - {{key: api_calls, event_type: api.calls, aggregation: SUM, value_property: calls}}
        customers:
          - key: c
            billing: {{currency: {currency}, rail: stripe, segment: self_service, region: r}}
        plans:
          - key: p
            currency: {currency}
            rate_card: [{{meter: api_calls, model: per_unit, unit_amount: "0.002"}}]
        subscriptions:
          - {{customer: c, plan: p, effective_from: 2026-01-01T00:00:00Z}}
        """
    )
    # 62.5 calls at 0.002 is 0.125 exactly, but only once the windows are added up.
    values = ["20.833333333", "20.833333333", "20.833333334"]
    windows = [w("api_calls", (), at(2, h), v) for h, v in enumerate(values)]
    invoice = rate_period(catalog_of(text), "c", NOV, windows)
    (line,) = lines_of(invoice, LineKind.USAGE)
    assert line.amount == D(amount) and str(line.amount) == amount
    assert invoice is not None and invoice.subtotal == sum(ln.amount for ln in invoice.lines)


# Identity, ownership, the edges.


def test_identity_and_billing_profile_come_from_the_catalog() -> None:
    invoice = rate_period(CAT, "globex", NOV, [])
    assert invoice is not None
    assert (invoice.id, invoice.number, invoice.idempotency_key) == invoice_identity(
        "globex", NOV.start, "EUR"
    )
    assert (invoice.customer_name, invoice.rail, invoice.account, invoice.currency) == (
        "Globex",
        "netsuite",
        "0042",
        "EUR",
    )
    assert (invoice.kind, invoice.catalog_version, invoice.issued_at) == (
        DocumentKind.INVOICE,
        CAT.version,
        NOV.end,
    )
    again = rate_period(catalog_of(), "globex", NOV, [], issued_at=NOV.end + HOUR)
    assert again is not None and again.id == invoice.id and again.issued_at == NOV.end + HOUR
    assert rate_period(CAT, "globex", period_of_month(1, "2026-12"), []) != invoice


def test_equal_input_in_any_order_gives_an_equal_invoice() -> None:
    windows = [tokens("big", "output", "100"), tokens("small", "input", "5000", day=7)]
    assert rate_period(CAT, "globex", NOV, windows) == rate_period(
        CAT, "globex", NOV, windows[::-1]
    )


def test_no_subscription_no_invoice() -> None:
    assert rate_period(CAT, "late-co", NOV, [w("api_calls", ("/a",), at(2), "5")]) is None
    assert rate_period(CAT, "nobody", NOV, []) is None


def test_a_plan_in_another_currency_is_a_rating_error() -> None:
    globex = CAT.customer("globex")
    acme = CAT.customer("acme")
    assert globex is not None and acme is not None
    broken = replace(
        CAT,
        customers=(replace(acme, billing=replace(acme.billing, currency="EUR")), globex),
    )
    with pytest.raises(
        RatingError, match="billed in EUR but its plan 'starter-usd' is priced in USD"
    ):
        rate_period(broken, "acme", NOV, [])


def test_windows_outside_the_period_are_ignored_and_a_window_twice_is_refused() -> None:
    outside = [
        w("api_calls", ("/a",), NOV.end, "999"),
        w("api_calls", ("/a",), NOV.start - HOUR, "9"),
    ]
    assert rate_period(CAT, "acme", NOV, outside) == rate_period(CAT, "acme", NOV, [])
    twice = [w("api_calls", ("/a",), at(2), "1")] * 2
    with pytest.raises(ValueError, match="given twice"):
        rate_period(CAT, "acme", NOV, twice)


def test_late_usage_joins_every_aggregation_latest_by_event_time() -> None:
    period = period_of_month(1, "2026-12")
    s = period.start
    windows = [
        w("api_calls", ("/a",), s, "1000"),
        w("seats", ("x",), s, "3"),
        w("level", (), s, "7"),
    ]
    late = [
        LateQuantity("api_calls", ("/a",), s + DAY, D(500)),
        LateQuantity("seats", ("x",), s + DAY, D(4)),
        LateQuantity("level", (), s + DAY, D(100)),
        LateQuantity("api_calls", ("/a",), s - DAY, D(99)),  # another period's
    ]
    usage = {
        ln.meter: ln.quantity
        for ln in lines_of(rate_period(CAT, "acme", period, windows, late), LineKind.USAGE)
    }
    # the late level reading (a day later) is the period's latest: it is billed
    assert usage == {"api_calls": D(500), "seats": D(4), "level": D(100)}


def test_running_total_counts_usage_before_as_of_only() -> None:
    windows = [w("api_calls", ("/a",), at(2), "1000"), w("api_calls", ("/a",), at(5), "500")]
    draft = running_total(CAT, "acme", NOV, windows, as_of=at(3))
    assert draft is not None and usage_amount(draft) == D("2.00") and draft.issued_at == at(3)
    full = rate_period(CAT, "acme", NOV, windows)
    assert full is not None and usage_amount(full) == D("3.00")


def test_credit_note_for_a_correction_without_a_next_period() -> None:
    fix = InvoiceLine(
        LineKind.ADJUSTMENT, "Correction to INV-9", D("-7.10"), service_start=NOV.start
    )
    note = credit_note(CAT, "globex", NOV, [fix])
    assert note.kind is DocumentKind.CREDIT_NOTE and note.number.startswith("CN-")
    assert (note.id, note.number, note.idempotency_key) == invoice_identity(
        "globex", NOV.start, "EUR", DocumentKind.CREDIT_NOTE
    )
    assert (note.subtotal, note.total, note.credits) == (D("-7.10"), D("-7.10"), ())
    with pytest.raises(ValueError, match="must credit something"):
        credit_note(CAT, "globex", NOV, [replace(fix, amount=D("7.10"))])
    with pytest.raises(RatingError):
        credit_note(CAT, "nobody", NOV, [fix])


# Property: rating window by window equals rating the period total in one window (SUM).

window_values = st.lists(
    st.decimals(min_value=0, max_value=10**9, places=9, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=30,
)


SERIES = [
    ("acme", "api_calls", ("/a",)),  # per unit, 1000 included
    ("acme", "ai_tokens", ("m", "input")),  # graduated
    ("globex", "ai_tokens", ("big", "input")),  # dimension, included, discount, commitment, cap
]


@settings(max_examples=80, deadline=None)
@given(window_values, st.sampled_from(SERIES), st.data())
def test_window_by_window_equals_one_window_with_the_total(
    values: list[Decimal], series: tuple[str, str, tuple[str, ...]], data: st.DataObject
) -> None:
    customer, meter, group = series
    period = period_of_month(1, "2026-12")
    hours = data.draw(
        st.lists(
            st.integers(0, 30 * 24 - 1), min_size=len(values), max_size=len(values), unique=True
        )
    )
    spread = [
        w(meter, group, period.start + h * HOUR, str(v)) for h, v in zip(hours, values, strict=True)
    ]
    total = sum(values, D(0))
    one = [w(meter, group, period.start + HOUR * hours[0], str(total))]
    assert rate_period(CAT, customer, period, spread) == rate_period(CAT, customer, period, one)


def test_hand_built_catalogs_rate_too() -> None:
    plan = Plan("p", "JPY", ())
    sub = Subscription("c", "p", datetime(2026, 1, 1, tzinfo=UTC))
    c = CAT.customer("acme")
    assert c is not None
    cat = Catalog(
        customers=(Customer("c", "C", replace(c.billing, currency="JPY")),),
        plans=(plan,),
        subscriptions=(sub,),
    )
    invoice = rate_period(cat, "c", BillingPeriod(at(1), at(2)), [])
    assert invoice is not None and invoice.lines == () and invoice.total == 0
