"""The demo's last act: the doors other tools come in by, each knocked on once.

Before the processes start, :func:`open_doors` makes the run's API key (stored hashed,
shown once) and, unless one is set, a console secret for this run's portal links. At
the end, :func:`show_doors` asks each door something whose answer the demo already
knows (ClickHouse's HTTP interface and the OpenMeter-compatible API against
``usage_quantity``), then prints where to point a browser, Grafana, DBeaver, Prometheus
and an OpenMeter client.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from connectors.api import keys, keystore
from connectors.api.service import port_file as api_port_file
from connectors.clickhouse.analyst import query, query_port_file
from connectors.clickhouse.sql import literal
from connectors.console.links import Purpose, sign
from streams.domain.errors import RailyardError
from streams.settings import Settings

PORTAL_VALID = timedelta(days=30)


@dataclass(frozen=True)
class Doors:
    """What the demo made for its doors: the API key, shown once."""

    api_key: str


def open_doors(settings: Settings, now: datetime) -> tuple[Settings, Doors]:
    """The run's API key, replacing any earlier demo's (the home is the demo's), and a
    console secret for this run when none is set; returns the settings to spawn with."""
    key = keys.new_key()
    keystore.save(keystore.key_file(settings), [keys.create("demo", [], key, now)])
    if not settings.console_secret.get_secret_value():
        settings = settings.with_(console_secret=SecretStr(secrets.token_hex(32)))
    return settings, Doors(key)


def _port(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError) as exc:
        raise RailyardError(f"{path.name}: the process did not say where it listens") from exc


def _get(url: str, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return bytes(resp.read())


def _largest(settings: Settings, month: str) -> tuple[str, str, datetime, datetime]:
    """(customer, meter, from, to) of the largest usage line of ``month``'s invoices."""
    rows = query(
        settings,
        f"""
        SELECT l.customer, l.meter, i.period_start, i.period_end
        FROM invoice_lines AS l INNER JOIN invoices AS i ON i.id = l.invoice_id
        WHERE formatDateTime(i.period_start, '%Y-%m') = {literal(month)} AND l.meter != ''
        ORDER BY l.amount DESC, l.customer, l.meter LIMIT 1
        """,
    ).rows
    if not rows:
        raise RailyardError(f"no usage line in {month}'s invoices to ask the API about")
    customer, meter, start, end = rows[0]
    return str(customer), str(meter), _instant(start), _instant(end)


def _instant(value: object) -> datetime:
    """A DateTime64 as the store answered it: ISO 8601 through the sink, else a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def show_doors(
    settings: Settings, console: Console, doors: Doors, month: str, now: datetime
) -> None:
    """Ask each door one question with a known answer; print where to point each tool."""
    console.rule("[bold]Open doors: the tools people already use, pointed at this run")
    host = settings.api_host
    api = f"http://{host}:{_port(api_port_file(settings))}"
    ch = f"http://{settings.query_host}:{_port(query_port_file(settings))}"

    # ClickHouse's own HTTP protocol, answered by the engine inside the sink.
    ping = _get(f"{ch}/ping").decode().strip()
    sql = "SELECT count() FROM invoices FORMAT TabSeparated"
    over_http = int(_get(f"{ch}/?{urllib.parse.urlencode({'query': sql})}"))
    direct = int(query(settings, "SELECT count() FROM invoices").rows[0][0])
    if ping != "Ok." or over_http != direct:
        raise RailyardError(f"ClickHouse HTTP: ping {ping!r}, {over_http} invoices vs {direct}")
    console.print(
        f"ClickHouse HTTP at {ch}: /ping says {ping}; SELECT count() FROM invoices = "
        f"{over_http}, as railyard sql says"
    )

    # The OpenMeter-compatible API: the largest usage line's meter over its period.
    customer, meter, start, end = _largest(settings, month)
    bearer = {"Authorization": f"Bearer {doors.api_key}"}
    meters = json.loads(_get(f"{api}/api/v1/meters", bearer))
    params = urllib.parse.urlencode(
        {
            "from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "filterCustomerId": customer,
        }
    )
    answer = json.loads(_get(f"{api}/api/v1/meters/{meter}/query?{params}", bearer))
    via_api = sum((Decimal(str(row["value"])) for row in answer["data"]), Decimal(0))
    exact = query(
        settings,
        f"""
        SELECT toString(sum(quantity)) FROM usage_quantity(
            from = {literal(start.strftime("%Y-%m-%d %H:%M:%S"))},
            to = {literal(end.strftime("%Y-%m-%d %H:%M:%S"))})
        WHERE customer = {literal(customer)} AND meter = {literal(meter)}
        """,
    ).rows[0][0]
    if via_api != Decimal(str(exact)):
        raise RailyardError(f"API: {meter} for {customer} = {via_api}, usage_quantity {exact}")
    console.print(
        f"OpenMeter-compatible API at {api}/api/v1: {len(meters)} meters; {meter} for "
        f"{customer} from {start:%Y-%m-%d} to {end:%Y-%m-%d} = {via_api}, as usage_quantity says"
    )

    secret = settings.console_secret.get_secret_value()
    portal = sign(secret, Purpose.PORTAL, customer, now, PORTAL_VALID)
    metrics = sorted(settings.run_dir.glob("*.metrics-port"))
    table = Table("tool", "point it at", title="Where to point your tools (while this run is up)")
    table.add_row("browser", f"{api}/console/ (log in with the API key below)")
    table.add_row("", f"{customer}'s customer portal: the link below")
    table.add_row(
        "Grafana",
        f"ClickHouse data source: protocol HTTP, server {settings.query_host}, port "
        f"{_port(query_port_file(settings))}, user default, no password (read-only)",
    )
    table.add_row(
        "DBeaver", f"ClickHouse driver, jdbc:clickhouse:{ch}/default, user default (read-only)"
    )
    table.add_row(
        "Prometheus",
        ", ".join(
            f"{p.name.removesuffix('.metrics-port')} {settings.metrics_host}:{_port(p)}"
            for p in metrics
        )
        or "RAILYARD_METRICS_PORT=-1: no metrics served",
    )
    table.add_row(
        "OpenMeter client",
        f'openmeter.Client(endpoint="{api}", token="{doors.api_key}")',
    )
    console.print(table)
    link = f"{api}/console/portal/{customer}?token={urllib.parse.quote(portal)}"
    console.print(f"portal link for {customer}: {link}", soft_wrap=True, markup=False)
    console.print(
        f"the API key above ({doors.api_key[:8]}...) is stored only as its SHA-256 digest in "
        f"{keystore.key_file(settings)}; docs/api.md, docs/analytics.md and docs/console.md "
        "say more"
    )
