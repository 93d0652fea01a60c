"""Rails by name. A rail module registers its factory; nothing else names rails.

Adding a rail is one module, ``connectors/rails/<name>.py``, that calls
:func:`register`, plus a customer in the catalog naming the rail: the registry finds
the module by the rail's name, and the topic ``invoices.<rail>`` is derived from it.
Rails kept outside this repository are found through the ``railyard.rails`` entry-point
group (``name = "package.module"``) or by listing their module in :data:`RAIL_MODULES`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points

from connectors.rails.base import Rail
from connectors.rails.config import RailConfig
from streams.domain.errors import ConfigError

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
"""Modules imported by :func:`rails`, each registering one rail (the built-in ones, and
any listed here); every other ``connectors.rails`` module that registers a rail is
found too."""

SUPPORT_MODULES = frozenset(
    {"base", "config", "registry", "runner", "backoff", "inflight", "outcomes", "http", "ubl"}
)
"""Modules of the ``connectors.rails`` package that are not rails."""

_FACTORIES: dict[str, RailFactory] = {}


def register(name: str) -> Callable[[RailFactory], RailFactory]:
    """Class or function decorator: ``name`` is built by the decorated factory."""

    def add(factory: RailFactory) -> RailFactory:
        if name in _FACTORIES and _FACTORIES[name] is not factory:
            raise ValueError(f"rail {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return add


def rail_modules() -> list[str]:
    """Every module that may register a rail: listed, in the package, or by entry point."""
    import connectors.rails as package

    found = list(RAIL_MODULES)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg and info.name not in SUPPORT_MODULES:
            found.append(f"connectors.rails.{info.name}")
    found += [ep.value for ep in entry_points(group="railyard.rails")]
    return list(dict.fromkeys(found))


def rails() -> dict[str, RailFactory]:
    """Every registered rail, importing the rail modules on first use."""
    for module in rail_modules():
        importlib.import_module(module)
    return dict(_FACTORIES)


def create(name: str, config: RailConfig | None = None) -> Rail:
    """The rail ``name``, configured from ``config`` (default: the environment).

    The module named like the rail is imported first, so running one rail's
    connector does not import every other rail's SDK.
    """
    for module in (*RAIL_MODULES, f"connectors.rails.{name}"):
        if name not in _FACTORIES and module.rsplit(".", 1)[-1] == name:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise  # the rail's module exists but lacks a dependency: say so
    factory = _FACTORIES.get(name) or rails().get(name)
    if factory is None:
        raise ConfigError(f"unknown rail {name!r}; known: {', '.join(sorted(rails()))}")
    return factory(config if config is not None else RailConfig.from_env(name))
