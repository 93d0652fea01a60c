"""``railyard rails run|listen|poll|list|redrive`` and ``railyard invoices --status``."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.agents.runtime import process_clock
from streams.settings import Settings

rails_app = typer.Typer(help="Deliver invoices to their billing rails.", no_args_is_help=True)
console = Console()


@rails_app.command("run")
def run(
    rail: Annotated[str, typer.Argument(help="The rail to deliver, e.g. stripe.")],
    max_invoices: Annotated[
        int | None, typer.Option(help="Exit once this many invoices are settled.")
    ] = None,
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many seconds with nothing to do.")
    ] = None,
    loglevel: str = "INFO",
) -> None:
    """Run RAIL's connector: consume invoices.RAIL, deliver, record to invoices.status.

    Config comes from RAILYARD_RAIL_<RAIL>_<KEY> (or <KEY>_FILE for secrets).
    SIGTERM finishes the delivery in progress, commits and exits.
    """
    from connectors.rails.runner import run_rail

    logging.basicConfig(
        level=getattr(logging, loglevel.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    stats = run_rail(Settings().validate(), rail, max_invoices=max_invoices, idle_exit=idle_exit)
    console.print(
        f"rail {rail}: {stats.delivered} delivered, {stats.failed} failed, {stats.retries} retries, "
        f"circuit opened {stats.outages} time(s)"
    )


@rails_app.command("listen")
def listen(
    rail: Annotated[str, typer.Argument(help="The rail whose notifications to receive.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free one).")] = 8790,
    loglevel: str = "INFO",
) -> None:
    """Receive RAIL's payment notifications (stripe, adyen, paypal) and publish each
    invoice's payment status to invoices.status.

    Each notification's signature is verified with the rail's secret from
    RAILYARD_RAIL_<RAIL>_<KEY> (Stripe: WEBHOOK_SECRET; Adyen: HMAC_KEY; PayPal:
    WEBHOOK_ID with CLIENT_ID/CLIENT_SECRET/BASE_URL); forged or stale ones get 401.
    A notification already recorded (same event id) changes nothing.
    """
    import signal
    import threading

    from connectors.rails.config import RailConfig
    from connectors.rails.notifications.receiver import NotificationReceiver, serve

    logging.basicConfig(
        level=getattr(logging, loglevel.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    settings = Settings().validate()
    receiver = NotificationReceiver(
        settings, RailConfig.from_env(rail), process_clock(settings.clock_origin)
    )
    server = serve(receiver, port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    host, bound = server.server_address[:2]
    console.print(f"rail {rail}: listening on http://{host!s}:{bound}/", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        receiver.close()


@rails_app.command("poll")
def poll(
    rail: Annotated[str, typer.Argument(help="The rail to poll: netsuite, sap or salesforce.")],
    once: Annotated[
        bool, typer.Option("--once", help="Poll every document due now, then exit (for cron).")
    ] = False,
    loglevel: str = "INFO",
) -> None:
    """Read RAIL's payment state of every delivered invoice and publish changes
    (paid, partially_paid, overdue, voided) to invoices.status.

    For the rails that send no notifications. Runs beside `railyard rails run RAIL`,
    with the same RAILYARD_RAIL_<RAIL>_* settings, plus POLL_INTERVAL [5m] (doubling
    per poll that finds nothing new), POLL_MAX_INTERVAL [6h] and PAYMENT_TERMS [30d]
    (when the rail gives no due date). SIGTERM stops it between two polls.
    """
    import signal
    import threading

    from connectors.rails.config import RailConfig
    from connectors.rails.polling.poller import start_poller

    logging.basicConfig(
        level=getattr(logging, loglevel.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    settings = Settings().validate()
    poller = start_poller(settings, RailConfig.from_env(rail), process_clock(settings.clock_origin))
    try:
        if once:
            stats = poller.poll_once()
        else:
            from connectors.metrics import serve as serve_metrics

            serve_metrics(settings, f"rail-{rail}-poll")  # railyard_invoice_payments_total
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            console.print(f"rail {rail}: polling payment state", highlight=False)
            try:
                stats = poller.run(stop)
            except KeyboardInterrupt:
                stats = None
    finally:
        poller.close()
    if stats is not None:
        console.print(
            f"rail {rail}: {stats.polled} polled, {stats.published} changed, "
            f"{stats.errors} error(s)",
            highlight=False,
        )


@rails_app.command("redrive")
def redrive(
    rail: Annotated[str | None, typer.Option(help="Only dead letters of this rail.")] = None,
    invoice: Annotated[
        str | None, typer.Option(help="Only this invoice (its id or its number).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be redriven, publish nothing.")
    ] = False,
) -> None:
    """Re-publish dead letters from invoices.dlq to invoices.<rail>, once the cause is fixed.

    Each invoice's original bytes go back with its customer as the key; the rail's
    idempotency key keeps it to one document at the rail however often it is redriven.
    Invoices delivered since their dead letter are skipped.
    """
    from connectors.rails.redrive import redrive as redrive_dead_letters

    done = redrive_dead_letters(Settings().validate(), rail=rail, invoice=invoice, dry_run=dry_run)
    title = "Dead letters (dry run: nothing published)" if dry_run else "Dead letters redriven"
    table = Table(
        "dlq offset", "invoice", "number", "to rail", "reason", "error", "action", title=title
    )
    for r in done:
        action = "would redrive" if dry_run and r.redriven else r.action
        table.add_row(
            str(r.offset),
            r.invoice_id or "-",
            r.number or "-",
            r.rail,
            r.reason,
            r.error[:80],
            action,
        )
    console.print(table)
    verb = "would be redriven" if dry_run else "redriven"
    console.print(f"{sum(r.redriven for r in done)} of {len(done)} dead letter(s) {verb}")


@rails_app.command("list")
def list_rails() -> None:
    """Every registered rail, its topic and which settings are present (names only)."""
    from connectors.kafka.topics import rail_topic
    from connectors.rails.config import RailConfig
    from connectors.rails.registry import rails

    table = Table("rail", "topic", "settings present")
    for name in sorted(rails()):
        keys = sorted(RailConfig.from_env(name).values)
        table.add_row(name, rail_topic(name), ", ".join(keys) or "-")
    console.print(table)


def invoices(
    status: Annotated[
        bool, typer.Option("--status", help="Where every invoice stands on its rail.")
    ] = False,
    rail: Annotated[str | None, typer.Option(help="Only this rail.")] = None,
    limit: Annotated[int, typer.Option(help="Invoices listed, newest first.")] = 50,
) -> None:
    """Invoices and their delivery: pending, delivered (with the rail's ids), retrying, failed;
    their payment status; and per rail and currency what was issued, collected, is
    outstanding, failed and was refunded."""
    from connectors.clickhouse.analyst import query
    from connectors.clickhouse.delivery import counts_sql, revenue_sql, status_sql

    if not status:
        console.print("use --status to see where every invoice stands")
        raise typer.Exit(2)
    settings = Settings().validate()
    listed = query(settings, status_sql(rail, limit))
    table = Table(*listed.columns, title="Invoices by delivery status")
    for row in listed.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    counts = query(settings, counts_sql(rail))
    summary = Table(*counts.columns, title="Per rail")
    for row in counts.rows:
        summary.add_row(*(str(v) for v in row))
    console.print(summary)
    revenue = query(settings, revenue_sql(rail))
    money = Table(
        *revenue.columns, title="Revenue per rail and currency (invoices, not credit notes)"
    )
    for row in revenue.rows:
        money.add_row(*(_amount(v) for v in row))
    console.print(money)


def _amount(value: object) -> str:
    """A Decimal as plain digits (``0E-9`` reads as 0); anything else as it is."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return f"{value.normalize() + 0:f}"
    return str(value)
