"""The stream's invoices equal the independent reference rater's, on random catalogs.

A random catalog (tests/reference/catalogs.py: every price model and aggregation,
tier bounds hit exactly and by one, JPY, EUR/USD and KWD/BHD, a subject moving
mid-period, plan changes, credits with priorities and expiries, duplicates and
rejects) is applied, its usage produced through the real broker in event-time
order, and each month's periods closed in turn with ``railyard close-period``. The
invoices on the ``invoices.<rail>`` topics must equal what the reference prices
from the same lines, to the minor unit: it shares no code with the stream.
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

SEEDS = (5, 12)
"""Two catalogs with commitments, caps, discounts, JPY, KWD and BHD among them."""
FIRST_MONTH = (2026, 5)
"""Usage from May 2026 on: in the past, so every event is accepted (up to 10 years old)."""


@pytest.mark.parametrize("seed", SEEDS)
def test_streamed_invoices_equal_the_reference(seed: int, kafka: Settings, tmp_path: Path) -> None:
    s = scenario(seed, aligned=True, first_month=FIRST_MONTH)
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(s.yaml)
    catalog = s.catalog
    settings = namespace(
        kafka,
        tmp_path / "home",
        catalog=catalog_file,
        max_event_age=timedelta(days=3650),
        period_grace=timedelta(hours=1),
    )
    accepted = screen(catalog, s.lines).accepted
    expected = [b for month in s.months for b in reference_invoices(catalog, s.lines, month)]
    assert len(expected) >= len(catalog.customers), "every customer is billed at least once"
    pipeline = Pipeline(settings)
    try:
        pipeline.start("sink", "worker")
        publish(settings, list(s.lines))
        pipeline.wait_for(
            lambda: pipeline.count("SELECT count() FROM usage_events") >= accepted,
            timeout=300,
            what="every accepted event to land",
        )
        pipeline.wait_for(lambda: settled(settings), timeout=300, what="the stages to settle")
        for month in s.months:  # in order: each close burns credit the next one sees
            request_close(settings, month)
            due = {b.invoice_id for b in expected if f"{b.period.start:%Y-%m}" <= month}
            issued(pipeline, settings, due, timeout=180)
        pipeline.wait_for(lambda: settled(settings), timeout=120, what="the last close")
        streamed = list(rail_invoices(settings).values())
    finally:
        pipeline.stop()
    found = differences(expected, streamed, seed=seed, asked="stream")
    assert not found, "expected is the reference, got is the stream:\n" + "\n".join(found)


def issued(pipeline: Pipeline, settings: Settings, due: set[str], timeout: float) -> None:
    """Wait until every invoice in ``due`` is on a rail topic; give up quietly (the
    comparison then names what is missing or different)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not due <= set(rail_invoices(settings)):
        pipeline.check_alive()
        time.sleep(1.0)
