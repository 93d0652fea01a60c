"""Event-time tumbling windows (streams/domain/windows.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.dedup import event_digest
from streams.domain.metering import Contribution
from streams.domain.meters import Aggregation
from streams.domain.windows import (
    LateReason,
    LateUsage,
    Output,
    WindowAggregator,
    WindowKey,
    WindowSize,
    WindowUpdate,
    batch_aggregate,
    window_start,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)

Pair = tuple[str, Contribution]


def contribution(
    at: datetime,
    value: Decimal | str = Decimal(1),
    event: str = "e",
    meter: str = "tokens",
    aggregation: Aggregation = Aggregation.SUM,
    group: tuple[str, ...] = (),
) -> Contribution:
    return Contribution(meter, group, value, at, event_digest("gw", event), aggregation)


def key(start: datetime, customer: str = "acme", meter: str = "tokens") -> WindowKey:
    return WindowKey(customer, meter, (), start)


def updates(outputs: Sequence[Output]) -> list[WindowUpdate]:
    return [o for o in outputs if isinstance(o, WindowUpdate)]


def lates(outputs: Sequence[Output]) -> list[LateUsage]:
    return [o for o in outputs if isinstance(o, LateUsage)]


# -- alignment ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "size", "start"),
    [
        (
            datetime(2024, 5, 1, 12, 34, 56, 789, tzinfo=UTC),
            WindowSize.MINUTE,
            datetime(2024, 5, 1, 12, 34, tzinfo=UTC),
        ),
        (
            datetime(2024, 5, 1, 12, 34, 56, 789, tzinfo=UTC),
            WindowSize.HOUR,
            datetime(2024, 5, 1, 12, tzinfo=UTC),
        ),
        (
            datetime(2024, 5, 1, 12, 34, 56, 789, tzinfo=UTC),
            WindowSize.DAY,
            datetime(2024, 5, 1, tzinfo=UTC),
        ),
        (
            datetime(2024, 5, 1, 12, 35, tzinfo=UTC),
            WindowSize.MINUTE,
            datetime(2024, 5, 1, 12, 35, tzinfo=UTC),
        ),
        (
            datetime(2024, 5, 1, 23, 59, 59, 999_999, tzinfo=UTC),
            WindowSize.DAY,
            datetime(2024, 5, 1, tzinfo=UTC),
        ),
        (datetime(2024, 5, 2, tzinfo=UTC), WindowSize.DAY, datetime(2024, 5, 2, tzinfo=UTC)),
        (
            datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC),
            WindowSize.HOUR,
            datetime(2024, 12, 31, 23, tzinfo=UTC),
        ),
        (
            datetime(2024, 2, 29, 23, 30, tzinfo=UTC),
            WindowSize.DAY,
            datetime(2024, 2, 29, tzinfo=UTC),
        ),
        # Another zone is converted first: 01:30+02:00 is 23:30 UTC the day before.
        (
            datetime(2024, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            WindowSize.DAY,
            datetime(2023, 12, 31, tzinfo=UTC),
        ),
        # A half-hour zone: 10:10+05:30 is 04:40 UTC, in the 04:00 hour.
        (
            datetime(2024, 1, 1, 10, 10, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            WindowSize.HOUR,
            datetime(2024, 1, 1, 4, tzinfo=UTC),
        ),
    ],
)
def test_windows_are_aligned_to_utc(t: datetime, size: WindowSize, start: datetime) -> None:
    got = window_start(t, size)

    assert got == start
    assert got.tzinfo is UTC


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        window_start(datetime(2024, 5, 1), WindowSize.MINUTE)  # noqa: DTZ001


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.sampled_from(list(WindowSize)),
)
def test_every_instant_falls_in_exactly_one_aligned_window(t: datetime, size: WindowSize) -> None:
    start = window_start(t, size)
    epoch_seconds = (start - datetime(1970, 1, 1, tzinfo=UTC)) / SECOND

    assert start <= t < start + size.duration
    assert epoch_seconds % size.duration.total_seconds() == 0
    assert window_start(start, size) == start


# -- updates ------------------------------------------------------------------------------


def test_the_first_update_is_not_a_correction_and_later_ones_are() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)

    [first] = agg.add("acme", contribution(T0, Decimal(5), "a"), T0)
    [second] = agg.add("acme", contribution(T0 + SECOND, Decimal(7), "b"), T0 + SECOND)

    assert first == WindowUpdate(key(T0), Decimal(5), 1, 1, False)
    assert second == WindowUpdate(key(T0), Decimal(12), 2, 1, True)


def test_updates_carry_absolute_totals_in_nine_places() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)

    out = agg.add_many([("acme", contribution(T0, Decimal("1.5"), "a"))], T0)

    assert str(updates(out)[0].value) == "1.500000000"


def test_customers_meters_and_groups_are_separate_windows() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)
    batch: list[Pair] = [
        ("acme", contribution(T0, event="a")),
        ("globex", contribution(T0, event="a")),
        ("acme", contribution(T0, event="a", meter="calls", aggregation=Aggregation.COUNT)),
        ("acme", contribution(T0, event="a", group=("eu",))),
    ]

    out = agg.add_many(batch, T0)

    assert [u.key for u in updates(out)] == [
        key(T0),
        key(T0, customer="globex"),
        key(T0, meter="calls"),
        WindowKey("acme", "tokens", ("eu",), T0),
    ]


def test_an_event_exactly_at_a_window_end_belongs_to_the_next_window() -> None:
    agg = WindowAggregator(WindowSize.MINUTE, allowed_lateness=timedelta(hours=1))

    out = agg.add_many(
        [
            ("acme", contribution(T0 + MINUTE - MICRO, event="a")),
            ("acme", contribution(T0 + MINUTE, event="b")),
        ],
        T0,
    )

    assert [(u.key.start, u.revision) for u in updates(out)] == [(T0, 1), (T0 + MINUTE, 1)]


# -- duplicates and coalescing ------------------------------------------------------------


def test_a_duplicate_or_replayed_contribution_never_counts_twice() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)
    c = contribution(T0, Decimal(5), "a")

    first = agg.add_many([("acme", c), ("acme", c)], T0)
    again = agg.add("acme", c, T0)

    assert updates(first) == [WindowUpdate(key(T0), Decimal(5), 1, 1, False)]
    assert again == []
    assert agg.snapshot() == {key(T0): Decimal(5)}


def test_one_update_per_window_per_batch() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)
    batch = [("acme", contribution(T0 + i * SECOND * 7, Decimal(i), f"e{i}")) for i in range(20)]

    out = agg.add_many(batch, T0)

    assert updates(out) == [
        WindowUpdate(key(T0), Decimal(sum(range(9))), 9, 9, False),
        WindowUpdate(key(T0 + MINUTE), Decimal(sum(range(9, 18))), 9, 9, False),
        WindowUpdate(key(T0 + 2 * MINUTE), Decimal(18 + 19), 2, 2, False),
    ]


def test_events_counts_what_this_update_adds() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)
    agg.add_many([("acme", contribution(T0, event=e)) for e in "abc"], T0)

    [u] = updates(agg.add_many([("acme", contribution(T0, event=e)) for e in "cde"], T0))

    assert (u.revision, u.events, u.is_correction) == (5, 2, True)


# -- lateness -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("watermark", "late"),
    [
        (T0 + MINUTE + 30 * SECOND - MICRO, False),
        (T0 + MINUTE + 30 * SECOND, True),  # exactly end + allowed lateness: closed
        (T0 + 2 * MINUTE, True),
    ],
)
def test_a_window_closes_when_the_watermark_reaches_end_plus_lateness(
    watermark: datetime, late: bool
) -> None:
    agg = WindowAggregator(WindowSize.MINUTE, allowed_lateness=30 * SECOND)
    c = contribution(T0 + 10 * SECOND, Decimal(3), "a")

    out = agg.add("acme", c, watermark)

    if late:
        assert out == [LateUsage(key(T0), c, watermark, LateReason.WINDOW_CLOSED)]
        assert agg.snapshot() == {}
    else:
        assert updates(out) == [WindowUpdate(key(T0), Decimal(3), 1, 1, False)]
    assert agg.closes_at(T0) == T0 + MINUTE + 30 * SECOND


def test_late_usage_never_changes_an_emitted_window() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)
    agg.add("acme", contribution(T0, Decimal(5), "a"), T0)
    late = contribution(T0 + SECOND, Decimal(7), "b")

    out = agg.add_many(
        [("acme", late), ("acme", contribution(T0 + MINUTE, Decimal(1), "c"))], T0 + MINUTE
    )

    assert out == [
        WindowUpdate(key(T0 + MINUTE), Decimal(1), 1, 1, False),
        LateUsage(key(T0), late, T0 + MINUTE),
    ]
    assert agg.snapshot()[key(T0)] == Decimal(5)


def test_a_replay_of_a_counted_event_is_skipped_not_late_while_its_window_is_kept() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)
    c = contribution(T0, event="a")
    agg.add("acme", c, T0)

    assert agg.add("acme", c, T0 + 5 * MINUTE) == []
    assert agg.evict_closed(T0 + 5 * MINUTE) == [key(T0)]
    assert agg.add("acme", c, T0 + 5 * MINUTE) == [LateUsage(key(T0), c, T0 + 5 * MINUTE)]


def test_the_watermark_never_moves_back() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)
    agg.add("acme", contribution(T0 + 5 * MINUTE, event="a"), T0 + 5 * MINUTE)
    c = contribution(T0, event="b")

    out = agg.add("acme", c, T0)

    assert out == [LateUsage(key(T0), c, T0 + 5 * MINUTE)]
    assert agg.watermark == T0 + 5 * MINUTE


def test_eviction_frees_closed_windows_only() -> None:
    agg = WindowAggregator(WindowSize.MINUTE, allowed_lateness=30 * SECOND)
    agg.add_many([("acme", contribution(T0 + i * MINUTE, event=str(i))) for i in range(4)], T0)

    evicted = agg.evict_closed(T0 + 2 * MINUTE + 30 * SECOND)

    assert evicted == [key(T0), key(T0 + MINUTE)]
    assert sorted(k.start for k in agg.snapshot()) == [T0 + 2 * MINUTE, T0 + 3 * MINUTE]
    assert len(agg) == 2
    assert agg.evict_closed(T0) == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        WindowAggregator(WindowSize.MINUTE, allowed_lateness=-SECOND)
    agg = WindowAggregator(WindowSize.MINUTE)
    with pytest.raises(ValueError, match="naive"):
        agg.add("acme", contribution(T0), datetime(2024, 5, 1))  # noqa: DTZ001


def test_a_meter_changing_aggregation_mid_window_is_refused() -> None:
    agg = WindowAggregator(WindowSize.MINUTE)
    agg.add("acme", contribution(T0, event="a"), T0)

    with pytest.raises(ValueError, match="changed aggregation"):
        agg.add("acme", contribution(T0, event="b", aggregation=Aggregation.MAX), T0)


# -- properties: streaming against the from-scratch oracle ---------------------------------

METERS = [
    ("tokens", Aggregation.SUM),
    ("calls", Aggregation.COUNT),
    ("fastest", Aggregation.MIN),
    ("slowest", Aggregation.MAX),
    ("latency", Aggregation.AVG),
    ("users", Aggregation.UNIQUE_COUNT),
    ("seats", Aggregation.LATEST),
]


@st.composite
def streams(draw: st.DrawFn, span: timedelta = 10 * MINUTE) -> list[Pair]:
    """Contributions from distinct events, times spread over ``span`` (ties included)."""
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["acme", "globex"]),
                st.sampled_from(METERS),
                st.sampled_from([(), ("eu",)]),
                st.integers(0, int(span / SECOND) - 1),
                st.integers(0, 10**6),
                st.sampled_from(["u1", "u2", "u3"]),
            ),
            max_size=60,
        )
    )
    pairs = []
    for i, (customer, (meter, aggregation), group, second, units, user) in enumerate(rows):
        value: Decimal | str = (
            user if aggregation is Aggregation.UNIQUE_COUNT else Decimal(units).scaleb(-3)
        )
        at = T0 + second * SECOND
        digest = event_digest("gw", str(i))
        pairs.append((customer, Contribution(meter, group, value, at, digest, aggregation)))
    return pairs


def batches_of(pairs: list[Pair], cuts: list[int]) -> list[list[Pair]]:
    bounds = sorted({0, len(pairs), *(c % (len(pairs) + 1) for c in cuts)})
    return [pairs[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def run(
    agg: WindowAggregator, batches: list[list[Pair]], evict: bool = False
) -> tuple[list[list[Output]], list[datetime]]:
    """Feed batches with the watermark = the greatest event time seen so far."""
    outputs, marks = [], []
    mark = T0  # no stream event is earlier
    for batch in batches:
        mark = max([mark, *(c.time for _, c in batch)])
        outputs.append(agg.add_many(batch, mark))
        marks.append(mark)
        if evict:
            agg.evict_closed(mark)
    return outputs, marks


def final_values(outputs: list[list[Output]]) -> dict[WindowKey, Decimal]:
    """Each window's last update, checking revisions only grow and batches coalesce."""
    last: dict[WindowKey, WindowUpdate] = {}
    for batch in outputs:
        keys = [u.key for u in updates(batch)]
        assert len(keys) == len(set(keys))
        for u in updates(batch):
            before = last.get(u.key)
            assert u.is_correction is (before is not None)
            assert u.revision == (before.revision if before else 0) + u.events
            last[u.key] = u
    return {k: u.value for k, u in last.items()}


def highest_revisions(outputs: list[list[Output]]) -> dict[WindowKey, Decimal]:
    """What a table keeping each window's highest revision ends up holding."""
    kept: dict[WindowKey, WindowUpdate] = {}
    for u in (u for batch in outputs for u in updates(batch)):
        if u.key not in kept or u.revision >= kept[u.key].revision:
            assert u.key not in kept or u.revision > kept[u.key].revision or u == kept[u.key]
            kept[u.key] = u
    return {k: u.value for k, u in kept.items()}


@settings(deadline=None)
@given(pairs=streams(), data=st.data())
def test_without_lateness_streaming_equals_recomputing_in_any_order(
    pairs: list[Pair], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(pairs))
    cuts = data.draw(st.lists(st.integers(0, 100), max_size=6))
    agg = WindowAggregator(WindowSize.MINUTE, allowed_lateness=timedelta(days=1))

    outputs, _ = run(agg, batches_of(shuffled, cuts))

    assert final_values(outputs) == batch_aggregate(pairs, WindowSize.MINUTE)
    assert agg.snapshot() == batch_aggregate(pairs, WindowSize.MINUTE)


@settings(deadline=None)
@given(
    pairs=streams(),
    data=st.data(),
    lateness=st.sampled_from([timedelta(0), 30 * SECOND, 2 * MINUTE]),
    size=st.sampled_from([WindowSize.MINUTE, WindowSize.HOUR]),
    evict=st.booleans(),
)
def test_late_usage_comes_out_exactly_once_and_windows_hold_everything_else(
    pairs: list[Pair],
    data: st.DataObject,
    lateness: timedelta,
    size: WindowSize,
    evict: bool,
) -> None:
    shuffled = data.draw(st.permutations(pairs))
    cuts = data.draw(st.lists(st.integers(0, 100), max_size=8))
    agg = WindowAggregator(size, allowed_lateness=lateness)

    outputs, marks = run(agg, batches_of(shuffled, cuts), evict=evict)

    late = [u for batch in outputs for u in lates(batch)]
    late_digests = [u.contribution.digest for u in late]
    assert len(late_digests) == len(set(late_digests))
    for batch, mark in zip(outputs, marks, strict=True):
        for u in lates(batch):
            assert u.watermark == mark
            assert agg.closes_at(u.key.start) <= mark
            assert u.key.start == window_start(u.contribution.time, size)
    on_time = [(cu, c) for cu, c in pairs if c.digest not in set(late_digests)]
    assert final_values(outputs) == batch_aggregate(on_time, size)
    assert {u.contribution for u in late} | {c for _, c in on_time} == {c for _, c in pairs}


@settings(deadline=None)
@given(pairs=streams(), data=st.data())
def test_duplicates_and_replays_never_change_results(
    pairs: list[Pair], data: st.DataObject
) -> None:
    replays = data.draw(st.lists(st.sampled_from(pairs), max_size=20)) if pairs else []
    noisy = data.draw(st.permutations(pairs + replays))
    cuts = data.draw(st.lists(st.integers(0, 100), max_size=6))
    agg = WindowAggregator(WindowSize.MINUTE, allowed_lateness=timedelta(days=1))

    outputs, _ = run(agg, batches_of(noisy, cuts))

    assert final_values(outputs) == batch_aggregate(pairs, WindowSize.MINUTE)
    assert sum(u.events for batch in outputs for u in updates(batch)) == len(
        {(cu, c.meter, c.group, c.digest) for cu, c in pairs}
    )


@settings(deadline=None)
@given(
    pairs=streams(),
    data=st.data(),
    lateness=st.sampled_from([timedelta(0), 30 * SECOND, 2 * MINUTE]),
)
def test_a_restart_rebuilt_from_the_committed_prefix_repeats_the_same_outputs(
    pairs: list[Pair], data: st.DataObject, lateness: timedelta
) -> None:
    cuts = data.draw(st.lists(st.integers(0, 100), max_size=8))
    batches = batches_of(data.draw(st.permutations(pairs)), cuts)
    committed = data.draw(st.integers(0, len(batches)))
    crashed_at = data.draw(st.integers(committed, len(batches)))
    original = WindowAggregator(WindowSize.MINUTE, allowed_lateness=lateness)
    outputs, marks = run(original, batches, evict=True)

    # Crash after sending the outputs of `crashed_at` batches but committing `committed`.
    restarted = WindowAggregator(WindowSize.MINUTE, allowed_lateness=lateness)
    if committed:
        prefix = [p for batch in batches[:committed] for p in batch]
        restarted.rebuild(prefix, marks[committed - 1])
        restarted.rebuild(prefix, marks[committed - 1])  # a crash during the rebuild itself
    replayed = []
    for batch, mark in zip(batches[committed:], marks[committed:], strict=True):
        replayed.append(restarted.add_many(batch, mark))
        restarted.evict_closed(mark)

    assert replayed == outputs[committed:]
    assert highest_revisions(outputs[:crashed_at] + replayed) == final_values(outputs)


@settings(deadline=None)
@given(pairs=streams(), data=st.data())
def test_feeding_a_prefix_twice_yields_the_same_final_windows(
    pairs: list[Pair], data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, 100), max_size=8))
    batches = batches_of(data.draw(st.permutations(pairs)), cuts)
    redelivered = data.draw(st.integers(0, len(batches)))
    once, _ = run(WindowAggregator(WindowSize.MINUTE, 30 * SECOND), batches)

    twice, _ = run(
        WindowAggregator(WindowSize.MINUTE, 30 * SECOND),
        batches[:redelivered] + batches[:redelivered] + batches[redelivered:],
    )

    assert final_values(twice) == final_values(once)
    assert {u.contribution for b in twice for u in lates(b)} == {
        u.contribution for b in once for u in lates(b)
    }


@given(pairs=streams(span=3 * timedelta(days=1)))
def test_day_windows_split_at_utc_midnight(pairs: list[Pair]) -> None:
    agg = WindowAggregator(WindowSize.DAY, allowed_lateness=timedelta(days=7))

    outputs, _ = run(agg, [pairs])

    assert final_values(outputs) == batch_aggregate(pairs, WindowSize.DAY)
    assert all(k.start.hour == 0 and k.start.tzinfo is UTC for k in agg.snapshot())


def test_latest_in_a_window_breaks_ties_by_digest_whatever_the_batching() -> None:
    low = contribution(T0, Decimal(1), "x", meter="seats", aggregation=Aggregation.LATEST)
    high = contribution(T0, Decimal(2), "y", meter="seats", aggregation=Aggregation.LATEST)
    winner = max(low, high, key=lambda c: c.digest).value

    for order in ([low, high], [high, low]):
        agg = WindowAggregator(WindowSize.MINUTE)
        for c in order:
            agg.add("acme", c, T0)
        assert agg.snapshot() == {key(T0, meter="seats"): winner}
