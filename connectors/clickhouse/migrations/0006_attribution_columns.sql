-- Attribution lands slim (issue 3's benchmark): the ingest agent attributes each event in
-- the pass that accepts it and sends only who is billed plus the meter contributions, so
-- the sink no longer decodes every event a second time. The event itself is in
-- usage_events_raw; `usage_attributed` joins the two and keeps its columns and meaning.
CREATE TABLE IF NOT EXISTS usage_attribution_raw
(
    customer        String,
    catalog_version LowCardinality(String),
    id              String,
    source          String,
    type            LowCardinality(String),
    subject         String,
    time            DateTime64(6, 'UTC'),
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (customer, type, time, source, id);

-- Rows attributed before this migration stay readable (usage_attributed_raw).
DROP VIEW IF EXISTS usage_attributed;

CREATE VIEW usage_attributed AS
SELECT a.customer AS customer, a.catalog_version AS catalog_version, a.id AS id,
       a.source AS source, a.type AS type, a.subject AS subject, a.time AS time,
       e.values AS values, e.dimensions AS dimensions
FROM (SELECT customer, catalog_version, id, source, type, subject, time
      FROM usage_attribution_raw FINAL) AS a
INNER JOIN (SELECT id, source, subject, time, values, dimensions FROM usage_events_raw FINAL) AS e
    ON a.source = e.source AND a.id = e.id AND a.subject = e.subject AND a.time = e.time
UNION ALL
SELECT customer, catalog_version, id, source, type, subject, time, values, dimensions
FROM usage_attributed_raw FINAL;

DROP VIEW IF EXISTS pipeline_counts;

CREATE VIEW pipeline_counts AS
SELECT 'accepted' AS what, count() AS records FROM usage_events_raw FINAL
UNION ALL SELECT 'attributed', (SELECT count() FROM usage_attribution_raw FINAL)
                               + (SELECT count() FROM usage_attributed_raw FINAL)
UNION ALL SELECT 'unattributed', count() FROM unattributed_raw FINAL WHERE resolved = 0
UNION ALL SELECT 'late', count() FROM late_usage_raw FINAL
UNION ALL SELECT 'dead_letters', count() FROM dead_letters_raw FINAL;
