"""Catalog versions, for whoever changes prices: every version published, and a readable
diff between any two (per section, which keys were added, removed or changed, then the
changed lines themselves)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.clickhouse.sql import literal
from connectors.console.html import e, table, when
from connectors.console.timefmt import instant

VERSIONS_SQL = (
    "SELECT a.version, toString(min(a.applied_at)), toString(max(a.kafka_offset))"
    " FROM catalog_applications AS a FINAL GROUP BY a.version ORDER BY max(a.kafka_offset)"
)


def document_sql(version: str) -> str:
    return f"SELECT document FROM catalog_versions FINAL WHERE version = {literal(version)}"


@dataclass(frozen=True)
class SectionChange:
    section: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]


def _key(item: Any) -> str:
    if isinstance(item, dict):
        for name in ("key", "subject"):
            if name in item:
                extra = item.get("effective_from") if name != "key" else None
                return f"{item[name]} from {extra}" if extra else str(item[name])
        if "customer" in item:
            return f"{item['customer']} from {item.get('effective_from')}"
    return json.dumps(item, sort_keys=True)


def diff(
    old: dict[str, Any], new: dict[str, Any], names: tuple[str, str] = ("older", "newer")
) -> tuple[tuple[SectionChange, ...], str]:
    """Per section, the keys added, removed and changed; and a unified diff of the two
    documents, pretty-printed with sorted keys so only real changes show."""
    changes = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if a == b:
            continue
        if isinstance(a, list) and isinstance(b, list):
            ka = {_key(i): i for i in a}
            kb = {_key(i): i for i in b}
            changes.append(
                SectionChange(
                    section,
                    tuple(sorted(set(kb) - set(ka))),
                    tuple(sorted(set(ka) - set(kb))),
                    tuple(sorted(k for k in set(ka) & set(kb) if ka[k] != kb[k])),
                )
            )
        else:
            changes.append(SectionChange(section, (), (), (section,)))
    lines = difflib.unified_diff(
        json.dumps(old, indent=2, sort_keys=True).splitlines(),
        json.dumps(new, indent=2, sort_keys=True).splitlines(),
        *names,
        lineterm="",
        n=2,
    )
    return tuple(changes), "\n".join(lines)


def render_versions(rows: Sequence[Sequence[Any]], a: str, b: str) -> str:
    def pick(name: str, chosen: str) -> str:
        opts = "".join(
            f'<option value="{e(v)}"{" selected" if v == chosen else ""}>{e(v)}</option>'
            for v, _, _ in rows
        )
        return f'<select name="{name}" aria-label="{name}">{opts}</select>'

    listing = table(
        ["version", "first in force", "catalog offset"],
        [[f"<code>{e(v)}</code>", when(instant(str(at))), e(off)] for v, at, off in rows],
        (2,),
        id_="versions",
    )
    form = (
        f'<form class="filters" method="get">compare {pick("a", a)} with {pick("b", b)}'
        "<button>Diff</button></form>"
    )
    return listing + "<h2>Compare two versions</h2>" + form


def render_diff(changes: Sequence[SectionChange], text: str) -> str:
    if not changes:
        return "<p>The two versions are the same.</p>"
    summary = table(
        ["section", "added", "removed", "changed"],
        [
            [e(c.section), e(", ".join(c.added)), e(", ".join(c.removed)), e(", ".join(c.changed))]
            for c in changes
        ],
        id_="diff-summary",
    )
    body = "".join(
        f'<span class="{"add" if ln.startswith("+") else "del" if ln.startswith("-") else ""}">'
        f"{e(ln)}</span>"
        for ln in text.splitlines()
    )
    return summary + f'<pre class="diff">{body}</pre>'
