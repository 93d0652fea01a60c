"""Process-wide tuning and the clock shared by the long-running processes (worker, sink)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def tune_gc() -> None:
    """Collect the young generation every 10,000 net allocations instead of every 700.

    Decoding a batch allocates a dict, strings and Decimals per event; with CPython's
    default threshold the collector walked them every few events and took about half
    of a decode's time (measured: 19.7 -> 10.6 us per usage event). Objects alive at
    start-up (modules, Faust, the catalog) are frozen out of the older generations.
    Cycles are still collected, just in larger batches: memory stays bounded.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def use_event_loop(name: str) -> str:
    """Install the asyncio loop policy ``name`` (``uvloop`` or ``aio``) for this process;
    returns the module of the policy now in force, for the log.

    uvloop runs the Kafka clients' sockets, timers and callbacks in libuv instead of
    Python's selector loop, which was ~15 % of the ingest worker's samples (a
    back-to-back benchmark pair showed no difference beyond the noise: bench/RESULTS.md).
    Call it before anything makes a loop.
    """
    import asyncio

    import mode.loop

    mode.loop.use(name)
    return type(asyncio.get_event_loop_policy()).__module__.split(".")[0]


def process_clock(origin: datetime | None) -> Callable[[], datetime]:
    """The clock a long-running process judges event times by (``RAILYARD_CLOCK_START``).

    ``origin`` None: the wall clock. Otherwise the clock reads ``origin`` now and advances
    with real (monotonic) time from there, so a process can run as if it were another day,
    as ``railyard demo --today`` needs; it never jumps when the wall clock is set.
    """
    if origin is None:
        return lambda: datetime.now(UTC)
    start, started = origin.astimezone(UTC), time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - started)
