"""YAML to plain values that keep each scalar's source text and each field's line.

PyYAML would turn ``0.000002`` into a float and ``0010`` into octal 8 before we saw
them; composing nodes instead of constructing objects keeps the text exactly as
written, so amounts become exact Decimals and account ids keep their zeros. The
tree holds mappings, lists, strings and ``None`` (for ``null``, ``~`` or nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .problems import Path, Problem, path_text

NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_DEPTH = 64
MAX_NODES = 5_000_000
"""Aliases can expand a small file exponentially ("billion laughs"); stop well before."""


@dataclass(frozen=True)
class Tree:
    """The document as plain values, and the line of every field and list item."""

    root: Any
    lines: dict[Path, int]


class _TooBig(Exception):
    pass


def compose(text: str, source: str) -> tuple[Tree | None, list[Problem]]:
    """The document's tree, or the syntax errors that stop it from being read."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [Problem(source, line, "", f"not valid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(source, 1, "", f"not valid YAML: {exc}")]
    if node is None:
        return Tree({}, {(): 1}), []
    walker = _Walker(source)
    try:
        root = walker.plain(node, ())
    except _TooBig as exc:
        return None, [Problem(source, node.start_mark.line + 1, "", str(exc))]
    return Tree(root, walker.lines), walker.problems


class _Walker:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self.visited = 0

    def plain(self, node: Node, path: Path) -> Any:
        self.visited += 1
        if len(path) > MAX_DEPTH or self.visited > MAX_NODES:
            raise _TooBig("document nests or repeats too deeply (recursive or exploding aliases?)")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, ScalarNode):
            return None if node.tag == NULL_TAG else node.value
        if isinstance(node, SequenceNode):
            return [self.plain(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        return self._mapping(node, path)

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merges.append(value_node)
                continue
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode) or key_node.tag == NULL_TAG:
                self._problem(line, path, "keys must be plain names")
                continue
            key = key_node.value
            if key in out:
                first = self.lines[(*path, key)]
                self._problem(line, path, f"duplicate key {key!r} (first on line {first})")
                continue
            self.lines.setdefault((*path, key), line)
            out[key] = self.plain(value_node, (*path, key))
        # `<<: *defaults` fills in what the mapping does not say itself.
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for src in sources:
                merged = self.plain(src, path) if isinstance(src, MappingNode) else None
                if not isinstance(merged, dict):
                    self._problem(src.start_mark.line + 1, path, "<< must merge a mapping")
                    continue
                for key, value in merged.items():
                    out.setdefault(key, value)
        return out

    def _problem(self, line: int, path: Path, message: str) -> None:
        self.problems.append(Problem(self.source, line, path_text(path), message))
