"""Building SQL text safely: literals are quoted here and nowhere else."""

from __future__ import annotations


def literal(value: str) -> str:
    """A ClickHouse string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
