"""The web console (issue 18): operator pages, the what-if page and the customer portal,
rendered on the server from the ClickHouse views; one FastAPI router
(:func:`connectors.console.router.console_router`), mounted by the API.

Nothing is imported here: ``railyard console link`` needs only the link signing, and every
``railyard`` process would otherwise load FastAPI and the pages.
"""
