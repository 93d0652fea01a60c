"""The delivery step's ending: the rails' payment notifications, back into the stream.

For Stripe, Adyen and PayPal, ``railyard rails listen RAIL`` runs in a process of its
own with the sandbox peer's secrets; the peer (the stand-in) then sends the
notifications its rail sends, signed, for the invoices it holds: the first of every
three is paid, the second's payment fails, the third is paid and then refunded. The
receivers verify, publish to ``invoices.status``, the sink writes them to ClickHouse,
and the table is read back from ``invoice_delivery``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from rich.console import Console
from rich.table import Table

from connectors.clickhouse.analyst import query
from connectors.clickhouse.sql import literal
from connectors.processes import ManagedProcess, spawn
from streams.domain.errors import RailyardError
from streams.domain.invoice import Invoice
from streams.settings import Settings

NOTIFYING = {"stripe": "invoice", "adyen": "pspReference", "paypal": "invoice"}
"""The rails that notify, and the reference a delivered invoice needs for a notification."""
SCRIPT = (("paid",), ("payment_failed",), ("paid", "refunded"))
"""What happens to the 1st, 2nd and 3rd invoice of every three, in order."""
TIMEOUT = 120.0


def _listen(settings: Settings, rail: str, peer: Any) -> tuple[ManagedProcess, str]:
    from connectors.rails.sandbox.peer_stripe import free_ports

    [port] = free_ports(1)
    prefix = f"RAILYARD_RAIL_{rail.upper()}_"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    command = ["rails", "listen", rail, "--port", str(port)]
    process = spawn(f"listen-{rail}", command, settings, environ=environ | peer.config().to_env())
    deadline = time.monotonic() + 60
    while True:
        if not process.alive:
            raise RailyardError(f"{process.name} exited:\n{process.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}/"
        except OSError:
            if time.monotonic() > deadline:
                raise RailyardError(
                    f"{process.name} did not listen:\n{process.log_tail()}"
                ) from None
            time.sleep(0.2)


def notify_payments(
    settings: Settings,
    console: Console,
    peers: Mapping[str, Any],
    invoices: Mapping[str, list[Invoice]],
    refs: Mapping[str, Mapping[str, str]],
) -> None:
    """Send each notifying rail's payment notifications and show every invoice's rail status.

    ``refs`` are the rail's ids of each delivered invoice (from ``invoice_delivery``).
    """
    from connectors.rails.sandbox.notify import notification, send

    rails = [r for r in sorted(invoices) if r in NOTIFYING and r in peers]
    if not rails:
        return
    console.rule("[bold]Payment status: the rails' notifications back into the stream")
    expected: dict[str, str] = {}
    with ExitStack() as stack:
        n = 0
        for rail in rails:
            process, url = _listen(settings, rail, peers[rail])
            stack.callback(process.stop)
            sent = 0
            for invoice in invoices[rail]:
                held = refs.get(invoice.id, {})
                if NOTIFYING[rail] not in held:
                    continue  # not delivered, or nothing was charged: nothing to notify
                step = {"invoice_id": invoice.id, "number": invoice.number, "references": held}
                for status in SCRIPT[n % len(SCRIPT)]:
                    code, _ = send(url, notification(peers[rail], status, step))
                    if code != 200:
                        raise RailyardError(f"{rail}'s receiver answered {code} to {status}")
                    expected[invoice.id] = status
                    sent += 1
                n += 1
            console.print(f"{rail}: {sent} signed notifications to railyard rails listen at {url}")
        rows = _wait_for(settings, expected)
    _show(console, rows)


def _rows(settings: Settings, ids: list[str]) -> list[list[Any]]:
    listed = ", ".join(literal(i) for i in ids)
    return query(
        settings,
        "SELECT number, customer, rail, status, payment_status, payment_event "
        f"FROM invoice_delivery WHERE invoice_id IN ({listed}) ORDER BY rail, number",
    ).rows


def _wait_for(settings: Settings, expected: Mapping[str, str]) -> list[list[Any]]:
    """``invoice_delivery``'s rows once each notified invoice shows its last status."""
    ids = sorted(expected)
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            rows = _rows(settings, ids)
            shown = query(
                settings,
                "SELECT invoice_id, payment_status FROM invoice_delivery "
                f"WHERE invoice_id IN ({', '.join(literal(i) for i in ids)})",
            ).rows
        except RailyardError:
            rows, shown = [], []  # the sink is busy; ask again
        if {r[0]: r[1] for r in shown} == dict(expected):
            return rows
        if time.monotonic() > deadline:
            raise RailyardError(
                f"timed out after {TIMEOUT:.0f}s waiting for the payment statuses in "
                f"invoice_delivery; see {settings.home / 'logs'}/listen-*.log"
            )
        time.sleep(0.5)


def _show(console: Console, rows: list[list[Any]]) -> None:
    table = Table(title="Rail status per invoice (invoice_delivery)")
    for col in ("number", "customer", "rail", "delivery", "payment", "rail event"):
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row[4])] = counts.get(str(row[4]), 0) + 1
    console.print(
        "payment statuses: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + " (railyard invoices --status shows them too)"
    )
