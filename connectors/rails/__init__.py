"""Rail connectors: deliver invoices from ``invoices.<rail>`` topics to each rail's API.

One module per rail, each implementing :class:`~connectors.rails.base.Rail` and
registering itself in :mod:`connectors.rails.registry`; one shared runner
consumes a rail's topic, delivers, and records the outcome.
"""
