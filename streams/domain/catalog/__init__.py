"""The billing catalog as code: meters, customers, subjects, plans, subscriptions.

Users keep the catalog as YAML in git (see ``deploy/catalog.example.yaml``);
:func:`parse_catalog` turns it into a :class:`Catalog` or lists every problem
with its line, and the catalog answers who a subject bills to, and on what
terms, at any instant. Pure: no Kafka, no ClickHouse; the catalog travels as
:meth:`Catalog.to_json` and is identified by :attr:`Catalog.version`.
"""

from .catalog import Catalog
from .currency import MINOR_UNITS, fits_currency, minor_units
from .model import (
    DEFAULT_CREDIT_THRESHOLDS,
    E_INVOICE_RAILS,
    BillingProfile,
    Contract,
    CreditGrant,
    Customer,
    Plan,
    Rounding,
    RoutingRule,
    Segment,
    SubjectAssignment,
    Subscription,
)
from .parse import parse_catalog
from .prices import (
    DimensionPrice,
    DimensionRate,
    FlatPrice,
    GraduatedPrice,
    PackagePrice,
    Price,
    PriceModel,
    RateCard,
    Tier,
    UnitPrice,
    UsagePrice,
    VolumePrice,
    merge_rate_cards,
)
from .problems import Problem
from .tax import Contact, PostalAddress, Seller, Tax, TaxCategory, Webhook

__all__ = [
    "DEFAULT_CREDIT_THRESHOLDS",
    "E_INVOICE_RAILS",
    "MINOR_UNITS",
    "BillingProfile",
    "Contact",
    "Catalog",
    "Contract",
    "CreditGrant",
    "Customer",
    "DimensionPrice",
    "DimensionRate",
    "FlatPrice",
    "GraduatedPrice",
    "PackagePrice",
    "Plan",
    "PostalAddress",
    "Price",
    "PriceModel",
    "Problem",
    "RateCard",
    "Rounding",
    "RoutingRule",
    "Seller",
    "Segment",
    "SubjectAssignment",
    "Subscription",
    "Tax",
    "TaxCategory",
    "Tier",
    "UnitPrice",
    "UsagePrice",
    "VolumePrice",
    "Webhook",
    "fits_currency",
    "merge_rate_cards",
    "minor_units",
    "parse_catalog",
]
