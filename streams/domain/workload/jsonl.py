"""The one side effect of the workload package: writing its lines to a file."""

from __future__ import annotations

import os
from collections.abc import Iterable

from .model import GeneratedEvent


def write_jsonl(events: Iterable[GeneratedEvent], path: str | os.PathLike[str]) -> int:
    """Write one line per event, malformed ones verbatim; return how many were written."""
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for generated in events:
            out.write(generated.line)
            out.write("\n")
            written += 1
    return written
