"""``railyard api`` and ``railyard api-keys ...`` (``docs/api.md``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.settings import Settings

console = Console()
err_console = Console(stderr=True)
api_keys_app = typer.Typer(
    help="Make, list and revoke the API keys of `railyard api`.", no_args_is_help=True
)


def api(loglevel: str = "INFO") -> None:
    """Run the OpenMeter-compatible ingest and usage API on RAILYARD_API_PORT."""
    from connectors.api.service import run_api
    from streams.agents.runtime import process_clock

    logging.basicConfig(
        level=getattr(logging, loglevel.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    settings = Settings().validate()
    run_api(settings, process_clock(settings.clock_origin))


@api_keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="What the key is for; shown by `list`.")],
    source: Annotated[
        list[str] | None,
        typer.Option(help="An event source the key may send (repeat); none: any source."),
    ] = None,
) -> None:
    """Make a key and print it, once, alone on stdout: only its SHA-256 digest is stored."""
    from connectors.api import keys, keystore

    path = keystore.key_file(Settings())
    stored = keystore.load(path)
    key = keys.new_key()
    record = keys.create(name, source or [], key, datetime.now(UTC))
    keystore.save(path, [*stored, record])
    err_console.print(f"API key {record.id} ({name}), shown once, keep it now:")
    print(key)  # alone on stdout: KEY=$(railyard api-keys create --name ...)


@api_keys_app.command("list")
def list_keys() -> None:
    """Every key made: id, name, allowed sources, when made and revoked."""
    from connectors.api import keystore

    table = Table("id", "name", "sources", "created", "revoked")
    for k in keystore.load(keystore.key_file(Settings())):
        table.add_row(
            k.id,
            k.name,
            ", ".join(k.sources) or "any",
            k.created_at.isoformat(timespec="seconds"),
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
        )
    console.print(table)


@api_keys_app.command("revoke")
def revoke(id_or_name: Annotated[str, typer.Argument(help="A key's id or name.")]) -> None:
    """Revoke a key: the running API refuses it from its next request."""
    from connectors.api import keys, keystore

    path = keystore.key_file(Settings())
    updated, count = keys.revoke(keystore.load(path), id_or_name, datetime.now(UTC))
    if not count:
        console.print(f"no active key {id_or_name!r}")
        raise typer.Exit(1)
    keystore.save(path, updated)
    console.print(f"revoked {count} key(s)")
