"""An independent reference rater, and random catalogs to hold production to it.

Nothing here imports the code under test (rating, windows, accumulators, metering,
validation, de-duplication, the billing book): it reads the parsed catalog as data
and recomputes every invoice by its own, deliberately plain, route.
"""
