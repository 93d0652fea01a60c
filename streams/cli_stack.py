"""``railyard stack ...`` and ``railyard topics ...``: the local broker and the topics.

Mounted by :mod:`streams.cli`, whose ``main`` turns a :class:`RailyardError` into a
one-line message and exit status 2.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.kafka.admin import create_topics, list_topics
from connectors.kafka.stack import BrokerStatus, LocalBroker
from connectors.kafka.topics import topic_specs
from streams.settings import Settings

stack_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
topics_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
err_console = Console(stderr=True)


def _settings() -> Settings:
    return Settings().validate()


def _broker(settings: Settings) -> LocalBroker:
    return LocalBroker(settings, progress=lambda msg: err_console.print(f"[dim]{msg}[/dim]"))


def _status_table(status: BrokerStatus) -> Table:
    table = Table("", "", show_header=False, title="Kafka (local KRaft broker)")
    state = "[green]running[/green]" if status.running else "[yellow]stopped[/yellow]"
    table.add_row("state", state)
    table.add_row("pid", str(status.pid) if status.pid else "-")
    table.add_row("bootstrap", status.bootstrap)
    table.add_row("topics", "-" if status.topics is None else str(status.topics))
    table.add_row("data", str(status.data_dir))
    table.add_row("logs", str(status.log_dir))
    return table


@stack_app.command("up")
def up(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker.")] = 90.0,
) -> None:
    """Install Kafka if needed, start the broker, create every topic."""
    settings = _settings()
    broker = _broker(settings)
    broker.install()
    broker.up(timeout)
    created = create_topics(settings)
    if created:
        err_console.print(f"[dim]created topics: {', '.join(created)}[/dim]")
    console.print(_status_table(broker.status()))


@stack_app.command("down")
def down(
    timeout: Annotated[float, typer.Option(help="Seconds before SIGKILL.")] = 30.0,
) -> None:
    """Stop the broker; its data stays for the next start."""
    if _broker(_settings()).down(timeout):
        console.print("Kafka stopped")
    else:
        console.print("Kafka was not running")


@stack_app.command("status")
def status() -> None:
    """Whether the broker runs, where, and with how many topics."""
    current = _broker(_settings()).status()
    console.print(_status_table(current))
    if not current.running:
        raise typer.Exit(1)


@topics_app.command("create")
def create() -> None:
    """Create every Railyard topic that does not exist yet (never alters existing ones)."""
    settings = _settings()
    created = create_topics(settings)
    existing = len(topic_specs(settings)) - len(created)
    console.print(f"created {len(created)} topic(s), {existing} already existed")
    for name in created:
        console.print(f"  {name}")


@topics_app.command("list")
def list_() -> None:
    """Topics on the broker; those Railyard declares are marked."""
    settings = _settings()
    declared = {s.name: s for s in topic_specs(settings)}
    on_broker = list_topics(settings.kafka_bootstrap)
    table = Table("topic", "partitions", "declared", "config")
    for name in sorted(set(on_broker) | set(declared)):
        spec = declared.get(name)
        partitions = str(on_broker[name]) if name in on_broker else "[red]missing[/red]"
        if spec and name in on_broker and on_broker[name] != spec.partitions:
            partitions = f"[yellow]{on_broker[name]} (declared {spec.partitions})[/yellow]"
        config = ", ".join(f"{k}={v}" for k, v in spec.config.items()) if spec else ""
        table.add_row(name, partitions, "yes" if spec else "", config)
    console.print(table)
