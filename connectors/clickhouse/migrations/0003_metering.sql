-- Metering (attribution and event-time windows). Raw tables are ReplacingMergeTree on
-- each row's natural key, so a batch replayed after a crash is stored once; analysts
-- query the views, which are always exact.

-- Every catalog ever applied, and when each became the one in force.
CREATE TABLE IF NOT EXISTS catalog_versions
(
    version    String,
    document   String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY version;

CREATE TABLE IF NOT EXISTS catalog_applications
(
    version      String,
    applied_at   DateTime64(3, 'UTC'),
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY kafka_offset;

-- Usage with the customer it is billed to.
CREATE TABLE IF NOT EXISTS usage_attributed_raw
(
    customer        String,
    catalog_version LowCardinality(String),
    id              String,
    source          String,
    type            LowCardinality(String),
    subject         String,
    time            DateTime64(6, 'UTC'),
    values          Map(LowCardinality(String), Decimal(38, 9)),
    dimensions      Map(LowCardinality(String), String),
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (customer, type, time, source, id);

CREATE VIEW IF NOT EXISTS usage_attributed AS
SELECT customer, catalog_version, id, source, type, subject, time, values, dimensions
FROM usage_attributed_raw FINAL;

-- Usage no customer claimed (yet). `resolved` = 1 once a later catalog attributed it.
CREATE TABLE IF NOT EXISTS unattributed_raw
(
    event_key  String,
    id         String,
    source     String,
    type       LowCardinality(String),
    subject    String,
    time       DateTime64(6, 'UTC'),
    values     Map(LowCardinality(String), Decimal(38, 9)),
    dimensions Map(LowCardinality(String), String),
    resolved   UInt8,
    changed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(resolved)
ORDER BY event_key;

CREATE VIEW IF NOT EXISTS unattributed_usage AS
SELECT subject, type, count() AS events, min(time) AS first_event_at, max(time) AS last_event_at,
       min(changed_at) AS parked_since
FROM unattributed_raw FINAL
WHERE resolved = 0
GROUP BY subject, type;

-- Window totals: the newest revision of each window wins.
CREATE TABLE IF NOT EXISTS usage_windows_raw
(
    customer      String,
    meter         LowCardinality(String),
    aggregation   LowCardinality(String),
    group_by      Array(String),
    group_values  Array(String),
    window_start  DateTime64(6, 'UTC'),
    window_end    DateTime64(6, 'UTC'),
    value         Decimal(38, 9),
    revision      UInt64,
    is_correction UInt8,
    updated_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(window_start)
ORDER BY (customer, meter, group_values, window_start);

CREATE VIEW IF NOT EXISTS usage_windows AS
SELECT customer, meter, aggregation, group_by, group_values,
       CAST(mapFromArrays(group_by, group_values), 'Map(String, String)') AS dimensions,
       window_start, window_end, value, revision AS events, is_correction, updated_at
FROM usage_windows_raw FINAL;

-- Usage later than the allowed lateness: billed as an adjustment in the next open period.
CREATE TABLE IF NOT EXISTS late_usage_raw
(
    customer     String,
    meter        LowCardinality(String),
    aggregation  LowCardinality(String),
    group_by     Array(String),
    group_values Array(String),
    window_start DateTime64(6, 'UTC'),
    event_time   DateTime64(6, 'UTC'),
    value        String,
    event_key    String,
    watermark    DateTime64(6, 'UTC'),
    reason       LowCardinality(String),
    recorded_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (event_key, meter);

CREATE VIEW IF NOT EXISTS late_usage AS
SELECT customer, meter, aggregation, group_by, group_values,
       CAST(mapFromArrays(group_by, group_values), 'Map(String, String)') AS dimensions,
       window_start, event_time, value, event_key, watermark, reason, recorded_at
FROM late_usage_raw FINAL;

-- Daily usage per customer, meter and dimensions, with late adjustments folded in
-- where the aggregation allows it (SUM, COUNT add; MAX, MIN compare). AVG, UNIQUE_COUNT
-- and LATEST do not combine across windows: read usage_windows for those.
CREATE VIEW IF NOT EXISTS usage_daily AS
SELECT customer, meter, aggregation, group_by, group_values, day,
       multiIf(aggregation IN ('SUM', 'COUNT'), sum(value),
               aggregation = 'MAX', max(value),
               aggregation = 'MIN', min(value),
               NULL) AS quantity,
       sum(events) AS events, sum(late_events) AS late_events
FROM
(
    SELECT customer, meter, aggregation, group_by, group_values, toDate(window_start) AS day,
           value, revision AS events, 0 AS late_events
    FROM usage_windows_raw FINAL
    UNION ALL
    SELECT customer, meter, aggregation, group_by, group_values,
           toDate(window_start) AS day, toDecimal128(value, 9) AS value, 0 AS events,
           1 AS late_events
    FROM late_usage_raw FINAL
    WHERE aggregation IN ('SUM', 'COUNT', 'MAX', 'MIN')
)
GROUP BY customer, meter, aggregation, group_by, group_values, day;

-- Health of the pipeline at a glance.
CREATE VIEW IF NOT EXISTS pipeline_counts AS
SELECT 'accepted' AS what, count() AS records FROM usage_events_raw FINAL
UNION ALL SELECT 'attributed', count() FROM usage_attributed_raw FINAL
UNION ALL SELECT 'unattributed', count() FROM unattributed_raw FINAL WHERE resolved = 0
UNION ALL SELECT 'late', count() FROM late_usage_raw FINAL
UNION ALL SELECT 'dead_letters', count() FROM dead_letters_raw FINAL;
