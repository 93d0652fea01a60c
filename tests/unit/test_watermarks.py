"""Event-time watermark over several upstream partitions (streams/domain/watermarks.py)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.watermarks import EPOCH, SourceWatermarks

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_the_epoch_is_utc_1970() -> None:
    assert EPOCH == datetime(1970, 1, 1, tzinfo=UTC)


def test_nothing_observed_is_the_epoch() -> None:
    assert SourceWatermarks(3).watermark == EPOCH


def test_stays_at_the_epoch_until_every_source_has_reported() -> None:
    marks = SourceWatermarks(3)
    marks.observe(0, T0)
    marks.observe(2, T0 + 5 * HOUR)
    marks.observe(0, T0 + 9 * HOUR)
    assert marks.watermark == EPOCH  # source 1 is merely behind: nothing turns late
    marks.observe(1, T0 - HOUR)
    assert marks.watermark == T0 - HOUR


def test_is_the_progress_of_the_slowest_source() -> None:
    marks = SourceWatermarks(2)
    marks.observe(0, T0 + 10 * HOUR)  # a backfill: source 0 is hours ahead
    marks.observe(1, T0)
    assert marks.watermark == T0
    marks.observe(1, T0 + 3 * HOUR)
    assert marks.watermark == T0 + 3 * HOUR
    marks.observe(1, T0 + 12 * HOUR)  # overtakes: now source 0 is the slowest
    assert marks.watermark == T0 + 10 * HOUR


def test_an_older_time_never_moves_a_source_back() -> None:
    marks = SourceWatermarks(1)
    marks.observe(0, T0 + HOUR)
    marks.observe(0, T0)
    assert marks.watermark == T0 + HOUR


def test_one_source_is_its_greatest_time() -> None:
    marks = SourceWatermarks(1)
    for hours in (3, 1, 7, 2):
        marks.observe(0, T0 + hours * HOUR)
    assert marks.watermark == T0 + 7 * HOUR


def test_times_compare_as_instants_whatever_their_zone() -> None:
    marks = SourceWatermarks(2)
    marks.observe(0, datetime(2026, 11, 26, 14, 0, tzinfo=timezone(timedelta(hours=1))))
    marks.observe(1, T0 + HOUR + timedelta(minutes=30))
    assert marks.watermark == T0 + HOUR  # 14:00+01:00 is 13:00Z, the earlier of the two


def test_a_source_outside_the_range_does_not_stand_in_for_a_missing_one() -> None:
    marks = SourceWatermarks(2)
    marks.observe(0, T0)
    with contextlib.suppress(ValueError, IndexError):  # refusing it outright is fine too
        marks.observe(2, T0)
    assert marks.watermark == EPOCH


# -- properties ---------------------------------------------------------------------------

MINUTES = 60 * 24 * 30
observations = st.integers(1, 5).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, MINUTES)), max_size=40),
    )
)

# every source reports at least once
per_source_minutes = st.lists(
    st.lists(st.integers(0, MINUTES), min_size=1, max_size=8), min_size=1, max_size=5
)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def expected(sources: int, seen: list[tuple[int, int]]) -> datetime:
    latest: dict[int, int] = {}
    for source, minute in seen:
        latest[source] = max(latest.get(source, minute), minute)
    if set(latest) != set(range(sources)):
        return EPOCH
    return at(min(latest.values()))


@settings(max_examples=300, deadline=None)
@given(per_source_minutes, st.randoms(use_true_random=False))
def test_is_min_over_sources_of_the_max_seen_once_all_reported(
    per_source: list[list[int]], random: Random
) -> None:
    seen = [(source, minute) for source, minutes in enumerate(per_source) for minute in minutes]
    random.shuffle(seen)  # sources interleave arbitrarily
    marks = SourceWatermarks(len(per_source))
    for source, minute in seen:
        marks.observe(source, at(minute))
    assert marks.watermark == at(min(max(minutes) for minutes in per_source))


@settings(max_examples=300, deadline=None)
@given(observations)
def test_matches_a_direct_computation_whoever_has_reported(
    case: tuple[int, list[tuple[int, int]]],
) -> None:
    sources, seen = case
    marks = SourceWatermarks(sources)
    for source, minute in seen:
        marks.observe(source, at(minute))
    assert marks.watermark == expected(sources, seen)


@settings(max_examples=300, deadline=None)
@given(observations, st.randoms(use_true_random=False))
def test_does_not_depend_on_the_order_of_observations(
    case: tuple[int, list[tuple[int, int]]], random: Random
) -> None:
    sources, seen = case
    shuffled = list(seen)
    random.shuffle(shuffled)
    a, b = SourceWatermarks(sources), SourceWatermarks(sources)
    for source, minute in seen:
        a.observe(source, at(minute))
    for source, minute in shuffled:
        b.observe(source, at(minute))
    assert a.watermark == b.watermark


@settings(max_examples=300, deadline=None)
@given(observations)
def test_never_goes_back(case: tuple[int, list[tuple[int, int]]]) -> None:
    sources, seen = case
    marks = SourceWatermarks(sources)
    previous = marks.watermark
    for source, minute in seen:
        marks.observe(source, at(minute))
        assert marks.watermark >= previous
        previous = marks.watermark
