-- Exact usage for analysts: the same quantities the invoices bill (issue 14).
--
-- A period's quantity is the aggregation over all of its events, per meter group, so a
-- window's final value alone cannot give it for AVG, UNIQUE_COUNT or LATEST. Windows
-- now land with their mergeable partial state (window_update.v2, streams/domain/
-- partials.py), and the views merge the newest revision of each window with late usage
-- (one event each) by ClickHouse's exact functions. Version-1 windows have no partial
-- state: the columns keep their defaults and the views fall back (below).

ALTER TABLE usage_windows_raw
    ADD COLUMN IF NOT EXISTS sum Nullable(Decimal(38, 9)) AFTER is_correction,
    ADD COLUMN IF NOT EXISTS distinct_values Array(String) AFTER sum,
    ADD COLUMN IF NOT EXISTS latest_time Nullable(DateTime64(6, 'UTC')) AFTER distinct_values,
    ADD COLUMN IF NOT EXISTS latest_digest Nullable(String) AFTER latest_time;

DROP VIEW IF EXISTS usage_windows;

CREATE VIEW usage_windows AS
SELECT customer, meter, aggregation, group_by, group_values,
       CAST(mapFromArrays(group_by, group_values), 'Map(String, String)') AS dimensions,
       window_start, window_end, value, revision AS events, is_correction, updated_at,
       sum, distinct_values, latest_time, latest_digest
FROM usage_windows_raw FINAL;

-- One row per window (its newest revision) and per late event, in one shape:
--   at           where it counts: the window's start, or the late event's time
--   event_count  distinct events (a window's revision; 1 for a late event)
--   value        the window's value, or the late event's quantity (NULL for UNIQUE_COUNT)
--   total        the exact sum of the values (SUM, AVG)
--   distinct_values, latest_time, latest_digest: UNIQUE_COUNT's values, LATEST's order
-- A version-1 AVG window stands in value x events for its sum and a version-1
-- UNIQUE_COUNT window one placeholder per counted value, as the rate stage does
-- (streams/book_records.py); a version-1 LATEST window is its value at its start with an
-- empty digest (Partial.of_value), where the rate stage has no time to order it by.
CREATE VIEW IF NOT EXISTS usage_partials AS
SELECT customer, meter, aggregation, group_by, group_values, window_start AS at,
       revision AS event_count, CAST(w_value, 'Nullable(Decimal(38, 9))') AS value,
       coalesce(w_sum, if(aggregation = 'AVG', w_value * revision, w_value)) AS total,
       if(aggregation = 'UNIQUE_COUNT' AND length(w_distinct) != toUInt64(w_value),
          arrayMap(i -> concat(char(0), toString(window_start), '#', toString(i)),
                   range(toUInt64(w_value))),
          w_distinct) AS distinct_values,
       coalesce(w_latest_time, window_start) AS latest_time,
       coalesce(w_latest_digest, '') AS latest_digest,
       toUInt8(0) AS late
FROM (SELECT customer, meter, aggregation, group_by, group_values, window_start, revision,
             value AS w_value, sum AS w_sum, distinct_values AS w_distinct,
             latest_time AS w_latest_time, latest_digest AS w_latest_digest
      FROM usage_windows_raw FINAL)
UNION ALL
SELECT customer, meter, aggregation, group_by, group_values, event_time AS at,
       toUInt64(1) AS event_count, quantity AS value,
       coalesce(quantity, toDecimal128(0, 9)) AS total,
       if(aggregation = 'UNIQUE_COUNT', [text], []) AS distinct_values,
       event_time AS latest_time, event_key AS latest_digest, toUInt8(1) AS late
FROM (SELECT customer, meter, aggregation, group_by, group_values, event_time, event_key,
             value AS text,
             if(aggregation = 'UNIQUE_COUNT', NULL, toDecimal128OrNull(value, 9)) AS quantity
      FROM late_usage_raw FINAL);

-- Daily usage per customer, meter and group: the exact aggregation over the day's events
-- (windows by their start, late usage by its event time). The quantity rules are the
-- same as usage_quantity's, below; docs/analytics.md explains each.
DROP VIEW IF EXISTS usage_daily;

CREATE VIEW usage_daily AS
SELECT customer, meter, aggregation, group_by, group_values,
       CAST(mapFromArrays(group_by, group_values), 'Map(String, String)') AS dimensions,
       toDate(at) AS day,
       multiIf(aggregation = 'SUM', sum(total),
               aggregation = 'COUNT', toDecimal128(sum(event_count), 9),
               aggregation = 'MIN', min(value),
               aggregation = 'MAX', max(value),
               aggregation = 'AVG',
               CAST(roundBankers(toDecimal256(sum(total), 38) / nullIf(sum(event_count), 0), 9),
                    'Nullable(Decimal(38, 9))'),
               aggregation = 'UNIQUE_COUNT', toDecimal128(uniqExactArray(distinct_values), 9),
               aggregation = 'LATEST', argMax(value, (latest_time, latest_digest)),
               NULL) AS quantity,
       sumIf(event_count, late = 0) AS events, countIf(late = 1) AS late_events
FROM usage_partials
GROUP BY customer, meter, aggregation, group_by, group_values, day;

-- The exact quantity per customer, meter and group over [from, to), as an invoice bills
-- it for a billing period: SELECT * FROM usage_quantity(from = '2026-11-01', to = '2026-12-01').
-- AVG divides the exact sum by the event count carried to 38 places, then rounds half to
-- even at 9 (roundBankers): the same as partials.py, for any count below 5 x 10^28.
CREATE VIEW IF NOT EXISTS usage_quantity AS
SELECT customer, meter, aggregation, group_by, group_values,
       CAST(mapFromArrays(group_by, group_values), 'Map(String, String)') AS dimensions,
       multiIf(aggregation = 'SUM', sum(total),
               aggregation = 'COUNT', toDecimal128(sum(event_count), 9),
               aggregation = 'MIN', min(value),
               aggregation = 'MAX', max(value),
               aggregation = 'AVG',
               CAST(roundBankers(toDecimal256(sum(total), 38) / nullIf(sum(event_count), 0), 9),
                    'Nullable(Decimal(38, 9))'),
               aggregation = 'UNIQUE_COUNT', toDecimal128(uniqExactArray(distinct_values), 9),
               aggregation = 'LATEST', argMax(value, (latest_time, latest_digest)),
               NULL) AS quantity,
       sumIf(event_count, late = 0) AS events, countIf(late = 1) AS late_events
FROM usage_partials
WHERE at >= {from:DateTime64(6, 'UTC')} AND at < {to:DateTime64(6, 'UTC')}
GROUP BY customer, meter, aggregation, group_by, group_values;
