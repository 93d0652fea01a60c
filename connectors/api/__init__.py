"""``railyard api``: an ingest and usage API compatible with OpenMeter's (``docs/api.md``).

The rules live in small pure modules (``problems``, ``ingest_rules``, ``keys``,
``ratelimit``, ``meter_query``); ``app`` is the thin FastAPI adapter over them,
``publisher`` waits for the broker's acknowledgement, ``service`` runs the process.
"""
