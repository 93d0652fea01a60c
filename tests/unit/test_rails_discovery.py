"""A new rail is one module: in connectors/rails/providers, or named by an entry point.

No list to edit: the registry imports every module of the ``providers`` package and
every module of the ``railyard.rails`` entry-point group, and nothing else.
"""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import connectors.rails.providers as providers
from connectors.rails import registry
from connectors.rails.config import RailConfig

BUILT_IN = {"stripe", "adyen", "paypal", "netsuite", "sap", "salesforce", "webhook", "outbox"}

LEDGER = """
from typing import ClassVar

from connectors.rails.base import Delivery
from connectors.rails.registry import register


@register("{name}")
class LedgerRail:
    name: ClassVar[str] = "{name}"

    def __init__(self, config):
        self.config = config

    def deliver(self, invoice):
        return Delivery(self.name, invoice.id, {{"entry": invoice.number}})

    def status(self, delivery):
        return "posted"
"""


@pytest.fixture
def provider_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``ledgerx.py`` dropped beside the built-in rails (a temporary package directory)."""
    (tmp_path / "ledgerx.py").write_text(LEDGER.format(name="ledgerx"))
    monkeypatch.setattr(providers, "__path__", [*providers.__path__, str(tmp_path)])
    yield "connectors.rails.providers.ledgerx"
    sys.modules.pop("connectors.rails.providers.ledgerx", None)
    registry._FACTORIES.pop("ledgerx", None)


@pytest.fixture
def entry_point_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``ledgery`` in a package of its own, installed with a ``railyard.rails`` entry point."""
    (tmp_path / "ledgery_rail.py").write_text(LEDGER.format(name="ledgery"))
    dist_info = tmp_path / "ledgery_rail-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: ledgery-rail\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\nledgery = ledgery_rail\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "ledgery_rail"
    sys.modules.pop("ledgery_rail", None)
    registry._FACTORIES.pop("ledgery", None)


def test_the_module_alone_makes_the_rail(provider_module: str) -> None:
    assert "ledgerx" not in registry._FACTORIES
    rail = registry.create("ledgerx", RailConfig("ledgerx"))
    assert rail.name == "ledgerx"
    assert provider_module in registry.rail_modules()
    assert "ledgerx" in registry.rails()


def test_an_entry_point_alone_makes_the_rail(entry_point_module: str) -> None:
    assert "ledgery" not in registry._FACTORIES
    rail = registry.create("ledgery", RailConfig("ledgery"))
    assert rail.name == "ledgery"
    assert entry_point_module in registry.rail_modules()
    assert "ledgery" in registry.rails()


def test_only_the_providers_are_rails() -> None:
    """The helpers beside ``providers`` (base, config, runner, ubl, ...) are not imported
    as rails, and every built-in rail is found."""
    modules = registry.rail_modules()
    assert sorted(modules) == [f"connectors.rails.providers.{name}" for name in sorted(BUILT_IN)]
    assert set(registry.rails()) == BUILT_IN
