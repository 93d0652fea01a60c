"""Stripe: a finalized Stripe invoice per Railyard invoice, through the official SDK.

Steps, each a request whose ``Idempotency-Key`` is derived from the invoice's
``idempotency_key`` and the step (``<key>:invoice``, ``<key>:line-3``,
``<key>:credit-0``, ``<key>:finalize``), so a redelivery replays Stripe's stored
answers instead of creating anything twice:

1. Look for an invoice already finalized for this Railyard invoice (metadata
   ``railyard_invoice``): Stripe keeps idempotency keys for 24 hours, the search
   covers a redelivery later than that.
2. The customer: ``invoice.account`` when it is a ``cus_`` id; otherwise the
   customer whose metadata ``railyard_customer`` is ours, or a new one. The
   create's key is derived from the customer (not the invoice), so two invoices
   of a new customer do not create two Stripe customers while search catches up.
3. A draft invoice (``pending_invoice_items_behavior=exclude``): charged
   automatically when the customer has a default payment method, otherwise sent
   (``send_invoice`` with ``days_until_due``).
4. One invoice item per line and one negative item per prepaid credit burned, in
   the currency's minor unit as Stripe counts it.
5. Finalize (``auto_advance``: Stripe then charges or emails it).

A credit note becomes a Stripe Credit Note (``POST /v1/credit_notes``) on the
Stripe invoice of the invoice it credits, for the positive amount, key
``<note key>:credit_note``. That invoice is found in its customer's invoice list
(strongly consistent, unlike search) by metadata ``railyard_invoice``; a credit
note already issued for this note (metadata ``railyard_credit_note``) is returned
as it is, so a redelivery after Stripe forgot the key creates nothing. A credit
above what the invoice has left to credit (its total less the pre- and
post-payment credit notes) is refused before anything is sent; on a paid invoice
the amount is refunded (``refund_amount``).

Config (``RAILYARD_RAIL_STRIPE_*``): ``API_KEY`` (secret, or ``API_KEY_FILE``),
``API_BASE`` (e.g. stripe-mock's address), ``DAYS_UNTIL_DUE`` (30), ``TIMEOUT`` (30 s).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import stripe

from connectors.rails.base import Delivery, PermanentRailError, RailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.credit import check_within, credit_amount, credited_invoice, is_credit
from connectors.rails.registry import register
from streams.domain.invoice import Invoice

ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split())
"""Currencies Stripe counts in whole units."""
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
"""Stripe counts these in thousandths, and the last digit must be 0."""
WHOLE_IN_CENTS = frozenset(("ISK", "UGX"))
"""Zero-decimal currencies Stripe still counts in hundredths (amounts divisible by 100)."""


def to_minor(amount: Decimal, currency: str) -> int:
    """``amount`` as the integer Stripe expects for ``currency``; refuses any rounding."""
    code = currency.upper()
    places = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    scaled = amount.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise PermanentRailError(
            f"{amount} {code} has more decimal places than Stripe takes ({places})",
            code="amount_precision",
        )
    minor = int(scaled)
    if code in THREE_DECIMAL and minor % 10:
        raise PermanentRailError(
            f"{amount} {code}: Stripe needs three-decimal amounts rounded to 0.01",
            code="amount_precision",
        )
    if code in WHOLE_IN_CENTS and minor % 100:
        raise PermanentRailError(
            f"{amount} {code}: Stripe takes whole units only", code="amount_precision"
        )
    return minor


def from_minor(minor: int, currency: str) -> Decimal:
    """An amount Stripe counts in minor units, as a Decimal in the currency's unit."""
    code = currency.upper()
    places = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    return Decimal(minor).scaleb(-places)


def step_key(idempotency_key: str, step: str) -> str:
    """The ``Idempotency-Key`` of one step of an invoice's delivery."""
    return f"{idempotency_key}:{step}"


def classify(exc: stripe.StripeError) -> RailError:
    """Stripe's error as a transient or permanent rail error (message from Stripe's answer)."""
    status = exc.http_status
    code = exc.code or _error_type(exc) or type(exc).__name__
    message = f"Stripe {status or 'connection'}: {exc.user_message or type(exc).__name__}"
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (
        status is None or status in (401, 403, 408, 409, 429) or status >= 500
    ):
        # 401/403: a key being rotated is an operator's fix, not the invoice's fault.
        return TransientRailError(message, code=code, retry_after=_retry_after(exc.headers))
    return PermanentRailError(message, code=code)


def _error_type(exc: stripe.StripeError) -> str | None:
    body = exc.json_body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        value = body["error"].get("type")
        return str(value) if value else None
    return None


def _metadata(obj: Any) -> dict[str, str]:
    meta = obj.to_dict().get("metadata") or {}
    return {str(k): str(v) for k, v in meta.items()}


def _quoted(value: str) -> str:
    """A Stripe search query string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@register("stripe")
class StripeRail:
    name: ClassVar[str] = "stripe"

    def __init__(self, config: RailConfig) -> None:
        base = config.get("api_base")
        self.days_until_due = int(config.get("days_until_due", "30") or 30)
        self.client = stripe.StripeClient(
            config.secret("api_key").get_secret_value(),
            base_addresses={"api": base} if base else None,
            max_network_retries=0,  # the runner retries, with backoff, without blocking others
            http_client=stripe.RequestsClient(timeout=float(config.get("timeout", "30") or 30)),
        )

    def deliver(self, invoice: Invoice) -> Delivery:
        try:
            return self._deliver(invoice)
        except stripe.StripeError as exc:
            raise classify(exc) from None

    def status(self, delivery: Delivery) -> str:
        try:
            return str(self.client.v1.invoices.retrieve(delivery.references["invoice"]).status)
        except stripe.StripeError as exc:
            raise classify(exc) from None

    # -- steps -------------------------------------------------------------------------

    def _deliver(self, invoice: Invoice) -> Delivery:
        if is_credit(invoice):
            return self._credit(invoice)
        existing = self._existing(invoice)
        if existing is not None:
            return self._delivery(invoice, existing)
        customer = self._customer(invoice)
        key = invoice.idempotency_key
        charge = bool(
            (customer.invoice_settings and customer.invoice_settings.default_payment_method)
            or customer.to_dict().get("default_source")
        )
        params: dict[str, Any] = {
            "customer": customer.id,
            "currency": invoice.currency.lower(),
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "description": f"{invoice.number}: {invoice.period_start:%Y-%m-%d} to "
            f"{invoice.period_end:%Y-%m-%d}",
            "metadata": {
                "railyard_invoice": invoice.id,
                "railyard_number": invoice.number,
                "railyard_customer": invoice.customer,
                "railyard_kind": invoice.kind.value,
            },
        }
        if charge:
            params["collection_method"] = "charge_automatically"
        else:
            params["collection_method"] = "send_invoice"
            params["days_until_due"] = self.days_until_due
        draft = self.client.v1.invoices.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": step_key(key, "invoice")},
        )
        for i, line in enumerate(invoice.lines):
            start = line.service_start or invoice.period_start
            end = line.service_end or invoice.period_end
            self._item(
                invoice,
                customer.id,
                draft.id,
                step_key(key, f"line-{i}"),
                to_minor(line.amount, invoice.currency),
                line.description,
                {"start": int(start.timestamp()), "end": int(end.timestamp())},
                {"railyard_line": str(i), "railyard_line_kind": line.kind.value},
            )
        for j, credit in enumerate(invoice.credits):
            self._item(
                invoice,
                customer.id,
                draft.id,
                step_key(key, f"credit-{j}"),
                -to_minor(credit.amount, invoice.currency),
                f"Prepaid credit ({credit.grant})",
                None,
                {"railyard_credit_grant": credit.grant},
            )
        final = self.client.v1.invoices.finalize_invoice(
            draft.id,
            params={"auto_advance": True},
            options={"idempotency_key": step_key(key, "finalize")},
        )
        return self._delivery(invoice, final, customer.id)

    def _item(
        self,
        invoice: Invoice,
        customer: str,
        draft: str,
        key: str,
        amount: int,
        description: str,
        period: dict[str, int] | None,
        metadata: dict[str, str],
    ) -> None:
        params: dict[str, Any] = {
            "customer": customer,
            "invoice": draft,
            "amount": amount,
            "currency": invoice.currency.lower(),
            "description": description[:500],
            "metadata": metadata,
        }
        if period is not None:
            params["period"] = period
        self.client.v1.invoice_items.create(params=params, options={"idempotency_key": key})  # type: ignore[arg-type]

    def _credit(self, note: Invoice) -> Delivery:
        credited = credited_invoice(note)
        original = self._credited_invoice(note)
        if original is None:
            raise PermanentRailError(
                f"Stripe: {note.number} credits {credited.number}, which Stripe does not hold "
                f"(no finalized invoice with metadata railyard_invoice {credited.id})",
                code="credited_invoice_missing",
            )
        refs = {"invoice": str(original.id), "customer": str(original.customer)}
        for issued in self.client.v1.credit_notes.list(
            params={"invoice": original.id, "limit": 100}
        ).auto_paging_iter():
            if _metadata(issued).get("railyard_credit_note") == note.id:
                return Delivery(
                    self.name, note.id, {**refs, "credit_note": str(issued.id)}, str(issued.status)
                )
        amount = to_minor(credit_amount(note), note.currency)
        data = original.to_dict()
        credited_minor = int(data.get("pre_payment_credit_notes_amount") or 0) + int(
            data.get("post_payment_credit_notes_amount") or 0
        )
        check_within(
            note,
            from_minor(amount, note.currency),
            from_minor(credited_minor, note.currency),
            from_minor(int(data.get("total") or 0), note.currency),
        )
        params: dict[str, Any] = {
            "invoice": original.id,
            "amount": amount,
            "memo": f"{note.number}: credit for {credited.number}",
            "metadata": {
                "railyard_credit_note": note.id,
                "railyard_number": note.number,
                "railyard_invoice": credited.id,
            },
        }
        if original.status == "paid":
            params["refund_amount"] = amount  # money back on the rail that collected it
        issued = self.client.v1.credit_notes.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": step_key(note.idempotency_key, "credit_note")},
        )
        return Delivery(
            self.name, note.id, {**refs, "credit_note": str(issued.id)}, str(issued.status)
        )

    def _credited_invoice(self, note: Invoice) -> stripe.Invoice | None:
        """The finalized Stripe invoice of the invoice ``note`` credits, from its customer's list."""
        credited = credited_invoice(note)
        customer = self._known_customer(note)
        if customer is None:
            return None
        for candidate in self.client.v1.invoices.list(
            params={"customer": customer, "limit": 100}
        ).auto_paging_iter():
            if _metadata(candidate).get("railyard_invoice") == credited.id:
                if candidate.status not in ("draft", "void"):
                    return candidate
        return None

    def _known_customer(self, invoice: Invoice) -> str | None:
        """The Stripe customer id of ``invoice``'s customer, never creating one."""
        if invoice.account and invoice.account.startswith("cus_"):
            return invoice.account
        found = self.client.v1.customers.search(
            params={"query": f"metadata['railyard_customer']:{_quoted(invoice.customer)}"}
        )
        for candidate in found.data:
            if _metadata(candidate).get("railyard_customer") == invoice.customer:
                return str(candidate.id)
        return None

    def _existing(self, invoice: Invoice) -> stripe.Invoice | None:
        found = self.client.v1.invoices.search(
            params={"query": f"metadata['railyard_invoice']:{_quoted(invoice.id)}"}
        )
        for candidate in found.data:
            if _metadata(candidate).get("railyard_invoice") == invoice.id:
                if candidate.status != "draft":
                    return candidate
        return None

    def _customer(self, invoice: Invoice) -> stripe.Customer:
        if invoice.account and invoice.account.startswith("cus_"):
            customer = self.client.v1.customers.retrieve(invoice.account)
            if customer.to_dict().get("deleted"):
                raise PermanentRailError(
                    f"Stripe customer {invoice.account} is deleted", code="resource_missing"
                )
            return customer
        found = self.client.v1.customers.search(
            params={"query": f"metadata['railyard_customer']:{_quoted(invoice.customer)}"}
        )
        for candidate in found.data:
            if _metadata(candidate).get("railyard_customer") == invoice.customer:
                return candidate
        seed = f"{invoice.customer}|{invoice.customer_name}".encode()
        return self.client.v1.customers.create(
            params={
                "name": invoice.customer_name,
                "metadata": {"railyard_customer": invoice.customer},
            },
            options={
                "idempotency_key": f"railyard-customer-{hashlib.sha256(seed).hexdigest()[:40]}"
            },
        )

    def _delivery(
        self, invoice: Invoice, stripe_invoice: Any, customer: str | None = None
    ) -> Delivery:
        refs = {
            "invoice": str(stripe_invoice.id),
            "customer": customer or str(stripe_invoice.customer),
        }
        if stripe_invoice.number:
            refs["number"] = str(stripe_invoice.number)
        return Delivery(self.name, invoice.id, refs, str(stripe_invoice.status or "open"))
