"""The sandbox's local rail servers: one per rail with an HTTP API and no mock of its own."""
