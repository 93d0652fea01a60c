"""The web console (issue 18): operator pages, the what-if page and the customer portal,
rendered on the server from the ClickHouse views; one FastAPI router, mounted by the API.
"""

from connectors.console.router import console_router

__all__ = ["console_router"]
