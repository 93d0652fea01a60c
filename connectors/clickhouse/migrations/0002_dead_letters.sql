-- Everything a stage refused, with the reason and the original bytes.
-- Keyed by where the record came from, so a replayed rejection is stored once.
CREATE TABLE IF NOT EXISTS dead_letters_raw
(
    reason      LowCardinality(String),
    detail      String,
    stage       LowCardinality(String),
    topic       LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    batch_index     UInt32,
    event_id    Nullable(String),
    subject     Nullable(String),
    original    String,
    rejected_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (stage, topic, kafka_partition, kafka_offset, batch_index);

CREATE VIEW IF NOT EXISTS dead_letters AS
SELECT reason, detail, stage, topic, kafka_partition, kafka_offset, batch_index, event_id, subject, original, rejected_at
FROM dead_letters_raw FINAL;

CREATE VIEW IF NOT EXISTS dead_letters_by_reason AS
SELECT stage, reason, count() AS records, min(rejected_at) AS first_at, max(rejected_at) AS last_at
FROM dead_letters_raw FINAL
GROUP BY stage, reason;
