"""The hot path, compiled by mypyc, when a build for exactly these sources exists.

Every event goes through a few modules: decoding ``usage``, validation, de-duplication,
attribution, the attributed columns, windows and their partials (:data:`HOT_PATH`).
``deploy/compile.py`` (run by ``deploy/setup.sh``) compiles them with mypyc, the
compiler mypy ships, into C extensions under ``.compiled/`` at the repository root:
the same source, typed as mypy strict already checks it, 2-3 times faster per event
(bench/RESULTS.md). The source stays the truth; nothing else changes.

The package root calls :func:`install` first thing. It puts :class:`CompiledFinder`
in front of Python's own finders only when the build's stamp matches every module of
``streams`` as it is now (a compiled module is built against the types of what it
imports, so any edit counts): an edited tree runs as Python until it is compiled again,
never as stale machine code. ``RAILYARD_PURE_PYTHON=1`` runs it interpreted anyway.

Standard library only, and nothing of Railyard: this runs before any other module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec
from types import ModuleType

HOT_PATH: tuple[str, ...] = (
    "streams.wire.varint",
    "streams.wire.usage_reader",
    "streams.wire.contributions",
    "streams.domain.watermarks",
    "streams.domain.validation",
    "streams.domain.dedup",
    "streams.domain.metering",
    "streams.domain.attribution",
    "streams.domain.accumulators",
    "streams.domain.partials",
    "streams.domain.windows",
    "streams.domain.window_replay",
    "streams.domain.billing_book",
    "streams.wire.book",
    "streams.agents.ingest_rules",
)
"""The modules compiled, each a pure function of its input (profiled: py-spy on the
workers under ``python -m bench.ingest``)."""

GROUP = "streams._hot"
"""mypyc's group: the code of every module above lives in one shared library,
``streams._hot__mypyc``, so calls between them stay native."""

BUILD_DIR = ".compiled"
STAMP = "stamp.json"
PURE_PYTHON = "RAILYARD_PURE_PYTHON"


@dataclass(frozen=True)
class HotPath:
    """What this process runs: the compiled build, or the source and why."""

    compiled: bool
    reason: str
    modules: dict[str, str] = field(default_factory=dict)
    """Module name -> its extension's path (the group's library included)."""

    def describe(self) -> str:
        if self.compiled:
            return f"hot path compiled by mypyc ({len(HOT_PATH)} modules, {self.reason})"
        return f"hot path runs as Python: {self.reason}"


def sources_digest(package_dir: str) -> str:
    """sha256 over every module under ``package_dir``: relative path and bytes, in order."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                digest.update(os.path.relpath(path, package_dir).encode() + b"\0")
                with open(path, "rb") as source:
                    digest.update(source.read() + b"\0")
    return digest.hexdigest()


def stamp_for(package_dir: str, modules: dict[str, str], compiler: str) -> dict[str, object]:
    """What a build records, to be found valid by :func:`find_build` for these sources only."""
    return {
        "sources": sources_digest(package_dir),
        "python": sys.implementation.cache_tag,
        "compiler": compiler,
        "modules": modules,
    }


def find_build(root: str, environ: dict[str, str] | None = None) -> HotPath:
    """The build under ``root``/.compiled, if it was made for the sources under ``root``/streams."""
    env = os.environ if environ is None else environ
    if env.get(PURE_PYTHON) == "1":
        return HotPath(False, f"{PURE_PYTHON}=1")
    build = os.path.join(root, BUILD_DIR)
    try:
        with open(os.path.join(build, STAMP), encoding="utf-8") as f:
            stamp = json.load(f)
    except FileNotFoundError:
        return HotPath(False, "not compiled (python deploy/compile.py compiles it)")
    except ValueError as exc:
        return HotPath(False, f"unreadable {BUILD_DIR}/{STAMP} ({exc}): compile it again")
    if stamp.get("python") != sys.implementation.cache_tag:
        return HotPath(False, f"compiled for {stamp.get('python')}, this is a different Python")
    if stamp.get("sources") != sources_digest(os.path.join(root, "streams")):
        return HotPath(
            False, "the sources changed since it was compiled (python deploy/compile.py)"
        )
    modules = {name: os.path.join(build, path) for name, path in stamp["modules"].items()}
    missing = [name for name in HOT_PATH if name not in modules]
    if missing or not all(os.path.exists(p) for p in modules.values()):
        return HotPath(False, f"{BUILD_DIR} is incomplete: compile it again")
    return HotPath(True, str(stamp.get("compiler", "mypyc")), modules)


class CompiledFinder:
    """Finds the compiled extension of each module of the build, and nothing else."""

    def __init__(self, modules: dict[str, str]) -> None:
        self.modules = modules

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        location = self.modules.get(fullname)
        if location is None:
            return None
        return importlib.util.spec_from_file_location(fullname, location)


STATUS = HotPath(False, "not looked for yet")
"""What :func:`install` found: workers log it at start, the benchmark reports it."""
_installed = False


def install() -> HotPath:
    """Load the compiled hot path from now on, when a valid build exists (once)."""
    global STATUS, _installed
    if not _installed:
        _installed = True
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        STATUS = find_build(root)
        if STATUS.compiled:
            sys.meta_path.insert(0, CompiledFinder(STATUS.modules))
    return STATUS
