"""Process-wide tuning shared by the long-running processes (worker, sink)."""

from __future__ import annotations


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
