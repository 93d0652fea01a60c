-- Rail delivery: every status step the rail connectors published, the invoices they
-- gave up on, and where each invoice stands. A step re-sent after a connector restart
-- is a new step (it has its own `at`); the same record landed twice is stored once.

CREATE TABLE IF NOT EXISTS invoice_status_raw
(
    invoice_id    String,
    number        String,
    customer      String,
    rail          LowCardinality(String),
    status        LowCardinality(String),
    attempt       UInt32,
    rail_refs     Map(String, String),
    rail_status   Nullable(String),
    error_code    Nullable(String),
    error_message Nullable(String),
    retry_at      Nullable(DateTime64(6, 'UTC')),
    at            DateTime64(6, 'UTC'),
    landed_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (invoice_id, at, status, attempt);

-- Where each invoice stands: delivered as soon as any step says so (a redelivery after
-- a restart may log a retry after that, yet the rail already holds the invoice);
-- otherwise the latest step. The error is the latest one seen.
CREATE VIEW IF NOT EXISTS invoice_delivery AS
SELECT invoice_id,
       argMax(number, at) AS number,
       argMax(customer, at) AS customer,
       argMax(rail, at) AS rail,
       if(countIf(invoice_status_raw.status = 'delivered') > 0, 'delivered',
          argMax(invoice_status_raw.status, at)) AS status,
       max(attempt) AS attempts,
       countIf(invoice_status_raw.status = 'retrying') AS retries,
       argMaxIf(rail_refs, at, invoice_status_raw.status = 'delivered') AS rail_refs,
       argMaxIf(rail_status, at, invoice_status_raw.status = 'delivered') AS rail_status,
       argMaxIf(error_code, at, invoice_status_raw.status != 'delivered') AS error_code,
       argMaxIf(error_message, at, invoice_status_raw.status != 'delivered') AS error_message,
       argMax(retry_at, at) AS retry_at,
       min(at) AS first_at,
       max(at) AS updated_at
FROM invoice_status_raw FINAL
GROUP BY invoice_id;

-- Invoices a rail refused for good (or that could not be read), with the original bytes.
CREATE TABLE IF NOT EXISTS invoice_dead_letters_raw
(
    rail            LowCardinality(String),
    invoice_id      Nullable(String),
    number          Nullable(String),
    customer        Nullable(String),
    reason          LowCardinality(String),
    error_code      Nullable(String),
    error_message   String,
    attempts        UInt32,
    topic           LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    original        String,
    failed_at       DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, kafka_partition, kafka_offset, failed_at);

CREATE VIEW IF NOT EXISTS invoice_dead_letters AS
SELECT rail, invoice_id, number, customer, reason, error_code, error_message, attempts, topic,
       kafka_partition, kafka_offset, original, failed_at
FROM invoice_dead_letters_raw FINAL;
