"""The documented fields of SAP's Sales Order and Credit Memo Request OData APIs, as data.

SAP publishes the ``$metadata`` of these services on its Business Accelerator Hub
(api.sap.com) under SAP's own terms, and no copy that the repository may keep was
found (``shared/rails/SOURCES.md``), so the stand-in validates against the
fields below, taken from SAP's published documentation:

* ``API_SALES_ORDER_SRV``, "Sales Order (A2X)", communication scenario
  SAP_COM_0109: https://api.sap.com/api/API_SALES_ORDER_SRV/overview, and the
  SAP Cloud SDK for JavaScript reference of ``@sap/cloud-sdk-vdm-sales-order-service``
  (https://help.sap.com/doc/9dbcab0600b346c2b359a8c8978a45ba/1.0/en-US/modules/_sap_cloud_sdk_vdm_sales_order_service.html),
  which lists each entity's properties and navigation.
* ``API_CREDIT_MEMO_REQUEST_SRV``, "Credit Memo Request (A2X)", communication
  scenario SAP_COM_0158: https://api.sap.com/api/API_CREDIT_MEMO_REQUEST_SRV/overview,
  and the reference of ``@sap/cloud-sdk-vdm-credit-memo-request-service``
  (https://help.sap.com/doc/98598d91753e472da1235b2aa36babc5/1.0/en-US/modules/_sap_cloud_sdk_vdm_credit_memo_request_service.html):
  entity types ``CreditMemoRequest``, ``CreditMemoRequestItem``,
  ``CreditMemoReqPrcgElmnt``, ``CreditMemoReqItemPrcgElmnt``.

Lengths and decimals are those of the ABAP data elements behind each property,
which the services expose unchanged: VBELN 10 (document numbers), AUART 4 (sales
document type), VKORG 4, VTWEG 2, SPART 2, KUNNR 10, BSTKD 35 (customer
reference), WAERK 5, AUGRU 3 (order reason), VBTYPL 4 (document category),
POSNR 6, MATNR 40, ARKTX 40 (item text), KWMENG 15,3 (quantity), VRKME 3 (unit),
KSCHL 4 (condition type), KBETR 24,9 (condition rate), KPEIN 5,0 (condition
pricing unit), NETWR/KWERT 16,3 (amounts). ``required`` marks what a create
without it is refused for: the document type, the sales area and the sold-to
party on the header (SAP's "Create a sales order" sample and API notes),
material and quantity on an item, the condition type and rate on a pricing
element. The only part not from SAP is how the stand-in serves this as
``$metadata``: it renders these fields as an EDMX (:func:`edmx`) so that
``pyodata`` can build its model, as it does from a real system's.

Only the properties the rail sends or reads are listed; the published services
have many more, all optional on create.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    edm: str = "Edm.String"
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    key: bool = False
    creatable: bool = True
    required: bool = False


@dataclass(frozen=True)
class Entity:
    name: str
    """The entity set; its type is ``<name>Type``."""
    fields: tuple[Field, ...]
    navigation: tuple[tuple[str, str], ...] = ()
    """(navigation property, target entity set), many-valued."""

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


def _s(
    name: str, length: int, *, key: bool = False, creatable: bool = True, required: bool = False
) -> Field:
    return Field(name, max_length=length, key=key, creatable=creatable, required=required)


def _d(
    name: str, precision: int, scale: int, *, creatable: bool = True, required: bool = False
) -> Field:
    return Field(
        name,
        "Edm.Decimal",
        precision=precision,
        scale=scale,
        creatable=creatable,
        required=required,
    )


def _date(name: str) -> Field:
    return Field(name, "Edm.DateTime", precision=0)


def _pricing(name: str, keys: tuple[Field, ...]) -> Entity:
    return Entity(
        name,
        (
            *keys,
            _s("PricingProcedureStep", 3, key=True, creatable=False),
            _s("PricingProcedureCounter", 3, key=True, creatable=False),
            _s("ConditionType", 4, required=True),
            _d("ConditionRateValue", 24, 9, required=True),
            _s("ConditionCurrency", 5),
            _d("ConditionQuantity", 5, 0),
            _s("ConditionQuantityUnit", 3),
            _d("ConditionAmount", 16, 3, creatable=False),
        ),
    )


def _document(prefix: str, short: str, pricing: str, item_pricing: str) -> list[Entity]:
    """Header, item and both pricing elements of a sales document API (same shape)."""
    doc = _s(prefix, 10, key=True, creatable=False)
    item_key = _s(f"{prefix}Item", 6, key=True)
    header = Entity(
        f"A_{prefix}",
        (
            doc,
            _s(f"{prefix}Type", 4, required=True),
            _s("SalesOrganization", 4, required=True),
            _s("DistributionChannel", 2, required=True),
            _s("OrganizationDivision", 2, required=True),
            _s("SoldToParty", 10, required=True),
            _s("PurchaseOrderByCustomer", 35),
            _date("CustomerPurchaseOrderDate"),
            _date(f"{prefix}Date"),
            _date("PricingDate"),
            _s("TransactionCurrency", 5),
            *(
                (
                    _s("SDDocumentReason", 3),
                    _s("ReferenceSDDocument", 10),
                    _s("ReferenceSDDocumentCategory", 4),
                )
                if prefix == "CreditMemoRequest"
                else ()
            ),
            _d("TotalNetAmount", 16, 3, creatable=False),
            _s("OverallSDProcessStatus", 1, creatable=False),
        ),
        (("to_Item", f"A_{prefix}Item"), ("to_PricingElement", pricing)),
    )
    item = Entity(
        f"A_{prefix}Item",
        (
            _s(prefix, 10, key=True, creatable=False),
            item_key,
            _s(f"{short}ItemCategory", 4),
            _s(f"{short}ItemText", 40),
            _s("Material", 40, required=True),
            _d("RequestedQuantity", 15, 3, required=True),
            _s("RequestedQuantityUnit", 3),
            _d("NetAmount", 16, 3, creatable=False),
            _s("TransactionCurrency", 5),
        ),
        (("to_PricingElement", item_pricing),),
    )
    return [
        header,
        item,
        _pricing(pricing, (doc,)),
        _pricing(item_pricing, (doc, _s(f"{prefix}Item", 6, key=True, creatable=False))),
    ]


SALES_ORDER_SERVICE = "API_SALES_ORDER_SRV"
CREDIT_MEMO_SERVICE = "API_CREDIT_MEMO_REQUEST_SRV"
SERVICES: dict[str, list[Entity]] = {
    SALES_ORDER_SERVICE: _document(
        "SalesOrder", "SalesOrder", "A_SalesOrderHeaderPrElement", "A_SalesOrderItemPrElement"
    ),
    CREDIT_MEMO_SERVICE: _document(
        "CreditMemoRequest",
        "CreditMemoRequest",
        "A_CreditMemoReqPrcgElmnt",
        "A_CreditMemoReqItemPrcgElmnt",
    ),
}


def entity(service: str, name: str) -> Entity:
    return next(e for e in SERVICES[service] if e.name == name)


def edmx(service: str) -> bytes:
    """``$metadata`` rendered from the fields above (the stand-in's, not SAP's document)."""
    entities = SERVICES[service]
    types, associations, sets, assoc_sets = [], [], [], []
    for e in entities:
        keys = "".join(f'<PropertyRef Name="{f.name}"/>' for f in e.fields if f.key)
        props = []
        for f in e.fields:
            attrs = [f'Name="{f.name}"', f'Type="{f.edm}"']
            if f.key:
                attrs.append('Nullable="false"')
            if f.max_length is not None:
                attrs.append(f'MaxLength="{f.max_length}"')
            if f.edm == "Edm.Decimal":
                attrs.append(f'Precision="{f.precision}" Scale="{f.scale}"')
            if f.edm == "Edm.DateTime":
                attrs.append('Precision="0" sap:display-format="Date"')
            if not f.creatable:
                attrs.append('sap:creatable="false" sap:updatable="false"')
            props.append(f"<Property {' '.join(attrs)}/>")
        navs = []
        for nav, target in e.navigation:
            assoc = f"assoc_{e.name}_{nav}"
            navs.append(
                f'<NavigationProperty Name="{nav}" Relationship="{service}.{assoc}" '
                f'FromRole="From" ToRole="To"/>'
            )
            associations.append(
                f'<Association Name="{assoc}">'
                f'<End Type="{service}.{e.name}Type" Multiplicity="1" Role="From"/>'
                f'<End Type="{service}.{target}Type" Multiplicity="*" Role="To"/>'
                "</Association>"
            )
            assoc_sets.append(
                f'<AssociationSet Name="{assoc}_set" Association="{service}.{assoc}">'
                f'<End EntitySet="{e.name}" Role="From"/><End EntitySet="{target}" Role="To"/>'
                "</AssociationSet>"
            )
        types.append(
            f'<EntityType Name="{e.name}Type"><Key>{keys}</Key>{"".join(props)}'
            f"{''.join(navs)}</EntityType>"
        )
        sets.append(f'<EntitySet Name="{e.name}" EntityType="{service}.{e.name}Type"/>')
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" '
        'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" '
        'xmlns:sap="http://www.sap.com/Protocols/SAPData">'
        '<edmx:DataServices m:DataServiceVersion="2.0">'
        f'<Schema Namespace="{service}" xmlns="http://schemas.microsoft.com/ado/2008/09/edm">'
        f"{''.join(types)}{''.join(associations)}"
        f'<EntityContainer Name="{service}_Entities" m:IsDefaultEntityContainer="true">'
        f"{''.join(sets)}{''.join(assoc_sets)}</EntityContainer>"
        "</Schema></edmx:DataServices></edmx:Edmx>"
    ).encode()
