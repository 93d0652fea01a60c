"""``railyard usage``: the SQL it sends (the views it reads are tested on the engine in
tests/integration/test_analyst_views.py)."""

from __future__ import annotations

from datetime import date

from streams.cli.metering import usage_daily_sql, usage_span_sql


def test_days_are_read_from_usage_daily_inclusive_and_quoted() -> None:
    assert usage_daily_sql("o'brien", date(2026, 11, 1), date(2026, 11, 30)) == (
        "SELECT day, meter, aggregation, toString(dimensions) AS dims, toString(quantity), "
        "events, late_events FROM usage_daily WHERE customer = 'o\\'brien' "
        "AND day BETWEEN '2026-11-01' AND '2026-11-30' ORDER BY day, meter, dims"
    )


def test_the_span_is_one_exact_quantity_up_to_the_day_after_the_last() -> None:
    assert usage_span_sql("acme", date(2026, 11, 1), date(2026, 11, 30)) == (
        "SELECT meter, aggregation, toString(dimensions) AS dims, toString(quantity), "
        "events, late_events FROM usage_quantity(from = '2026-11-01', to = '2026-12-01') "
        "WHERE customer = 'acme' ORDER BY meter, dims"
    )
