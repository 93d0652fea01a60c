"""The columnar usage.attributed record (v2): what ingest sends is what windowing folds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from streams.agents.window import message_contributions
from streams.domain.attribution import route
from streams.domain.dedup import event_digest
from streams.domain.metering import contributions
from streams.domain.usage import UsageEvent
from streams.domain.watermarks import SourceWatermarks
from streams.wire.records import ATTRIBUTED
from tests.unit.test_attribution import MOVE, catalog


def record(i: int, subject: str, time: datetime, calls: str = "1.5") -> dict[str, Any]:
    return {
        "id": f"e{i}",
        "source": "api-gateway",
        "type": "api.calls",
        "subject": subject,
        "time": time,
        "values": {"calls": Decimal(calls)},
        "dimensions": {},
        "dataschema": None,
        "specversion": "1.0",
    }


def test_contributions_survive_the_round_trip_in_order_and_progress_is_observed() -> None:
    cat = catalog()
    t0 = MOVE - timedelta(hours=1)
    records = [
        record(i, "key_a", t0 + timedelta(minutes=i), calls=f"{i}.25") for i in range(120)
    ] + [record(500, "key_nobody", t0), record(501, "key_g", MOVE)]
    digests = [event_digest(r["source"], r["id"]) for r in records]
    routed = route(
        [UsageEvent(**r) for r in records], digests, cat, target=lambda customer: len(customer) % 2
    )
    assert routed.parked == [120], "the stranger is parked, by index"
    progress = SourceWatermarks(4)
    got = []
    for columns in routed.by_target.values():
        for body in columns.bodies(cat.version, 3, size=50):
            body["progress"] = [{"source_partition": 0, "event_time": 7}]
            got.extend(message_contributions(ATTRIBUTED.encode(body), cat, progress))
    expected = []
    for r, d in zip(records, digests, strict=True):
        customer = cat.customer_for(r["subject"], r["time"])
        if customer is not None:
            meters = cat.meter_index.by_type[r["type"]]
            expected.extend((customer, c) for c in contributions(UsageEvent(**r), meters, d))
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    assert {customer for customer, _ in got} == {"acme", "globex"}, "key_a moved at MOVE"
    assert progress._latest[3] == t0 + timedelta(minutes=119), "the latest event of the source"
    assert progress._latest[0] == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=7)


def test_bodies_split_events_and_their_contributions_together() -> None:
    cat = catalog()
    records = [record(i, "key_g", MOVE + timedelta(seconds=i)) for i in range(7)]
    digests = [event_digest(r["source"], r["id"]) for r in records]
    (columns,) = route(
        [UsageEvent(**r) for r in records], digests, cat, target=lambda customer: 0
    ).by_target.values()
    bodies = columns.bodies("v", 0, size=3)
    assert [len(b["id"]) for b in bodies] == [3, 3, 1]
    assert [b["event"] for b in bodies] == [[0, 1, 2], [0, 1, 2], [0]]
    assert [i for b in bodies for i in b["id"]] == [f"e{i}" for i in range(7)]
