"""Rails by name. A rail module registers its factory; nothing else names rails.

Adding a rail is one module that calls :func:`register` (and one entry in
``RAIL_MODULES`` so it is imported) plus a customer in the catalog naming it;
the topic ``invoices.<rail>`` is derived from the name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from connectors.rails.base import Rail
from connectors.rails.config import RailConfig
from streams.errors import ConfigError

RailFactory = Callable[[RailConfig], Rail]

RAIL_MODULES: tuple[str, ...] = (
    "connectors.rails.stripe",
    "connectors.rails.adyen",
    "connectors.rails.paypal",
    "connectors.rails.netsuite",
    "connectors.rails.sap",
    "connectors.rails.salesforce",
    "connectors.rails.webhook",
    "connectors.rails.outbox",
)
"""Modules imported by :func:`rails`, each registering one rail."""

_FACTORIES: dict[str, RailFactory] = {}


def register(name: str) -> Callable[[RailFactory], RailFactory]:
    """Class or function decorator: ``name`` is built by the decorated factory."""

    def add(factory: RailFactory) -> RailFactory:
        if name in _FACTORIES and _FACTORIES[name] is not factory:
            raise ValueError(f"rail {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return add


def rails() -> dict[str, RailFactory]:
    """Every registered rail, importing the rail modules on first use."""
    for module in RAIL_MODULES:
        importlib.import_module(module)
    return dict(_FACTORIES)


def create(name: str, config: RailConfig | None = None) -> Rail:
    """The rail ``name``, configured from ``config`` (default: the environment).

    The module named like the rail is imported first, so running one rail's
    connector does not import every other rail's SDK.
    """
    for module in RAIL_MODULES:
        if name not in _FACTORIES and module.rsplit(".", 1)[-1] == name:
            importlib.import_module(module)
    factory = _FACTORIES.get(name) or rails().get(name)
    if factory is None:
        raise ConfigError(f"unknown rail {name!r}; known: {', '.join(sorted(rails()))}")
    return factory(config if config is not None else RailConfig.from_env(name))
