"""``railyard api`` on the real broker, worker, sink and engine, driven by OpenMeter's own
Python client: what it acknowledges is billed, once, and it answers like OpenMeter."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from openmeter import Client

from connectors.api import keys, keystore
from connectors.processes import spawn
from streams.settings import Settings
from tests.integration.harness import Pipeline, railyard, scalar

pytestmark = pytest.mark.integration

CUSTOMER = "nakatomi-io"
SUBJECT = "key_7bc746c4d3f98809"  # nakatomi-io's since 2025-03-01
SOURCE = "tests/api"
CLOCK = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
"""Where the processes' clocks start (RAILYARD_CLOCK_START): the usage is the day before."""


def make_key(settings: Settings, name: str, sources: tuple[str, ...] = ()) -> str:
    key = keys.new_key()
    path = keystore.key_file(settings)
    stored = keystore.load(path)
    keystore.save(path, [*stored, keys.create(name, sources, key, CLOCK)])
    return key


def start_api(pipeline: Pipeline) -> str:
    """Spawn ``railyard api`` like the worker and sink; its base URL once it listens."""
    settings = pipeline.settings.with_(api_port=0)
    port_file = settings.run_dir / "api.port"
    port_file.unlink(missing_ok=True)
    pipeline.procs["api"] = spawn("api", ["api"], settings)
    pipeline.wait_for(port_file.exists, timeout=60, what="the API to listen")
    url = f"http://127.0.0.1:{port_file.read_text()}"
    pipeline.wait_for(lambda: requests.get(url + "/openapi.json", timeout=2).ok, timeout=30)
    return url


@pytest.fixture
def served(pipeline: Pipeline) -> Iterator[tuple[Pipeline, str, str]]:
    pipeline.settings = pipeline.settings.with_(clock_start=CLOCK.isoformat())
    key = make_key(pipeline.settings, "tests")
    pipeline.start()
    yield pipeline, start_api(pipeline), key


def day() -> datetime:
    return CLOCK.replace(hour=0, minute=0) - timedelta(days=1)


def token_event(i: int, start: datetime, prefix: str = "e") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{prefix}-{i}",
        "source": SOURCE,
        "type": "ai.tokens",
        "subject": SUBJECT,
        "time": (start + timedelta(minutes=7 * i)).isoformat().replace("+00:00", "Z"),
        "data": {
            "tokens": f"{i}.125",  # a string: set below as a number with every digit
            "model": ("gpt-4o", "claude")[i % 2],
            "direction": ("input", "output")[i % 3 % 2],
        },
    }


def ingested(settings: Settings, pattern: str) -> int:
    sql = f"SELECT count() FROM usage_events WHERE id LIKE '{pattern}'"
    return int(scalar(settings, sql))  # type: ignore[call-overload]


def windowed(settings: Settings, start: datetime) -> int:
    sql = (
        "SELECT sum(events) + sum(late_events) FROM usage_quantity("
        f"from = '{start:%Y-%m-%d}', to = '{start + timedelta(days=1):%Y-%m-%d}')"
        f" WHERE customer = '{CUSTOMER}' AND meter = 'ai_tokens'"
    )
    return int(scalar(settings, sql) or 0)  # type: ignore[call-overload]


def test_openmeter_client_ingests_and_queries_like_railyard_usage(
    served: tuple[Pipeline, str, str],
) -> None:
    pipeline, url, key = served
    client = Client(endpoint=url, token=key)
    start = day()
    events = [token_event(i, start) for i in range(120)]
    for e in events:
        e["data"]["tokens"] = Decimal(e["data"]["tokens"])  # exact on the wire
    raw = [{**e, "data": {**e["data"], "tokens": float(e["data"]["tokens"])}} for e in events]
    client.events.ingest_events(raw[:100])  # application/cloudevents-batch+json
    client.events.ingest_event(raw[100])  # application/cloudevents+json
    client.events.ingest_events_json(raw[101:])  # application/json, an array
    pipeline.wait_for(lambda: windowed(pipeline.settings, start) == 120, what="120 events")

    meters = {m.slug: m for m in client.meters.list()}
    assert meters["ai_tokens"].aggregation == "SUM"
    assert meters["ai_tokens"].event_type == "ai.tokens"

    result = client.meters.query_json(
        "ai_tokens",
        from_parameter=start,
        to=start + timedelta(days=1),
        filter_customer_id=[CUSTOMER],
        group_by=["model", "direction"],
    )
    got = {
        (r.group_by["model"], r.group_by["direction"]): Decimal(str(r.value)) for r in result.data
    }
    expected: dict[tuple[str, str], Decimal] = {}
    for e in events:
        g = (e["data"]["model"], e["data"]["direction"])
        expected[g] = expected.get(g, Decimal(0)) + e["data"]["tokens"]
    assert got == expected
    assert all(r.customer_id == CUSTOMER for r in result.data)

    # the same numbers as `railyard usage` for that customer and day
    out = railyard(
        pipeline.settings,
        "usage",
        "--customer",
        CUSTOMER,
        "--from",
        f"{start:%Y-%m-%d}",
        "--to",
        f"{start:%Y-%m-%d}",
    )
    span = out.split("what an invoice bills")[1]
    usage = {}
    for line in span.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 4 and cells[1] == "ai_tokens":
            dims = dict(re.findall(r"'(\w+)':'([\w.-]+)'", cells[3]))
            usage[(dims["model"], dims["direction"])] = Decimal(cells[4])
    assert usage == got, span

    hourly = client.meters.query_json(
        "ai_tokens",
        from_parameter=start,
        to=start + timedelta(days=1),
        window_size="HOUR",
        filter_customer_id=[CUSTOMER],
    )
    assert sum(Decimal(str(r.value)) for r in hourly.data) == sum(expected.values())
    assert all(r.window_end - r.window_start == timedelta(hours=1) for r in hourly.data)


def test_problems_keys_and_limits(served: tuple[Pipeline, str, str]) -> None:
    pipeline, url, key = served
    events_url = url + "/api/v1/events"
    batch = "application/cloudevents-batch+json"
    start = day()
    good = [token_event(i, start, "p") for i in range(3)]
    for e in good:
        e["data"]["tokens"] = 1
    bad = [
        good[0],
        {**good[1], "subject": ""},
        {**good[2], "data": {"tokens": -1, "model": "x", "direction": "input"}},
        "not an event",
    ]
    auth = {"Authorization": f"Bearer {key}"}

    answer = requests.post(events_url, json=bad, headers={**auth, "Content-Type": batch})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 400 and problem["instance"] == "/api/v1/events"
    assert [(p["index"], p["id"], p["reason"]) for p in problem["invalid_events"]] == [
        (1, "p-1", "missing_field"),
        (2, "p-2", "negative_value"),
        (3, None, "malformed_payload"),
    ]

    big = b"[" + b" " * pipeline.settings.api_max_body_bytes + b"]"
    answer = requests.post(events_url, data=big, headers={**auth, "Content-Type": batch})
    assert answer.status_code == 413 and answer.json()["status"] == 413

    assert requests.post(events_url, json=good, headers={"Content-Type": batch}).status_code == 401
    wrong = {"Authorization": "Bearer ryk_nope", "Content-Type": batch}
    assert requests.post(events_url, json=good, headers=wrong).status_code == 401
    limited = railyard(
        pipeline.settings, "api-keys", "create", "--name", "limited", "--source", "somewhere/else"
    ).strip()
    assert (
        limited.startswith("ryk_")
        and limited not in keystore.key_file(pipeline.settings).read_text()
    )
    listed = railyard(pipeline.settings, "api-keys", "list")
    assert "limited" in listed and "somewhere/else" in listed
    answer = requests.post(
        events_url, json=good, headers={"Authorization": f"Bearer {limited}", "Content-Type": batch}
    )
    assert answer.status_code == 403
    assert len(answer.json()["invalid_events"]) == 3
    # the console in the same process: an operator's key opens it, a producer's limited
    # key does not, and no key does not
    console = url + "/console/"
    assert requests.get(console, headers=auth, allow_redirects=False).status_code == 200
    limited_auth = {"Authorization": f"Bearer {limited}"}
    assert requests.get(console, headers=limited_auth, allow_redirects=False).status_code == 401
    assert requests.get(console, allow_redirects=False).status_code in (303, 401)
    railyard(pipeline.settings, "api-keys", "revoke", "tests")
    assert (
        requests.post(events_url, json=good, headers={**auth, "Content-Type": batch}).status_code
        == 401
    )

    # nothing of the refused requests got in; a key for the right source does
    right = make_key(pipeline.settings, "right", (SOURCE,))
    answer = requests.post(
        events_url, json=good, headers={"Authorization": f"Bearer {right}", "Content-Type": batch}
    )
    assert answer.status_code == 204, answer.text
    pipeline.wait_for(lambda: ingested(pipeline.settings, "p-%") == 3, what="the 3 good events")
    time.sleep(1)
    assert ingested(pipeline.settings, "p-%") == 3

    assert requests.get(url + "/api/v1/openapi.json").json()["paths"]["/api/v1/events"]

    began = time.monotonic()  # SIGTERM ends it within seconds, cleanly
    assert pipeline.procs.pop("api").stop(timeout=30) == 0
    assert time.monotonic() - began < 10

    # a key's rate: 3 events at once, then one every 100 s
    pipeline.settings = pipeline.settings.with_(api_rate=0.01, api_burst=3)
    url = start_api(pipeline)
    slow = {"Authorization": f"Bearer {right}", "Content-Type": batch}
    assert requests.post(url + "/api/v1/events", json=good, headers=slow).status_code == 204
    answer = requests.post(url + "/api/v1/events", json=good[:1], headers=slow)
    assert answer.status_code == 429 and 90 <= int(answer.headers["Retry-After"]) <= 100
    assert answer.json()["type"].endswith("rate-limited")


def test_kill_during_load_loses_no_acknowledged_event(served: tuple[Pipeline, str, str]) -> None:
    """Clients retry every batch until it is acknowledged, with the same ids, while the API
    is SIGKILLed and restarted: every acknowledged id is billed, and once."""
    pipeline, url, key = served
    start = day()
    base = {"url": url}
    acked: set[str] = set()
    lock = threading.Lock()
    clients, batches, size = 4, 20, 100

    def run(c: int) -> None:
        session = requests.Session()
        for b in range(batches):
            prefix = f"k{c}x{b}"
            batch = [token_event(i, start, prefix) for i in range(size)]
            for e in batch:
                e["data"]["tokens"] = 1
            while True:
                try:
                    answer = session.post(
                        base["url"] + "/api/v1/events",
                        json=batch,
                        headers={"Authorization": f"Bearer {key}"},
                        timeout=10,
                    )
                except requests.RequestException:
                    time.sleep(0.2)
                    continue
                if answer.status_code == 204:
                    with lock:
                        acked.update(e["id"] for e in batch)
                    break
                time.sleep(0.2)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 500:  # polled closely: the load takes a few seconds in all
        assert time.monotonic() < deadline, "no batch acknowledged"
        time.sleep(0.005)
    pipeline.kill("api")
    killed_at = len(acked)
    base["url"] = start_api(pipeline)
    for t in threads:
        t.join(120)
    total = clients * batches * size
    assert killed_at < total, "the load ended before the kill"
    assert len(acked) == total
    again = [token_event(i, start, "k0x0") for i in range(size)]  # a retry of an acked batch
    for e in again:
        e["data"]["tokens"] = 1
    headers = {"Authorization": f"Bearer {key}"}
    assert requests.post(base["url"] + "/api/v1/events", json=again, headers=headers).ok
    pipeline.wait_for(
        lambda: ingested(pipeline.settings, "k%") >= total, what="every acknowledged event"
    )
    distinct = scalar(
        pipeline.settings, "SELECT uniqExact(id) FROM usage_events WHERE id LIKE 'k%'"
    )
    assert ingested(pipeline.settings, "k%") == distinct == total
    pipeline.wait_for(
        lambda: windowed(pipeline.settings, start) == total, what="the windows to count each once"
    )


def test_backpressure_refuses_while_too_many_events_await_their_ack(stack: Settings) -> None:
    """The publisher on the real broker: a request waits for its own acks, and one that
    would put more events in flight than allowed is refused at once (429)."""
    import asyncio

    from connectors.api.publisher import AckPublisher, Backpressure
    from connectors.kafka.producer import UsageProducer
    from streams.domain.cloudevents import from_cloudevent
    from streams.domain.usage import UsageEvent

    start = day()
    events = []
    for i in range(300):
        e = token_event(i, start, "b")
        e["data"]["tokens"] = 1
        decoded = from_cloudevent(e)
        assert isinstance(decoded, UsageEvent)
        events.append(decoded)
    producer = UsageProducer(stack)
    publisher = AckPublisher(producer, max_inflight=250).start()

    async def run() -> None:
        first = asyncio.create_task(publisher.publish(events[:200]))
        await asyncio.sleep(0)  # the first request is in flight, not yet acknowledged
        assert publisher.inflight == 200
        with pytest.raises(Backpressure):
            await publisher.publish(events[200:300])
        await first
        assert publisher.inflight == 0
        await publisher.publish(events[200:300])  # acknowledged: room again

    try:
        asyncio.run(run())
    finally:
        publisher.stop()
        producer.close(10)
