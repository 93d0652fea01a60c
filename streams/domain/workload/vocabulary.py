"""The names and dimension values a synthetic AI/API business emits.

Tuples are paired with relative weights where real traffic is uneven.
"""

from __future__ import annotations

NAME_STEMS = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "vandelay",
    "piedpiper",
    "aperture",
    "massive",
    "oscorp",
    "nakatomi",
    "gringotts",
    "monarch",
    "dunder",
    "bluth",
    "prestige",
    "sirius",
    "weyland",
)
NAME_SUFFIXES = ("corp", "labs", "ai", "systems", "io", "inc", "analytics", "cloud")

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1")
REGION_WEIGHTS = (0.35, 0.2, 0.2, 0.15, 0.1)
REGION_CURRENCY = {"eu-west-1": "EUR", "eu-central-1": "EUR"}
DEFAULT_CURRENCY = "USD"

MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "claude-sonnet",
    "claude-haiku",
    "llama-3-70b",
    "llama-3-8b",
    "mistral-large",
)

ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/images/generations",
    "/v1/audio/transcriptions",
    "/v1/moderations",
    "/v1/files",
)
ENDPOINT_WEIGHTS = (0.55, 0.25, 0.06, 0.05, 0.05, 0.04)

GPU_TYPES = ("H100", "A100", "L4")
GPU_TYPE_WEIGHTS = (0.3, 0.45, 0.25)

WORKSPACE_NAMES = ("default", "research", "production", "staging", "data-science", "support")

SOURCES = {
    "ai.tokens": "llm-gateway",
    "api.calls": "api-gateway",
    "gpu.minutes": "gpu-scheduler",
    "seats.active": "workspace-service",
}

NON_NUMBERS = ("lots", "NaN", "1,200", "", "12 tokens", "Infinity")

# The numeric field each event type is metered on, and a dimension an oversized
# event stuffs; defects corrupt exactly these.
VALUE_FIELDS = {
    "ai.tokens": "tokens",
    "api.calls": "calls",
    "gpu.minutes": "minutes",
    "seats.active": "seats",
}
DIMENSION_FIELDS = {
    "ai.tokens": "model",
    "api.calls": "endpoint",
    "gpu.minutes": "gpu_type",
    "seats.active": "workspace",
}
