"""What an event contributes to each meter (streams/domain/metering.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.dedup import event_digest
from streams.domain.metering import (
    Contribution,
    accepts,
    canonical_text,
    contributions,
    property_text,
)
from streams.domain.meters import Aggregation, Meter, MeterIndex
from streams.domain.usage import UsageEvent

T = datetime(2024, 5, 1, 12, 30, 15, 250_000, tzinfo=UTC)


def event(
    type_: str = "llm.completion",
    values: dict[str, Decimal] | None = None,
    dimensions: dict[str, str] | None = None,
    id_: str = "e-1",
) -> UsageEvent:
    return UsageEvent(
        id=id_,
        source="gateway",
        type=type_,
        subject="sub-1",
        time=T,
        values=values if values is not None else {"tokens": Decimal("1500")},
        dimensions=dimensions if dimensions is not None else {"model": "gpt", "region": "eu"},
    )


TOKENS = Meter("tokens", "llm.completion", Aggregation.SUM, "tokens", group_by=("model",))
CALLS = Meter("calls", "llm.completion", Aggregation.COUNT)
USERS = Meter("users", "llm.completion", Aggregation.UNIQUE_COUNT, "user")
GPU = Meter("gpu", "gpu.minutes", Aggregation.SUM, "minutes")


# -- one contribution per reading meter -------------------------------------------------


def test_a_sum_meter_contributes_its_value_property() -> None:
    e = event()

    [c] = contributions(e, [TOKENS])

    assert c == Contribution(
        "tokens", ("gpt",), Decimal("1500"), T, event_digest("gateway", "e-1"), Aggregation.SUM
    )
    assert c.value is e.values["tokens"]


def test_count_contributes_one_whatever_the_values() -> None:
    [c] = contributions(event(values={}), [CALLS])

    assert c.value == Decimal(1)
    assert c.aggregation is Aggregation.COUNT
    assert c.group == ()


@pytest.mark.parametrize("aggregation", [a for a in Aggregation if a is not Aggregation.COUNT])
def test_every_other_aggregation_reads_its_value_property(aggregation: Aggregation) -> None:
    meter = Meter("m", "llm.completion", aggregation, "tokens")

    [c] = contributions(event(), [meter])

    expected: Decimal | str = "1500" if aggregation is Aggregation.UNIQUE_COUNT else Decimal(1500)
    assert c.value == expected
    assert c.aggregation is aggregation


def test_one_contribution_per_reading_meter_in_meter_order() -> None:
    found = contributions(event(dimensions={"model": "gpt", "user": "u-7"}), [USERS, GPU, CALLS])

    assert [c.meter for c in found] == ["users", "calls"]
    assert found[0].value == "u-7"
    assert len({c.digest for c in found}) == 1


def test_an_event_of_another_type_contributes_nothing() -> None:
    assert contributions(event(type_="gpu.minutes"), [TOKENS, CALLS]) == []


def test_a_missing_value_property_contributes_nothing() -> None:
    e = event(values={"other": Decimal(1)}, dimensions={})

    assert contributions(e, [TOKENS, USERS, Meter("m", "llm.completion", Aggregation.MAX)]) == []


def test_the_digest_is_computed_once_or_taken_from_the_caller() -> None:
    given_digest = b"\x01" * 16

    found = contributions(event(), [TOKENS, CALLS], digest=given_digest)

    assert [c.digest for c in found] == [given_digest, given_digest]


def test_works_with_the_meter_index_lookup() -> None:
    index = MeterIndex.of([TOKENS, CALLS, GPU])
    e = event()

    assert [c.meter for c in contributions(e, index.by_type[e.type])] == ["tokens", "calls"]


# -- group by ---------------------------------------------------------------------------


def test_group_values_follow_group_by_order_and_missing_ones_are_blank() -> None:
    meter = Meter(
        "m", "llm.completion", Aggregation.SUM, "tokens", group_by=("region", "tier", "model")
    )

    [c] = contributions(event(), [meter])

    assert c.group == ("eu", "", "gpt")


def test_a_numeric_property_groups_by_its_canonical_text() -> None:
    meter = Meter("m", "llm.completion", Aggregation.COUNT, group_by=("version",))
    spellings = [Decimal("2"), Decimal("2.0"), Decimal("2.000000000")]

    groups = {contributions(event(values={"version": v}), [meter])[0].group for v in spellings}

    assert groups == {("2",)}


# -- filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "reads"),
    [
        ({}, True),
        ({"model": ("gpt",)}, True),
        ({"model": ("claude", "gpt")}, True),
        ({"model": ("claude",)}, False),
        ({"model": ("gpt",), "region": ("us",)}, False),
        ({"model": ("gpt",), "region": ("eu", "us")}, True),
        ({"tier": ("gold",)}, False),  # a filtered property the event lacks
        ({"tier": ("",)}, False),  # absent is not the empty string
        ({"tokens": ("1500",)}, True),  # a quantity compared as canonical text
        ({"model": ()}, False),
    ],
)
def test_filters_need_every_property_to_have_an_allowed_value(
    filters: dict[str, tuple[str, ...]], reads: bool
) -> None:
    meter = Meter("m", "llm.completion", Aggregation.COUNT, filters=filters)

    assert bool(contributions(event(), [meter])) is reads


@given(
    dimensions=st.dictionaries(st.sampled_from("abc"), st.sampled_from(["x", "y", ""]), max_size=3),
    filters=st.dictionaries(
        st.sampled_from("abcd"),
        st.lists(st.sampled_from(["x", "y", ""]), max_size=3).map(tuple),
        max_size=3,
    ),
)
def test_filters_match_a_naive_reading(
    dimensions: dict[str, str], filters: dict[str, tuple[str, ...]]
) -> None:
    expected = all(name in dimensions and dimensions[name] in ok for name, ok in filters.items())

    assert accepts(event(values={}, dimensions=dimensions), filters) is expected


# -- unique count and property text -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1.50"), "1.5"),
        (Decimal("1.5"), "1.5"),
        (Decimal("100"), "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.000000001"), "0.000000001"),
        (Decimal("0.00"), "0"),
        (Decimal("-0"), "0"),
        (
            Decimal("12345678901234567890123456789.123456789"),
            "12345678901234567890123456789.123456789",
        ),
    ],
)
def test_canonical_text_has_one_spelling_per_number(value: Decimal, text: str) -> None:
    assert canonical_text(value) == text


@given(st.decimals(min_value=0, max_value=10**29, places=9), st.integers(0, 9))
def test_canonical_text_is_the_same_for_equal_numbers(value: Decimal, extra: int) -> None:
    text = format(value, "f")
    if extra and "." not in text:
        text += "."
    respelled = Decimal(text + "0" * extra)  # the same number with trailing zeros

    assert canonical_text(value) == canonical_text(respelled)
    assert Decimal(canonical_text(value)) == value


def test_unique_count_reads_dimensions_as_sent_and_quantities_canonically() -> None:
    meter = Meter("m", "llm.completion", Aggregation.UNIQUE_COUNT, "user")

    [from_dimension] = contributions(event(dimensions={"user": "U-1 "}), [meter])
    [from_value] = contributions(event(values={"user": Decimal("42.0")}, dimensions={}), [meter])

    assert from_dimension.value == "U-1 "
    assert from_value.value == "42"


def test_property_text_prefers_the_dimension() -> None:
    e = event(values={"n": Decimal(3)}, dimensions={"d": "x"})

    assert (property_text(e, "d"), property_text(e, "n"), property_text(e, "z")) == ("x", "3", None)
