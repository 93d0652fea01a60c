"""Rails by name. A rail module registers its factory; nothing else names rails.

Rails are found one way: every module of :mod:`connectors.rails.providers`, and every
module named by an entry point of the ``railyard.rails`` group (``name =
"package.module"``, for rails kept in a package of their own). Adding a rail is one
module, ``connectors/rails/providers/<name>.py``, that calls :func:`register`, plus a
customer in the catalog naming the rail; the topic ``invoices.<rail>`` is derived from
the name. There is no list of rails to edit, and no list of modules to skip: helpers
that rails share live outside ``providers``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points

from connectors.rails import providers
from connectors.rails.base import Rail
from connectors.rails.config import RailConfig
from streams.domain.errors import ConfigError

RailFactory = Callable[[RailConfig], Rail]

ENTRY_POINT_GROUP = "railyard.rails"
"""Installed packages list their rail modules under this entry-point group."""

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
    """Every module that registers a rail: each one in ``providers``, then each entry point."""
    found = [
        f"{providers.__name__}.{info.name}"
        for info in pkgutil.iter_modules(providers.__path__)
        if not info.ispkg
    ]
    found += [ep.module for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return list(dict.fromkeys(found))


def rails() -> dict[str, RailFactory]:
    """Every registered rail, importing the rail modules on first use."""
    for module in rail_modules():
        importlib.import_module(module)
    return dict(_FACTORIES)


def create(name: str, config: RailConfig | None = None) -> Rail:
    """The rail ``name``, configured from ``config`` (default: the environment).

    The provider module named like the rail (or the entry point of that name) is
    imported first, so running one rail's connector does not import every other
    rail's SDK.
    """
    if name not in _FACTORIES:
        own = f"{providers.__name__}.{name}"
        named = [ep.module for ep in entry_points(group=ENTRY_POINT_GROUP, name=name)]
        for module in (own, *named):
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name is None or not f"{module}.".startswith(f"{exc.name}."):
                    raise  # the rail's module exists but lacks a dependency: say so
    factory = _FACTORIES.get(name) or rails().get(name)
    if factory is None:
        raise ConfigError(f"unknown rail {name!r}; known: {', '.join(sorted(rails()))}")
    return factory(config if config is not None else RailConfig.from_env(name))
