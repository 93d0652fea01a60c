"""``route_invoices``: each issued invoice -> the topic of its customer's rail.

The rail was fixed when the invoice was issued (the billing profile in force then,
so a routing change takes effect from the next invoice); the topic is derived from
it, ``invoices.<rail>``, never declared per rail, so a rail the catalog names for
the first time gets its topic here. The bytes are forwarded unchanged: the rail
connector reads exactly what the rating stage wrote.
"""

from __future__ import annotations

import asyncio
import logging

import faust
from faust.types import EventT

from connectors.kafka import topics
from connectors.kafka.admin import create_topics
from streams.agents.batching import batch_agent, event_value
from streams.settings import Settings
from streams.wire.records import INVOICES

log = logging.getLogger("railyard.route")


class RouteStage:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.source = app.topic(topics.topic_name(settings, topics.INVOICES))
        self.rail_topics: dict[str, faust.TopicT] = {}

    async def rail_topic(self, rail: str) -> faust.TopicT:
        if rail not in self.rail_topics:
            specs = topics.rail_topic_specs(self.settings, {rail})
            created = await asyncio.to_thread(create_topics, self.settings, specs)
            if created:
                log.info("created %s for rail %s", ", ".join(created), rail)
            self.rail_topics[rail] = self.app.topic(specs[0].name)
        return self.rail_topics[rail]

    async def route(self, events: list[EventT[bytes]]) -> None:
        sends = []
        for event in events:
            payload = event_value(event)
            topic = await self.rail_topic(INVOICES.decode(payload)["rail"])
            sends.append(await topic.send(key=event.message.key, value=payload))
        await asyncio.gather(*sends)


def register_route(app: faust.App, settings: Settings) -> RouteStage:
    stage = RouteStage(app, settings)
    batch_agent(app, stage.source, "route_invoices", stage.route, messages=500, within_s=0.2)
    return stage
