-- Everything a stage refused, with the reason and the original bytes.
-- Keyed by where the record came from, so a replayed rejection is stored once.
CREATE TABLE IF NOT EXISTS dead_letters_raw
(
    reason      LowCardinality(String),
    detail      String,
    stage       LowCardinality(String),
    topic       LowCardinality(String),
    partition   UInt16,
    offset      UInt64,
    index       UInt32,
    event_id    Nullable(String),
    subject     Nullable(String),
    original    String,
    rejected_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (stage, topic, partition, offset, index);

CREATE VIEW IF NOT EXISTS dead_letters AS
SELECT reason, detail, stage, topic, partition, offset, index, event_id, subject, original, rejected_at
FROM dead_letters_raw FINAL;

CREATE VIEW IF NOT EXISTS dead_letters_by_reason AS
SELECT stage, reason, count() AS records, min(rejected_at) AS first_at, max(rejected_at) AS last_at
FROM dead_letters_raw FINAL
GROUP BY stage, reason;
