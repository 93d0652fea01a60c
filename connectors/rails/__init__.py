"""Rail connectors: deliver invoices from ``invoices.<rail>`` topics to each rail's API.

One module per rail in :mod:`connectors.rails.providers`, each implementing
:class:`~connectors.rails.base.Rail` and registering itself in
:mod:`connectors.rails.registry`; one shared runner consumes a rail's topic,
delivers, and records the outcome. The modules here are what rails share;
:mod:`connectors.rails.sandbox` holds local stand-ins of each rail for the demo
and the tests, and no rail imports it.
"""
