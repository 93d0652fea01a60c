"""The oracle's screening: every line billed or accounted for, judged against an explicit as_of."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.domain.catalog import Catalog, parse_catalog
from streams.domain.rating.periods import period_of_month
from streams.domain.rating.screening import (
    EPOCH,
    NotBilled,
    NotBilledReason,
    default_as_of,
    screen,
)
from streams.domain.rating.simulate import simulate
from streams.domain.rejections import Reason
from streams.domain.validation import Limits

CATALOG_YAML = textwrap.dedent(
    """\
    meters:
      - {key: api_calls, event_type: api.calls, aggregation: SUM, value_property: calls}
    customers:
      - key: acme
        name: Acme
        billing: {currency: USD, anchor_day: 1, rail: stripe, account: cus_A1, segment: self_service, region: us-east-1}
      - key: globex
        name: Globex
        billing: {currency: EUR, anchor_day: 15, rail: netsuite, account: "0042", segment: enterprise, region: eu-west-1}
    subjects:
      - {customer: acme, effective_from: 2026-01-01T00:00:00Z, subject: key_a}
      - {customer: globex, effective_from: 2026-01-01T00:00:00Z, subject: key_g}
    plans:
      - key: calls-usd
        currency: USD
        rate_card:
          - {meter: api_calls, model: per_unit, unit_amount: "0.01"}
      - key: calls-eur
        currency: EUR
        rate_card:
          - {meter: api_calls, model: per_unit, unit_amount: "0.01"}
    subscriptions:
      - {customer: acme, plan: calls-usd, effective_from: 2026-01-01T00:00:00Z}
      - {customer: globex, plan: calls-eur, effective_from: 2026-01-01T00:00:00Z}
    """
)
AS_OF = datetime(2026, 12, 1, 1, tzinfo=UTC)
LIMITS = Limits()  # 40 days old at most, 1 hour of clock skew
GRACE = timedelta(hours=1)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    found, problems = parse_catalog(CATALOG_YAML, "screening.yaml")
    assert found is not None, "\n".join(map(str, problems))
    return found


def line(n: int | str, at: datetime | str, subject: str = "key_a", **data: Any) -> str:
    time = at if isinstance(at, str) else at.isoformat().replace("+00:00", "Z")
    event = {
        "specversion": "1.0",
        "id": f"e{n}",
        "source": "gw",
        "type": "api.calls",
        "subject": subject,
        "time": time,
        "data": data or {"calls": 1},
    }
    return json.dumps(event)


NOV = datetime(2026, 11, 10, tzinfo=UTC)


def test_every_line_not_billed_is_listed_with_its_line_and_reason(catalog: Catalog) -> None:
    lines = [
        line(1, NOV),  # 1: billed
        "",  # 2: blank, skipped but counted
        "not json",  # 3
        line(1, NOV),  # 4: duplicate of line 1
        line(5, NOV, calls=-3),  # 5: negative
        line(6, NOV, subject="key_nobody"),  # 6: unattributed
        line(7, AS_OF - LIMITS.max_age - timedelta(seconds=1)),  # 7: too old
        line(8, AS_OF + LIMITS.max_skew + timedelta(seconds=1)),  # 8: from the future
        json.dumps({"id": "e9", "source": "gw", "type": "api.calls"}),  # 9: no subject
        line(10, NOV, subject="key_g"),  # 10: billed
    ]
    out = screen(catalog, lines, AS_OF, LIMITS)
    assert [
        (n.line, n.reason, n.dead_letter, n.id, n.source, n.first_line) for n in out.not_billed
    ] == [
        (3, NotBilledReason.REJECTED, Reason.MALFORMED_PAYLOAD, None, None, None),
        (4, NotBilledReason.DUPLICATE, None, "e1", "gw", 1),
        (5, NotBilledReason.REJECTED, Reason.NEGATIVE_VALUE, "e5", "gw", None),
        (6, NotBilledReason.UNATTRIBUTED, None, "e6", "gw", None),
        (7, NotBilledReason.TOO_OLD, Reason.TIMESTAMP_OUT_OF_RANGE, "e7", "gw", None),
        (8, NotBilledReason.REJECTED, Reason.TIMESTAMP_OUT_OF_RANGE, "e8", "gw", None),
        (9, NotBilledReason.REJECTED, Reason.MISSING_FIELD, "e9", "gw", None),
    ]
    assert [customer for customer, _ in out.pairs] == ["acme", "globex"]
    details = {n.line: n.detail for n in out.not_billed}
    assert details[4] == "same source and id as line 1"
    assert "key_nobody" in details[6] and "2026-11-10T00:00:00Z" in details[6]
    as_of = "as_of 2026-12-01T01:00:00Z"
    assert details[7] == f"time 2026-10-22T00:59:59Z is more than 40d before {as_of}"
    assert details[8] == f"time 2026-12-01T02:00:01Z is more than 1h after {as_of}"
    # The counts existing callers read: ingest's dead letters (too old included), and the rest.
    assert out.rejected == {
        "malformed_payload": 1,
        "negative_value": 1,
        "timestamp_out_of_range": 2,
        "missing_field": 1,
    }
    assert (out.duplicates, out.unattributed, out.accepted) == (1, 1, 3)


def test_the_age_and_skew_bounds_are_inclusive(catalog: Catalog) -> None:
    oldest, newest = AS_OF - LIMITS.max_age, AS_OF + LIMITS.max_skew
    tick = timedelta(microseconds=1)
    lines = [line(1, oldest), line(2, newest), line(3, oldest - tick), line(4, newest + tick)]
    out = screen(catalog, lines, AS_OF, LIMITS)
    assert out.accepted == 2
    assert [(n.line, n.reason) for n in out.not_billed] == [
        (3, NotBilledReason.TOO_OLD),
        (4, NotBilledReason.REJECTED),
    ]


def test_a_line_first_rejected_does_not_make_its_twin_a_duplicate(catalog: Catalog) -> None:
    # Ingest remembers accepted events only: the second copy is judged on its own.
    lines = [line(1, NOV, calls=-1), line(1, NOV)]
    out = screen(catalog, lines, AS_OF, LIMITS)
    assert [(n.line, n.reason) for n in out.not_billed] == [(1, NotBilledReason.REJECTED)]
    assert out.accepted == 1


def test_simulate_reports_the_same_records_and_keeps_its_counts(catalog: Catalog) -> None:
    lines = [line(1, NOV), line(1, NOV), "{", line(4, NOV, subject="key_x"), line(5, EPOCH)]
    result = simulate(catalog, lines, "2026-11", AS_OF)
    assert [(n.line, n.reason.value) for n in result.not_billed] == [
        (2, "duplicate"),
        (3, "rejected"),
        (4, "unattributed"),
        (5, "too_old"),
    ]
    assert all(isinstance(n, NotBilled) for n in result.not_billed)
    assert result.rejected == {"malformed_payload": 1, "timestamp_out_of_range": 1}
    assert (result.duplicates, result.unattributed, result.accepted) == (1, 1, 2)


# The default as_of: a period's close, decided by the catalog and the lines only.


def test_a_period_defaults_to_the_latest_close_that_loses_nothing(catalog: Catalog) -> None:
    # November's periods: acme's ends Dec 1, globex's (anchor 15) Dec 15.
    whole_month = [
        line(i, datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=i)) for i in range(30)
    ]
    # Judged at Dec 15, November's first days would be over 40 days old: Dec 1 it is.
    assert default_as_of(catalog, whole_month, "2026-11", GRACE, LIMITS) == AS_OF
    # Usage running into December, within both closes' reach: the latest close.
    late = [line(i, datetime(2026, 11, 20, tzinfo=UTC) + timedelta(days=i)) for i in range(20)]
    dec15 = datetime(2026, 12, 15, 1, tzinfo=UTC)
    assert default_as_of(catalog, late, "2026-11", GRACE, LIMITS) == dec15
    # No usage at all: the latest end among the customers' periods starting that month.
    assert default_as_of(catalog, [], "2026-11", GRACE, LIMITS) == dec15


def test_without_a_period_the_last_period_with_usage_closes_the_run(catalog: Catalog) -> None:
    lines = [
        line(1, datetime(2026, 11, 6, tzinfo=UTC)),
        line(2, datetime(2026, 11, 20, tzinfo=UTC)),
    ]
    assert default_as_of(catalog, lines, None, GRACE, LIMITS) == AS_OF  # acme's period
    globex = [*lines, line(3, datetime(2026, 11, 20, tzinfo=UTC), subject="key_g")]
    dec15 = datetime(2026, 12, 15, 1, tzinfo=UTC)
    assert default_as_of(catalog, globex, None, GRACE, LIMITS) == dec15


def test_a_broken_producer_clock_does_not_move_the_default(catalog: Catalog) -> None:
    lines = [line(i, datetime(2026, 11, 1 + i, tzinfo=UTC)) for i in range(10)]
    broken = [*lines, line(98, "2100-03-08T09:33:38Z"), line(99, "1970-04-26T19:44:03Z")]
    assert default_as_of(catalog, broken, None, GRACE, LIMITS) == AS_OF
    out = screen(catalog, broken, AS_OF, LIMITS)
    assert [(n.line, n.reason.value) for n in out.not_billed] == [(11, "rejected"), (12, "too_old")]


def test_other_defaults(catalog: Catalog) -> None:
    nov = period_of_month(1, "2026-11")
    assert default_as_of(catalog, [], nov, GRACE, LIMITS) == AS_OF
    assert default_as_of(catalog, ["", "junk"], None, GRACE, LIMITS) == EPOCH
    parked = [line(1, NOV, subject="key_nobody")]  # no customer: the event's own time
    assert default_as_of(catalog, parked, None, GRACE, LIMITS) == NOV + GRACE
