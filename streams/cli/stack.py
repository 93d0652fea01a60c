"""``railyard stack ...`` and ``railyard topics ...``: the local broker and the topics.

Mounted by :mod:`streams.cli`, whose ``main`` turns a :class:`RailyardError` into a
one-line message and exit status 2.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.kafka.admin import TopicsReport, config_drift, ensure_topics, list_topics
from connectors.kafka.stack import BrokerStatus, LocalBroker
from connectors.kafka.topics import TopicSpec, topic_specs
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
    report = ensure_topics(settings)
    if report.created:
        err_console.print(f"[dim]created topics: {', '.join(report.created)}[/dim]")
    _print_drift(report)
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
    """Create every Railyard topic that is missing; put back drifted retention and policies.

    Exits 1 when a topic has fewer partitions than declared (never added automatically).
    """
    settings = _settings()
    report = ensure_topics(settings)
    existing = len(topic_specs(settings)) - len(report.created)
    console.print(f"created {len(report.created)} topic(s), {existing} already existed")
    for name in report.created:
        console.print(f"  {name}")
    _print_drift(report)
    if report.short:
        raise typer.Exit(1)


def _print_drift(report: TopicsReport) -> None:
    if report.altered:
        console.print(f"[yellow]put back {len(report.altered)} config(s) to their spec:[/yellow]")
        for c in report.altered:
            console.print(f"  {c.topic}: {c.key} {c.was} -> {c.now}")
    for shortfall in report.short:
        err_console.print(f"[red]{shortfall}[/red]")


@topics_app.command("list")
def list_() -> None:
    """Every topic: partitions, cleanup policy, retention and why; drift from the spec marked."""
    settings = _settings()
    declared = {s.name: s for s in topic_specs(settings)}
    on_broker = list_topics(settings.kafka_bootstrap)
    drift: dict[str, dict[str, str | None]] = {}
    for change in config_drift(settings, declared.values()):
        drift.setdefault(change.topic, {})[change.key] = change.was
    table = Table()
    for column in ("topic", "partitions", "policy", "retention"):
        table.add_column(column, no_wrap=True)  # names stay whole, however narrow the terminal
    table.add_column("why")
    for name in sorted(set(on_broker) | set(declared)):
        spec = declared.get(name)
        partitions = str(on_broker[name]) if name in on_broker else "[red]missing[/red]"
        if spec and name in on_broker and on_broker[name] != spec.partitions:
            partitions = f"[yellow]{on_broker[name]} (declared {spec.partitions})[/yellow]"
        if spec is None:
            table.add_row(name, partitions, "", "", "[dim]not declared by Railyard[/dim]")
            continue
        table.add_row(name, partitions, *_policy(spec, drift.get(name, {})), spec.why)
    console.print(table)


def _policy(spec: TopicSpec, drift: dict[str, str | None]) -> tuple[str, str]:
    """The spec's policy and retention, with what the broker has instead where it differs."""
    policy = spec.cleanup_policy
    retention = _retention(spec.config["retention.ms"])  # a compacted topic: "forever"
    if "cleanup.policy" in drift:
        policy = f"[yellow]{drift['cleanup.policy']} (declared {policy})[/yellow]"
    if "retention.ms" in drift:
        retention = f"[yellow]{_retention(drift['retention.ms'])} (declared {retention})[/yellow]"
    return policy, retention


def _retention(ms: str | None) -> str:
    """``retention.ms`` for people: ``forever``, ``7d``, ``41d 1h``."""
    if ms is None or not ms.lstrip("-").isdigit():
        return str(ms)
    if int(ms) < 0:
        return "forever"
    rest, parts = int(ms) // 1000, []
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= seconds:
            parts.append(f"{rest // seconds}{unit}")
            rest %= seconds
    return " ".join(parts) or f"{ms}ms"
