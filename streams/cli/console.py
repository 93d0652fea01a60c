"""``railyard console link``: a signed, expiring link to one customer's portal pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

import typer

from connectors.console.links import Purpose, sign
from streams.agents.runtime import process_clock
from streams.settings import Settings

console_app = typer.Typer(help="The web console (docs/console.md).", no_args_is_help=True)


@console_app.command("link")
def link(
    customer: Annotated[str, typer.Argument(help="The customer's key in the catalog")],
    days: Annotated[int, typer.Option(min=1, max=366, help="How long the link is valid")] = 30,
    base_url: Annotated[
        str, typer.Option(help="Where the console is served; default: railyard api's address")
    ] = "",
) -> None:
    """Print a link that shows CUSTOMER its own usage, spend and invoices, and nothing
    else, until it expires. Signed with RAILYARD_CONSOLE_SECRET: changing it revokes
    every link."""
    s = Settings()
    secret = s.console_secret.get_secret_value()
    if not secret:
        typer.echo("error: set RAILYARD_CONSOLE_SECRET to sign portal links", err=True)
        raise typer.Exit(2)
    try:
        now = process_clock(s.clock_origin)()  # the clock the API checks links by
        token = sign(secret, Purpose.PORTAL, customer, now, timedelta(days=days))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    base = (base_url or f"http://{s.api_host}:{s.api_port}").rstrip("/")
    print(f"{base}/console/portal/{quote(customer)}?token={quote(token)}")
