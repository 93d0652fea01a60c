"""Who issues and who receives an e-invoice, and the VAT it carries.

The parts of a billing profile an EN 16931 invoice needs (legal names, postal
addresses, VAT identifiers, the VAT category of what is sold) and the rule that
turns a net amount into its VAT. Railyard's invoice amounts are net of VAT; a
rail that issues a tax document adds the VAT this module computes:

    VAT = rate / 100 x taxable amount, rounded half-up to the currency's minor unit

once per VAT category (a Railyard invoice has one: the customer's).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from .currency import minor_units


class TaxCategory(StrEnum):
    """The VAT category codes of UNCL5305 that EN 16931 allows."""

    STANDARD = "S"
    """Standard rated: a rate above zero."""
    ZERO = "Z"
    """Zero rated goods."""
    EXEMPT = "E"
    """Exempt from VAT: the reason must be stated."""
    REVERSE_CHARGE = "AE"
    """VAT reverse charge: the buyer accounts for the VAT."""
    INTRA_COMMUNITY = "K"
    """Intra-community supply within the EU, VAT exempt."""
    EXPORT = "G"
    """Export outside the EU, free of VAT."""
    NOT_SUBJECT = "O"
    """Services outside the scope of VAT: no VAT identifier may appear on the invoice."""


DEFAULT_EXEMPTION_REASONS: dict[TaxCategory, str] = {
    TaxCategory.REVERSE_CHARGE: "Reverse charge",
    TaxCategory.INTRA_COMMUNITY: "Intra-community supply",
    TaxCategory.EXPORT: "Export outside the EU",
    TaxCategory.NOT_SUBJECT: "Not subject to VAT",
}
"""The reason written when the catalog gives none; an exempt (E) supply must give its own."""

NEEDS_REASON = frozenset(DEFAULT_EXEMPTION_REASONS) | {TaxCategory.EXEMPT}
"""Categories whose VAT breakdown states an exemption reason (BR-E-10, BR-AE-10, ...)."""


@dataclass(frozen=True)
class Tax:
    """A customer's VAT treatment: its category, rate in percent, and exemption reason.

    Only the standard category has a rate above zero; the exempt ones carry a reason.
    """

    category: TaxCategory
    rate: Decimal = Decimal(0)
    exemption_reason: str | None = None

    @property
    def reason(self) -> str | None:
        """The exemption reason to write, the category's default when none was given."""
        if self.category not in NEEDS_REASON:
            return None
        return self.exemption_reason or DEFAULT_EXEMPTION_REASONS.get(self.category)

    def vat(self, taxable: Decimal, currency: str) -> Decimal:
        """The VAT on ``taxable``: rate x amount, rounded half-up to the minor unit."""
        places = minor_units(currency)
        exact = taxable * self.rate / 100
        return exact.quantize(Decimal(1).scaleb(-(2 if places is None else places)), ROUND_HALF_UP)


@dataclass(frozen=True)
class PostalAddress:
    street: str
    city: str
    postal_zone: str
    country: str
    """ISO 3166-1 alpha-2 code, such as DE."""


@dataclass(frozen=True)
class Contact:
    name: str | None = None
    email: str | None = None
    telephone: str | None = None


@dataclass(frozen=True)
class Seller:
    """The catalog's issuer of invoices, as an e-invoice names it."""

    legal_name: str
    address: PostalAddress
    vat_id: str | None = None
    company_id: str | None = None
    """The legal registration identifier (a trade register number)."""
    contact: Contact | None = None


@dataclass(frozen=True)
class Webhook:
    """Where the webhook rail posts a customer's invoices.

    ``secret_ref`` names where the signing secret is kept: ``env:NAME`` (an environment
    variable) or ``file:/path`` (a file); the catalog never holds the secret itself.
    """

    url: str
    secret_ref: str
