"""A polled document's payment state, from the fields its rail returns (pure: no I/O, no clock).

Each reader takes the document's fields as the rail's API returns them, ``today`` (the
poller's clock) and ``terms``, how long after issue payment is due when the rail gives
no due date of its own, and returns a :class:`PaymentState`:

* **NetSuite** (``invoice`` record): ``status`` ``Paid In Full`` (id ``B``) or
  ``amountRemaining`` 0 is paid, ``Voided`` (``V``) voided; otherwise what is paid is
  ``total - amountRemaining``: past ``dueDate`` (else ``tranDate`` + terms) overdue,
  else partially paid when anything is paid, else nothing to say.
* **SAP** (``A_SalesOrder`` of ``API_SALES_ORDER_SRV``): ``OverallSDProcessStatus`` ``C``
  (completely processed) is paid, ``B`` (partially processed) partially paid, with no
  amount (the order does not carry one); ``A`` past ``SalesOrderDate`` + terms is
  overdue. Why this field: ``docs/rails.md``, "Payment status: polling".
* **Salesforce** (``Invoice__c``): ``Status__c`` ``Paid``, ``Partially Paid``,
  ``Overdue``, ``Void``, with ``Amount_Paid__c``; an ``Issued`` record past
  ``Issued_At__c`` + terms is overdue.

``None`` as status means the rail reports nothing beyond delivery (open, nothing paid,
not yet due): the poller publishes nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.rails.notifications.mapping import PaymentStatus


class StateError(ValueError):
    """The rail's answer lacks a field the reader needs, or holds a value it cannot read."""


@dataclass(frozen=True)
class PaymentState:
    status: PaymentStatus | None
    rail_status: str
    """The rail's own word for it (``Paid In Full``, ``C``, ``Partially Paid``, ...)."""
    amount_paid: Decimal | None = None
    """What the rail says is paid so far, when it says (never for SAP)."""


def _decimal(fields: Mapping[str, Any], name: str) -> Decimal:
    value = fields.get(name)
    if value is None or isinstance(value, bool):
        raise StateError(f"no {name}")
    try:
        # A JSON number arrives as a float: its shortest repr is the decimal the rail sent.
        return Decimal(str(value)).normalize() + 0
    except InvalidOperation:
        raise StateError(f"{name} is not a number: {value!r}") from None


def _day(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise StateError(f"{name} is not a date: {value!r}") from None


def _open(word: str, paid: Decimal | None, due: date | None, today: date) -> PaymentState:
    """A document not fully paid nor voided: overdue past its due day, else partially paid."""
    amount = paid if paid is not None and paid > 0 else None
    if due is not None and today > due:
        return PaymentState(PaymentStatus.OVERDUE, word, amount)
    if amount is not None:
        return PaymentState(PaymentStatus.PARTIALLY_PAID, word, amount)
    return PaymentState(None, word)


def netsuite_state(fields: Mapping[str, Any], today: date, terms: timedelta) -> PaymentState:
    status = fields.get("status")
    if isinstance(status, Mapping):
        code, word = str(status.get("id") or ""), str(status.get("refName") or "")
    else:
        code = word = str(status or "")
    word = word or code
    total, remaining = _decimal(fields, "total"), _decimal(fields, "amountRemaining")
    if code == "V" or word.lower() == "voided":
        return PaymentState(PaymentStatus.VOIDED, word)
    if code == "B" or word.lower() == "paid in full" or (remaining <= 0 < total):
        return PaymentState(PaymentStatus.PAID, word, total)
    due = _day(fields.get("dueDate"), "dueDate")
    if due is None and (issued := _day(fields.get("tranDate"), "tranDate")) is not None:
        due = issued + terms
    return _open(word, total - remaining, due, today)


SAP_PROCESS_STATUS = {
    "A": "not yet processed",
    "B": "partially processed",
    "C": "completely processed",
}


def sap_state(fields: Mapping[str, Any], today: date, terms: timedelta) -> PaymentState:
    code = str(fields.get("OverallSDProcessStatus") or "")
    if code not in SAP_PROCESS_STATUS:
        raise StateError(f"OverallSDProcessStatus {code!r} is none of A, B, C")
    if code == "C":
        return PaymentState(PaymentStatus.PAID, code)
    if code == "B":
        return PaymentState(PaymentStatus.PARTIALLY_PAID, code)
    ordered = _day(fields.get("SalesOrderDate"), "SalesOrderDate")
    return _open(code, None, None if ordered is None else ordered + terms, today)


SALESFORCE_STATUSES = {
    "Paid": PaymentStatus.PAID,
    "Partially Paid": PaymentStatus.PARTIALLY_PAID,
    "Overdue": PaymentStatus.OVERDUE,
    "Void": PaymentStatus.VOIDED,
}


def salesforce_state(fields: Mapping[str, Any], today: date, terms: timedelta) -> PaymentState:
    word = str(fields.get("Status__c") or "Issued")
    paid = None if fields.get("Amount_Paid__c") is None else _decimal(fields, "Amount_Paid__c")
    status = SALESFORCE_STATUSES.get(word)
    if status is PaymentStatus.PAID:
        return PaymentState(status, word, _decimal(fields, "Total__c"))
    if status is PaymentStatus.VOIDED:
        return PaymentState(status, word)
    if status is not None:  # the org's own word for a partial or late payment wins
        return PaymentState(status, word, paid if paid is not None and paid > 0 else None)
    if word != "Issued":
        raise StateError(f"Status__c {word!r} is not a value of the picklist")
    issued = _day(fields.get("Issued_At__c"), "Issued_At__c")
    return _open(word, paid, None if issued is None else issued + terms, today)


READERS: Mapping[str, Callable[[Mapping[str, Any], date, timedelta], PaymentState]] = {
    "netsuite": netsuite_state,
    "sap": sap_state,
    "salesforce": salesforce_state,
}
"""The rails ``railyard rails poll`` serves: those that send no payment notifications."""


def changed(
    previous: PaymentStatus | None, previous_paid: Decimal | None, state: PaymentState
) -> bool:
    """Whether ``state`` is news after the latest recorded payment step.

    Nothing to say (``status`` None) is never news: the poller does not undo a status.
    """
    if state.status is None:
        return False
    return (state.status, state.amount_paid) != (previous, previous_paid)


def event_id(invoice_id: str, recorded: int, state: PaymentState) -> str:
    """The step's event id: the same transition polled twice (two pollers) gets the same id.

    ``recorded`` is how many payment steps the invoice had before this one.
    """
    return f"poll:{invoice_id}:{recorded}:{state.status}"
