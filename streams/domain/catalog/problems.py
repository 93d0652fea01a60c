"""Where a catalog is wrong: every problem names its file, line and field.

A user fixing a catalog wants the whole list at once, each entry pointing at the
line to edit, as ``catalog.yaml:42: plans[1].rate_card[0].meter: unknown meter``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

Path = tuple[str | int, ...]
"""A field's place in the document: ``("plans", 1, "currency")``."""

_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True, order=True)
class Problem:
    """One reason the catalog cannot be used, and where it is."""

    source: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def path_text(path: Path) -> str:
    """``("plans", 1, "currency")`` as ``plans[1].currency``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def parse_path(text: str) -> Path:
    """The inverse of :func:`path_text`, for locations other modules write as text."""
    return tuple(
        int(index) if index else name for name, index in _STEP.findall(text) if name or index
    )


@dataclass
class Report:
    """Collects problems, finding each one's line from the nearest located field.

    A missing field has no line of its own, so it is reported on its parent's.
    """

    source: str
    lines: Mapping[Path, int]
    problems: list[Problem] = field(default_factory=list)

    def line(self, path: Path) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def add(self, path: Path, message: str) -> None:
        self.problems.append(Problem(self.source, self.line(path), path_text(path), message))

    def where(self, path: Path) -> str:
        """A short back-reference for messages that involve two places."""
        return f"{path_text(path)} (line {self.line(path)})"
