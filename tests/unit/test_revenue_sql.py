"""The query behind the revenue table of ``railyard invoices --status`` (pure SQL)."""

from __future__ import annotations

from connectors.clickhouse.delivery import revenue_sql


def test_every_rail_or_one_rail_quoted_as_a_literal() -> None:
    columns = "SELECT rail, currency, invoices, issued, collected, outstanding, failed, refunded"
    assert revenue_sql() == f"{columns}\nFROM revenue_status\n\nORDER BY rail, currency"
    assert revenue_sql("sap") == (
        f"{columns}\nFROM revenue_status\nWHERE rail = 'sap'\nORDER BY rail, currency"
    )
    assert "WHERE rail = 'o\\'brien'" in revenue_sql("o'brien")
