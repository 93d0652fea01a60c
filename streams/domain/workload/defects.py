"""Turn a well-formed usage event into the bad line a broken producer would send."""

from __future__ import annotations

from datetime import UTC, datetime
from random import Random

from .model import Defect
from .usage import Event, UsageFactory, encode, micros
from .vocabulary import DIMENSION_FIELDS, NON_NUMBERS, VALUE_FIELDS

# Strictly past 64 KiB so a size limit of exactly 64 KiB must reject it.
OVERSIZED_CHARS = 64 * 1024 + 512
_FILLER = ("system prompt pasted into a dimension " * (OVERSIZED_CHARS // 38 + 1))[:OVERSIZED_CHARS]
_ABSURD_YEARS = (
    micros(datetime(1970, 1, 1, tzinfo=UTC)),
    micros(datetime(2100, 1, 1, tzinfo=UTC)),
)
_YEAR_US = 365 * 86_400 * 1_000_000
MISSABLE_FIELDS = ("id", "subject", "time")


def corrupt(
    factory: UsageFactory, rng: Random, event: Event, defect: Defect
) -> tuple[str, Event | None]:
    """The JSONL line for ``event`` spoiled by ``defect``, and its parse (None if unparsable)."""
    data = event["data"]
    if defect is Defect.NEGATIVE_VALUE:
        field = VALUE_FIELDS[event["type"]]
        data[field] = -data[field]
    elif defect is Defect.NON_NUMERIC_VALUE:
        data[VALUE_FIELDS[event["type"]]] = NON_NUMBERS[int(rng.random() * len(NON_NUMBERS))]
    elif defect is Defect.MISSING_FIELD:
        del event[MISSABLE_FIELDS[int(rng.random() * len(MISSABLE_FIELDS))]]
    elif defect is Defect.ABSURD_TIME:
        year = _ABSURD_YEARS[int(rng.random() * len(_ABSURD_YEARS))]
        event["time"] = factory.rfc3339(year + int(rng.random() * _YEAR_US))
    elif defect is Defect.OVERSIZED:
        data[DIMENSION_FIELDS[event["type"]]] = _FILLER
    else:
        line = encode(event)
        if rng.random() < 0.5:
            # Cut mid-object, as a producer killed during a write leaves it.
            return line[: 1 + int(rng.random() * (len(line) - 1))], None
        # Python's repr of the dict: single quotes, not JSON.
        return repr(event), None
    return encode(event), event
