"""A rail runner's metrics against what it recorded on invoices.status and invoices.dlq."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from connectors.kafka import topics
from connectors.rails.sandbox import RailPeer
from streams.settings import Settings
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.integration.rails_harness import InProcess, dead_letters, has, statuses, wait_for

pytestmark = pytest.mark.integration


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_delivered_retried_and_dead_lettered_match_the_runs_records(
    stack: Settings, webhook: RailPeer, running: Callable[..., InProcess]
) -> None:
    rail = webhook.rail
    names = ("delivered", "retried")
    before = {n: sample(f"railyard_invoices_{n}_total", rail=rail) for n in names}
    rejected_before = sample("railyard_invoices_dead_lettered_total", rail=rail, reason="rejected")

    fine = [sample_invoice(i, rail) for i in (1, 2)]
    webhook.fail_next(2, 500)
    publish(stack, fine)
    runner = running(webhook)
    wait_for(lambda: all(has(stack, i.id, "delivered") for i in fine), "two deliveries")
    refused = sample_invoice(3, rail)
    webhook.reject_next(400, "refused (test)")
    publish(stack, [refused])
    wait_for(lambda: has(stack, refused.id, "failed"), "the refused invoice to be failed")

    topic = topics.topic_name(stack, topics.rail_topic(rail))

    def caught_up() -> bool:
        lag = [
            s.value
            for family in REGISTRY.collect()
            if family.name == "railyard_consumer_lag_messages"
            for s in family.samples
            if s.labels["topic"] == topic
        ]
        return bool(lag) and not any(lag)

    wait_for(caught_up, "the runner's lag to be 0 once everything is committed", timeout=15)
    runner.stop()

    recorded = Counter(s["status"] for s in statuses(stack))
    letters = Counter(d["reason"] for d in dead_letters(stack))
    assert recorded["delivered"] == 2 and recorded["retrying"] == 2 and letters == {"rejected": 1}
    got = {n: sample(f"railyard_invoices_{n}_total", rail=rail) - before[n] for n in names}
    assert got == {"delivered": recorded["delivered"], "retried": recorded["retrying"]}
    rejected = sample("railyard_invoices_dead_lettered_total", rail=rail, reason="rejected")
    assert rejected - rejected_before == letters["rejected"]
    state = {"rail": rail, "railyard_rail_circuit": "closed"}
    assert REGISTRY.get_sample_value("railyard_rail_circuit", state) == 1
