"""A new rail is one module under connectors/rails: no list to edit, found by its name."""

import sys
from pathlib import Path

import pytest

import connectors.rails as package
from connectors.rails import registry
from connectors.rails.config import RailConfig

LEDGER = """
from typing import ClassVar

from connectors.rails.base import Delivery
from connectors.rails.registry import register


@register("ledgerx")
class LedgerRail:
    name: ClassVar[str] = "ledgerx"

    def __init__(self, config):
        self.config = config

    def deliver(self, invoice):
        return Delivery(self.name, invoice.id, {"entry": invoice.number})

    def status(self, delivery):
        return "posted"
"""


@pytest.fixture
def ledger_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ledgerx.py`` dropped beside the built-in rails (a temporary package directory)."""
    (tmp_path / "ledgerx.py").write_text(LEDGER)
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    yield
    sys.modules.pop("connectors.rails.ledgerx", None)
    registry._FACTORIES.pop("ledgerx", None)


def test_the_module_alone_makes_the_rail(ledger_module: None) -> None:
    assert "ledgerx" not in registry.RAIL_MODULES
    rail = registry.create("ledgerx", RailConfig("ledgerx"))
    assert rail.name == "ledgerx"
    assert "connectors.rails.ledgerx" in registry.rail_modules()
    assert "ledgerx" in registry.rails()


def test_support_modules_are_not_rails() -> None:
    modules = registry.rail_modules()
    assert not [m for m in modules if m.rsplit(".", 1)[-1] in registry.SUPPORT_MODULES]
    assert set(registry.rails()) == {
        "stripe",
        "adyen",
        "paypal",
        "netsuite",
        "sap",
        "salesforce",
        "webhook",
        "outbox",
    }
