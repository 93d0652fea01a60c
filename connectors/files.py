"""Local files: the catalog YAML Railyard reads, and the JSON-lines workloads it writes.

The domain parses and generates (:func:`~streams.domain.catalog.parse_catalog`,
:func:`~streams.domain.meters.parse_meters`, :func:`~streams.domain.workload.iter_events`);
opening the files happens here, at the edge, so ``streams/domain`` does no I/O
(``tests/unit/test_layers.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import yaml

from streams.domain.catalog import Catalog, parse_catalog
from streams.domain.errors import ConfigError
from streams.domain.meters import MeterIndex, parse_meters
from streams.domain.workload import GeneratedEvent


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """The catalog in the file at ``path``; ConfigError listing every problem otherwise."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read catalog {path}: {exc}") from exc
    catalog, problems = parse_catalog(text, str(path))
    if catalog is None:
        raise ConfigError(
            f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(map(str, problems))
        )
    return catalog


def load_meters(path: str | os.PathLike[str]) -> MeterIndex:
    """The meters of the catalog file at ``path`` (its ``meters`` section alone), for
    producers that judge events before sending them; ConfigError listing every problem."""
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    meters, problems = parse_meters(doc.get("meters", []))
    if problems:
        raise ConfigError(f"{path}:\n  - " + "\n  - ".join(problems))
    return MeterIndex.of(meters)


def write_jsonl(events: Iterable[GeneratedEvent], path: str | os.PathLike[str]) -> int:
    """Write one line per event, malformed ones verbatim; return how many were written."""
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for generated in events:
            out.write(generated.line)
            out.write("\n")
            written += 1
    return written
