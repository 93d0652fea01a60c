"""Every schema Railyard writes or reads, self-contained, keyed by fingerprint: what a
consumer that no one here wrote needs to read a topic.

The files in ``avro/`` are the contracts as we edit them: a ``UsageBatch`` or an
``AttributedUsage`` names ``UsageEvent`` without defining it, as a registry's schema
references would. Here each is resolved the way the codecs resolve it (the batch once per
event version, since the fingerprint covers the event inside), so each entry decodes on
its own with any Avro library. A single-object message says which entry it needs: its
bytes 2..10 are the fingerprint (:func:`streams.wire.codec.fingerprint_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.wire.codec import (
    AVRO_DIR,
    EVENT_VERSIONS,
    batch_schema,
    load_schema,
    schema_fingerprint,
)
from streams.wire.records import inline_event

BATCH_FILE = "usage_batch.v1.avsc"


@dataclass(frozen=True)
class PublishedSchema:
    contract: str
    """The ``avro/`` file it comes from, and for a batch the event version inside."""
    schema: dict[str, Any]

    @property
    def fingerprint(self) -> bytes:
        return schema_fingerprint(self.schema)

    @property
    def full_name(self) -> str:
        return f"{self.schema['namespace']}.{self.schema['name']}"


def published_schemas() -> list[PublishedSchema]:
    """One self-contained schema per fingerprint Railyard writes or still reads."""
    out: list[PublishedSchema] = []
    for path in sorted(AVRO_DIR.glob("*.avsc")):
        if path.name == BATCH_FILE:
            for version, event in sorted(EVENT_VERSIONS.items()):
                contract = f"{path.stem}+usage_event.v{version}"
                out.append(PublishedSchema(contract, batch_schema(event)))
        else:
            out.append(PublishedSchema(path.stem, inline_event(load_schema(path.name))))
    return out
