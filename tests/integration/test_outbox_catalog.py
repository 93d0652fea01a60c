"""The outbox takes an invoice's parties from the catalog version it was rated with, on Kafka."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.files import load_catalog
from connectors.kafka.catalog_feed import publish_catalog
from connectors.kafka.catalog_versions import CatalogVersions
from connectors.rails.base import TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.providers.outbox import OutboxRail
from connectors.rails.ubl import EN16931_CUSTOMIZATION, NS
from streams.domain.catalog import PostalAddress
from streams.settings import Settings
from tests.fixtures.einvoice import fatal
from tests.fixtures.rails.invoices import sample_invoice

pytestmark = pytest.mark.integration
CITY = "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cbc:CityName"


def test_parties_come_from_the_invoices_catalog_version_not_the_one_in_force(
    stack: Settings, tmp_path: Path
) -> None:
    rated_with = load_catalog(stack.catalog)
    aperture = rated_with.customer("aperture-ai")
    assert aperture is not None and aperture.billing.address is not None
    moved = replace(
        aperture,
        billing=replace(
            aperture.billing, address=PostalAddress("Neuer Wall 1", "Hamburg", "20354", "DE")
        ),
    )
    later = replace(
        rated_with,
        customers=tuple(moved if c.key == "aperture-ai" else c for c in rated_with.customers),
    )
    assert later.version != rated_with.version
    publish_catalog(stack, later)  # now in force; the invoice was rated before

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    rail = OutboxRail(RailConfig("outbox", {"directory": str(outbox)}), CatalogVersions(stack).get)
    invoice = replace(
        sample_invoice(1, "outbox", "EUR", customer="aperture-ai", credits=Decimal("5")),
        catalog_version=rated_with.version,
    )
    document = Path(rail.deliver(invoice).references["path"]).read_bytes()
    root = ET.fromstring(document)
    assert root.findtext("cbc:CustomizationID", namespaces=NS) == EN16931_CUSTOMIZATION
    assert root.findtext(CITY, namespaces=NS) == "München"
    assert fatal(document) == []
    assert rail.deliver(invoice).status == "exists", "a redelivery writes the same bytes"

    unknown = replace(invoice, catalog_version="0123456789abcdef", number="INV-UNKNOWN")
    with pytest.raises(TransientRailError, match="not on the catalog topic"):
        rail.deliver(unknown)
