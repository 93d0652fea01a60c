-- Accepted usage, one row per event. ReplacingMergeTree on the full event key:
-- a batch re-inserted after a crash collapses onto the rows already there.
-- Analysts read the `usage_events` view, which is always exact (FINAL).
CREATE TABLE IF NOT EXISTS usage_events_raw
(
    id          String,
    source      String,
    type        LowCardinality(String),
    subject     String,
    time        DateTime64(6, 'UTC'),
    values      Map(LowCardinality(String), Decimal(38, 9)),
    dimensions  Map(LowCardinality(String), String),
    dataschema  Nullable(String),
    specversion LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (subject, type, time, source, id);

CREATE VIEW IF NOT EXISTS usage_events AS
SELECT id, source, type, subject, time, values, dimensions, dataschema, specversion, ingested_at
FROM usage_events_raw FINAL;
