"""A rotated credential pauses the rail instead of dead-lettering every invoice.

The webhook peer answers 401 to a signature made with another secret: for the
runner that is a rail outage (connectors.rails.policy), so the breaker opens, the
partition pauses, a probe goes after each cool-down, and nothing is dead-lettered.
A runner with the right secret then delivers every invoice once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from connectors.rails.sandbox import RailPeer
from streams.settings import Settings
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.integration.rails_harness import (
    InProcess,
    dead_letters,
    has,
    statuses,
    wait_for,
)

pytestmark = pytest.mark.integration

WRONG = "whsec_rotated_away_0000"


def test_an_auth_failure_pauses_the_rail_and_dead_letters_nothing(
    stack: Settings,
    webhook: RailPeer,
    running: Callable[..., InProcess],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="railyard.rails")
    invoices = [sample_invoice(n, "webhook") for n in range(5)]
    publish(stack, invoices)
    wrong = running(webhook, secret=WRONG, breaker_cooldown="1s", breaker_max_cooldown="1s")
    wait_for(lambda: wrong.runner.stats.outages >= 3, "three failed probes")
    wrong.stop()

    # Every call was a probe of the one paused rail: the first invoice only, never the
    # others, and none of them dead-lettered.
    calls = len(webhook.requests())
    assert 3 <= calls <= 6, calls
    assert wrong.runner.stats.failed == 0 and dead_letters(stack) == []
    steps = statuses(stack)
    assert {s["invoice_id"] for s in steps} == {invoices[0].id}
    assert {(s["status"], s["error_code"]) for s in steps} == {("retrying", "http_401")}
    assert all(webhook.created(i.idempotency_key) == 0 for i in invoices)
    assert "refuses our credentials" in caplog.text and WRONG not in caplog.text

    # Credentials fixed (a restart with the right secret): each invoice delivered once.
    running(webhook)
    wait_for(lambda: all(has(stack, i.id, "delivered") for i in invoices), "every delivery")
    assert all(webhook.created(i.idempotency_key) == 1 for i in invoices)
    assert dead_letters(stack) == []


def test_a_transient_outage_opens_the_breaker_and_a_probe_closes_it(
    stack: Settings, webhook: RailPeer, running: Callable[..., InProcess]
) -> None:
    invoices = [sample_invoice(n, "webhook") for n in range(20)]
    webhook.fail_next(6, 503)
    publish(stack, invoices)
    started = time.monotonic()
    runner = running(webhook, breaker_threshold="3", breaker_cooldown="1s", retry_base="50ms")
    wait_for(lambda: all(has(stack, i.id, "delivered") for i in invoices), "every delivery")
    assert time.monotonic() - started >= 1.0, "the breaker's cool-down was not kept"
    assert runner.runner.stats.outages >= 1
    assert all(webhook.created(i.idempotency_key) == 1 for i in invoices)
    assert dead_letters(stack) == []
    # Three failures opened it; the probes then used the remaining three 503s, and no
    # invoice beyond the first three was tried before the rail answered again.
    failing = {s["invoice_id"] for s in statuses(stack) if s["status"] == "retrying"}
    assert failing <= {i.id for i in invoices[:3]}
