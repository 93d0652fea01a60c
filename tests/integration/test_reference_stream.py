"""The stream's invoices equal the independent reference rater's, on random catalogs.

A random catalog (tests/reference/catalogs.py: every price model and aggregation,
tier bounds hit exactly and by one, JPY, EUR/USD and KWD/BHD, a subject moving
mid-period, plan changes, credits with priorities and expiries, duplicates and
rejects) is applied, its usage produced through the real broker, and each month's
periods closed in turn with ``railyard close-period``. The invoices on the
``invoices.<rail>`` topics must equal what the reference prices from the same
lines, to the minor unit: it shares no code with the stream. The quantity billed
must not depend on the window size, nor on the usage arriving in order.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.kafka.billing_commands import request_close
from streams.settings import Settings
from tests.integration.conftest import namespace
from tests.integration.harness import Pipeline
from tests.integration.test_billing import rail_invoices, settled
from tests.integration.test_ingest import publish
from tests.reference.catalogs import scenario
from tests.reference.compare import differences
from tests.reference.rater import reference_invoices
from tests.reference.usage import screen

pytestmark = pytest.mark.integration

FIRST_MONTH = (2026, 5)
"""Usage from May 2026 on: in the past, so every event is accepted (up to 10 years old)."""
CASES = [
    # Seed 5: all five currencies, commitments, caps, discounts, an upgrade and two
    # pauses inside a period, late starts; seed 0: JPY, KWD, BHD and USD, a
    # commitment, a cap and a discount line, a pause onto another plan inside a
    # period, late starts and an early end.
    pytest.param(5, "hour", False, id="seed5-hourly"),
    # Plan changes and late starts at 00:00 UTC inside a period (the validator refuses
    # any other time): each day window lies in one plan, as the events' times do.
    pytest.param(5, "day", False, id="seed5-daily"),
    # The second half of the usage first: the first half is late for every aggregation.
    pytest.param(0, "minute", True, id="seed0-minutes-second-half-first"),
]


@pytest.mark.parametrize(("seed", "window", "second_half_first"), CASES)
def test_streamed_invoices_equal_the_reference(
    seed: int, window: str, second_half_first: bool, kafka: Settings, tmp_path: Path
) -> None:
    s = scenario(seed, aligned=True, first_month=FIRST_MONTH)
    lines = list(s.lines)
    batches = [lines]
    late: dict[str, object] = {}
    if second_half_first:
        half = len(lines) // 2
        batches = [lines[half:], lines[:half]]
        lines = batches[0] + batches[1]
        # One usage partition, so the watermark moves (and the first half is late); a
        # long grace, so no period closes by event time before its usage is in.
        late = {"usage_partitions": 1, "period_grace": timedelta(days=365)}
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(s.yaml)
    catalog = s.catalog
    settings = namespace(
        kafka,
        tmp_path / "home",
        catalog=catalog_file,
        window_size=window,
        max_event_age=timedelta(days=3650),
        **({"period_grace": timedelta(hours=1)} | late),
    )
    accepted = screen(catalog, lines).accepted
    # ``lines`` in the order produced: the reference de-duplicates in that order too.
    expected = [b for month in s.months for b in reference_invoices(catalog, lines, month)]
    assert len(expected) >= len(catalog.customers), "every customer is billed at least once"
    pipeline = Pipeline(settings)
    try:
        pipeline.start("sink", "worker")
        for batch in batches:  # the second half settled first: the watermark has moved on
            publish(settings, batch)
            pipeline.wait_for(lambda: settled(settings), timeout=300, what="a batch to settle")
        pipeline.wait_for(
            lambda: pipeline.count("SELECT count() FROM usage_events") >= accepted,
            timeout=300,
            what="every accepted event to land",
        )
        pipeline.wait_for(lambda: settled(settings), timeout=300, what="the stages to settle")
        if second_half_first:
            pipeline.wait_for(
                lambda: pipeline.count("SELECT count() FROM late_usage") > 0,
                timeout=60,
                what="usage past the lateness bound (the first half)",
            )
        for month in s.months:  # in order: each close burns credit the next one sees
            request_close(settings, month)
            due = {b.invoice_id for b in expected if f"{b.period.start:%Y-%m}" <= month}
            issued(pipeline, settings, due, timeout=180)
        pipeline.wait_for(lambda: settled(settings), timeout=120, what="the last close")
        streamed = list(rail_invoices(settings).values())
    finally:
        pipeline.stop()
    found = differences(expected, streamed, seed=seed, asked=f"stream, {window} windows")
    if found:
        pytest.fail("expected is the reference, got is the stream:\n" + "\n".join(found), False)


def issued(pipeline: Pipeline, settings: Settings, due: set[str], timeout: float) -> None:
    """Wait until every invoice in ``due`` is on a rail topic; give up quietly (the
    comparison then names what is missing or different)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not due <= set(rail_invoices(settings)):
        pipeline.check_alive()
        time.sleep(1.0)
