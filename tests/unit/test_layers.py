"""The layers import one way; the domain does no I/O and reads no clock; rails stay apart.

Every ``.py`` under ``streams/`` and ``connectors/`` is parsed, never imported, and every
import it makes is checked: at module level, inside functions, under ``TYPE_CHECKING``,
and ``importlib.import_module("...")`` with a literal name. A failure names the module,
the line, the import and the rule it breaks. The rules are the data below; the layer
table is the one ``docs/architecture.md`` describes.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SOURCES = ("streams", "connectors")

# --- the rules -------------------------------------------------------------------------------

LAYERS: dict[str, str] = {
    # The package root is loaded by every module under streams/, the domain's included,
    # so it is held to the domain's rules.
    "streams": "domain",
    "streams.domain": "domain",
    "streams.wire": "wire",
    "streams.settings": "settings",
    "streams.compiled": "boot",
    "connectors": "connectors",
    "streams.agents": "agents",
    "streams.cli": "cli",
}
"""Module prefix -> layer; the longest prefix that matches wins."""

MAY_IMPORT: dict[str, frozenset[str]] = {
    "boot": frozenset(),
    "domain": frozenset({"domain", "boot"}),
    "wire": frozenset({"wire", "domain", "boot"}),
    "settings": frozenset({"settings", "domain", "boot"}),
    "connectors": frozenset({"connectors", "settings", "wire", "domain", "boot"}),
    "agents": frozenset({"agents", "connectors", "settings", "wire", "domain", "boot"}),
    "cli": frozenset({"cli", "agents", "connectors", "settings", "wire", "domain", "boot"}),
}
"""Which layers each layer may import: cli -> agents -> connectors -> settings/wire -> domain.
``boot`` (streams/compiled.py, which loads the compiled hot path) runs before everything
and imports nothing of Railyard; the package root calls it, anyone may ask what it found."""

IMPURE: dict[str, str] = {
    **dict.fromkeys(("faust", "mode", "venusian"), "Faust"),
    **dict.fromkeys(("confluent_kafka", "aiokafka", "kafka"), "Kafka"),
    **dict.fromkeys(("clickhouse_connect", "chdb"), "ClickHouse"),
    **dict.fromkeys(("http", "urllib", "urllib3", "requests", "httpx", "aiohttp"), "HTTP"),
    **dict.fromkeys(("oauthlib", "requests_oauthlib"), "HTTP"),
    **dict.fromkeys(
        ("stripe", "Adyen", "paypalserversdk", "pyodata", "simple_salesforce"), "a rail's SDK"
    ),
    **dict.fromkeys(("socket", "socketserver", "ssl", "select", "selectors"), "the network"),
    **dict.fromkeys(("subprocess", "multiprocessing", "signal", "psutil"), "processes"),
    **dict.fromkeys(
        ("os", "io", "pathlib", "shutil", "tempfile", "glob", "fcntl", "mmap", "sqlite3"),
        "os-level and file I/O",
    ),
    **dict.fromkeys(("threading", "_thread", "concurrent", "queue"), "threads"),
    **dict.fromkeys(("asyncio", "uvloop", "anyio"), "asyncio"),
    **dict.fromkeys(("time", "sched"), "the clock"),
}
"""Top-level modules the domain may not import, and what importing them would bring in."""

CLOCK_TYPES = frozenset({"datetime.datetime", "datetime.date"})
CLOCK_READS = frozenset({"now", "utcnow", "today"})
"""``datetime.now()`` and its kin read the wall clock; ``datetime`` the type is fine.
The domain takes the instant it needs as an argument; the agents own the clock."""

IO_BUILTINS = frozenset({"open", "print", "input"})
"""Builtins that read or write a file or a terminal: I/O without an import."""

RAILS = "connectors.rails.providers"
"""Each module of this package is one rail, found by the registry."""

SANDBOX = "connectors.rails.sandbox"
SANDBOX_USERS = (SANDBOX, "streams.cli")
"""The only modules (with tests/, which this check does not parse) that may import the
sandbox: the demo's stand-ins of each rail must never reach a rail or the pipeline."""


# --- the checker -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    module: str
    line: int
    statement: str
    rule: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: `{self.statement}` breaks: {self.rule}"


@dataclass(frozen=True)
class Import:
    target: str
    """The imported module, or ``module.name`` for ``from module import name``."""
    node: ast.AST


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(name: str) -> str | None:
    """The layer of a Railyard module; None for the standard library and third parties."""
    matches = [prefix for prefix in LAYERS if _within(name, prefix)]
    return LAYERS[max(matches, key=len)] if matches else None


def rail_of(name: str) -> str | None:
    """The rail a module belongs to (``stripe`` for ``connectors.rails.providers.stripe.x``)."""
    if not _within(name, RAILS) or name == RAILS:
        return None
    return name[len(RAILS) + 1 :].split(".")[0]


def imports(module: str, tree: ast.Module, is_package: bool) -> Iterator[Import]:
    """Every import in ``tree``, wherever it sits, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                yield Import(base if alias.name == "*" else f"{base}.{alias.name}", node)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(node.args[0].value, node)


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it was imported as (``dt`` -> ``datetime.datetime``)."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                found[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return found


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return None if base is None else f"{base}.{node.attr}"
    return None


def check(module: str, source: str, is_package: bool = False) -> list[Problem]:
    """Every rule ``module`` (whose code is ``source``) breaks."""
    tree = ast.parse(source)
    layer = layer_of(module)
    problems: list[Problem] = []

    def report(node: ast.AST, rule: str) -> None:
        statement = ast.unparse(node).splitlines()[0]
        problems.append(Problem(module, getattr(node, "lineno", 0), statement, rule))

    for imp in imports(module, tree, is_package):
        target_layer = layer_of(imp.target)
        if layer and target_layer and target_layer not in MAY_IMPORT[layer]:
            report(
                imp.node,
                f"layer direction: {layer} may import only "
                f"{', '.join(sorted(MAY_IMPORT[layer]))}; {imp.target} is {target_layer}",
            )
        top = imp.target.split(".")[0]
        if layer == "domain" and top in IMPURE:
            report(imp.node, f"pure domain: streams/domain must not reach {IMPURE[top]} ({top})")
        own, other = rail_of(module), rail_of(imp.target)
        if own and other and own != other:
            report(imp.node, f"rails stay apart: rail {own} imports rail {other}")
        if _within(imp.target, SANDBOX) and not any(_within(module, u) for u in SANDBOX_USERS):
            report(
                imp.node,
                f"sandbox apart: only {', '.join(SANDBOX_USERS)} and tests/ import {SANDBOX}",
            )

    if layer == "domain":
        aliases = _aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in CLOCK_READS:
                receiver = _dotted(node.value, aliases)
                if receiver in CLOCK_TYPES:
                    report(
                        node,
                        f"pure domain: streams/domain must not read the clock ({receiver}.{node.attr})",
                    )
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in IO_BUILTINS
                and node.func.id not in aliases
            ):
                report(node, f"pure domain: streams/domain must not do I/O ({node.func.id}())")
    return problems


def tree_modules() -> Iterator[tuple[str, Path, bool]]:
    """(dotted name, path, is a package) of every module under :data:`SOURCES`."""
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            yield ".".join(parts[:-1] if is_package else parts), path, is_package


# --- the tree keeps the rules ----------------------------------------------------------------


def test_every_module_has_a_layer() -> None:
    assert [name for name, _, _ in tree_modules() if layer_of(name) is None] == []


def test_the_tree_keeps_every_rule() -> None:
    problems = [
        problem
        for name, path, is_package in tree_modules()
        for problem in check(name, path.read_text(encoding="utf-8"), is_package)
    ]
    assert not problems, "\n".join(map(str, problems))


def test_the_rails_package_holds_the_rails() -> None:
    """The rail rules look at :data:`RAILS`: it must exist and hold more than one rail."""
    rails = {rail_of(name) for name, _, _ in tree_modules()} - {None}
    assert {"stripe", "outbox"} <= rails


def test_importing_the_domain_loads_no_infrastructure() -> None:
    """At run time too, through third-party modules the AST does not follow."""
    domain = sorted(name for name, _, _ in tree_modules() if _within(name, "streams.domain"))
    probe = (
        "import importlib, sys\n"
        "before = set(sys.modules)\n"
        f"for name in {domain!r}: importlib.import_module(name)\n"
        f"impure = {sorted(IMPURE)!r}\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in impure))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the checker catches what it should ------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "source", "statement", "rule"),
    [
        (
            "connectors.kafka.x",
            "def f():\n    from streams.agents.app import app\n",
            "from streams.agents.app import app",
            "layer direction: connectors may import only",
        ),
        (
            "streams.wire.x",
            "from streams import settings\n",
            "from streams import settings",
            "streams.settings is settings",
        ),
        (
            "streams.domain.x",
            "from ..cli import main\n",
            "from ..cli import main",
            "streams.cli.main is cli",
        ),
        (
            "streams.domain.rating.x",
            "import importlib\nimportlib.import_module('connectors.kafka.topics')\n",
            "importlib.import_module('connectors.kafka.topics')",
            "connectors.kafka.topics is connectors",
        ),
        ("streams.domain.x", "import faust\n", "import faust", "must not reach Faust"),
        (
            "streams.domain.x",
            "from confluent_kafka import Producer\n",
            "from confluent_kafka import Producer",
            "must not reach Kafka",
        ),
        (
            "streams.domain.x",
            "import os.path\n",
            "import os.path",
            "must not reach os-level and file I/O",
        ),
        (
            "streams.domain.x",
            "def f():\n    import asyncio\n",
            "import asyncio",
            "must not reach asyncio",
        ),
        (
            "streams.domain.x",
            "from time import monotonic\n",
            "from time",
            "must not reach the clock (time)",
        ),
        (
            "streams.domain.x",
            "from datetime import datetime as dt\ndef f():\n    return dt.now()\n",
            "dt.now",
            "must not read the clock (datetime.datetime.now)",
        ),
        (
            "streams.domain.x",
            "import datetime\nTODAY = datetime.date.today\n",
            "datetime.date.today",
            "must not read the clock (datetime.date.today)",
        ),
        (
            "streams.domain.x",
            "def f(p):\n    return open(p).read()\n",
            "open(p)",
            "must not do I/O (open())",
        ),
        (
            "connectors.rails.providers.adyen",
            "from connectors.rails.providers.stripe import to_minor\n",
            "from connectors.rails.providers.stripe import to_minor",
            "rail adyen imports rail stripe",
        ),
        (
            "connectors.rails.providers.sap",
            "from connectors.rails.sandbox.servers.sap import EDMX\n",
            "from connectors.rails.sandbox.servers.sap",
            "sandbox apart",
        ),
        (
            "streams.agents.route",
            "from connectors.rails import sandbox\n",
            "from connectors.rails import sandbox",
            "sandbox apart",
        ),
    ],
)
def test_the_checker_catches_a_violation(
    module: str, source: str, statement: str, rule: str
) -> None:
    problems = check(module, source)
    assert [p for p in problems if statement in p.statement and rule in p.rule], problems
    assert all(module in str(p) for p in problems)


def test_the_checker_lets_the_allowed_through() -> None:
    assert (
        check(
            "streams.domain.windows",
            "from datetime import UTC, datetime, timedelta\n"
            "from decimal import Decimal\n"
            "from .watermarks import Watermark\n"
            "from streams.domain.errors import RailyardError\n"
            "def f(t: datetime) -> datetime:\n"
            "    return t.replace(tzinfo=UTC) + timedelta(hours=1)\n",
        )
        == []
    )
    assert (
        check(
            "streams.cli.demo",
            "from connectors.rails.sandbox import peer_names\n"
            "from streams.agents.app import app\n"
            "from connectors.rails.providers.stripe import StripeRail\n",
        )
        == []
    )
    assert (
        check(
            "connectors.rails.sandbox.peer_stripe",
            "from connectors.rails.providers.stripe import step_key\n",
        )
        == []
    )
    assert (
        check(
            "connectors.rails.providers.stripe",
            "from connectors.rails.providers.stripe.x import y\n",
        )
        == []
    )
