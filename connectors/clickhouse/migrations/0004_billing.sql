-- Billing: issued invoices and their lines, each customer's running spend in the open
-- period, prepaid credit balances and alerts. Raw tables are ReplacingMergeTree on each
-- row's natural key (re-delivered invoices are stored once); analysts query the views.

CREATE TABLE IF NOT EXISTS invoices_raw
(
    id                 String,
    number             String,
    kind               LowCardinality(String),
    customer           String,
    customer_name      String,
    rail               LowCardinality(String),
    account            Nullable(String),
    currency           LowCardinality(String),
    period_start       DateTime64(6, 'UTC'),
    period_end         DateTime64(6, 'UTC'),
    usage_amount       Decimal(38, 9),
    subtotal           Decimal(38, 9),
    discount_total     Decimal(38, 9),
    commitment_true_up Decimal(38, 9),
    credits_total      Decimal(38, 9),
    total              Decimal(38, 9),
    idempotency_key    String,
    catalog_version    LowCardinality(String),
    issued_at          DateTime64(6, 'UTC'),
    landed_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY id;

CREATE VIEW IF NOT EXISTS invoices AS
SELECT id, number, kind, customer, customer_name, rail, account, currency, period_start,
       period_end, usage_amount, subtotal, discount_total, commitment_true_up, credits_total,
       total, idempotency_key, catalog_version, issued_at
FROM invoices_raw FINAL;

CREATE TABLE IF NOT EXISTS invoice_lines_raw
(
    invoice_id   String,
    line_no      UInt16,
    customer     String,
    rail         LowCardinality(String),
    currency     LowCardinality(String),
    period_start DateTime64(6, 'UTC'),
    kind         LowCardinality(String),
    description  String,
    price_key    Nullable(String),
    meter        Nullable(String),
    dimensions   Map(String, String),
    quantity     Nullable(Decimal(38, 9)),
    unit_amount  Nullable(Decimal(38, 18)),
    amount       Decimal(38, 9),
    tiers        String
)
ENGINE = ReplacingMergeTree
ORDER BY (invoice_id, line_no);

CREATE VIEW IF NOT EXISTS invoice_lines AS
SELECT invoice_id, line_no, customer, rail, currency, period_start, kind, description,
       price_key, meter, dimensions, quantity, unit_amount, amount, tiers
FROM invoice_lines_raw FINAL;

-- Revenue by rail and month (by billing period start), per currency: never summed across.
CREATE VIEW IF NOT EXISTS revenue_by_rail AS
SELECT rail, currency, toStartOfMonth(period_start) AS month, count() AS invoices,
       sum(usage_amount) AS usage_amount, sum(credits_total) AS credits, sum(total) AS total
FROM invoices_raw FINAL
GROUP BY rail, currency, month;

-- The open period's running spend: the newest revision per customer and period wins.
CREATE TABLE IF NOT EXISTS billing_spend_raw
(
    customer      String,
    currency      LowCardinality(String),
    period_start  DateTime64(6, 'UTC'),
    period_end    DateTime64(6, 'UTC'),
    usage_amount  Decimal(38, 9),
    subtotal      Decimal(38, 9),
    credits_total Decimal(38, 9),
    total         Decimal(38, 9),
    as_of         DateTime64(6, 'UTC'),
    revision      UInt64,
    updated_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (customer, period_start, currency);

CREATE VIEW IF NOT EXISTS billing_spend AS
SELECT customer, currency, period_start, period_end, usage_amount, subtotal, credits_total,
       total, as_of, updated_at
FROM billing_spend_raw FINAL;

-- Prepaid credit: each grant's balance as of the newest rating of its customer.
CREATE TABLE IF NOT EXISTS credit_balances_raw
(
    customer   String,
    grant      String,
    currency   LowCardinality(String),
    granted    Decimal(38, 9),
    consumed   Decimal(38, 9),
    remaining  Decimal(38, 9),
    expires_at Nullable(DateTime64(6, 'UTC')),
    as_of      DateTime64(6, 'UTC'),
    revision   UInt64,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (customer, grant);

CREATE VIEW IF NOT EXISTS credit_balances AS
SELECT customer, grant, currency, granted, consumed, remaining, expires_at, as_of, updated_at
FROM credit_balances_raw FINAL;

-- Threshold and exhaustion alerts: one per grant and threshold, however often re-sent.
CREATE TABLE IF NOT EXISTS credit_events_raw
(
    customer  String,
    grant     String,
    kind      LowCardinality(String),
    percent   UInt8,
    remaining Decimal(38, 9),
    currency  LowCardinality(String),
    at        DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (customer, grant, kind, percent);

CREATE VIEW IF NOT EXISTS credit_events AS
SELECT customer, grant, kind, percent, remaining, currency, at FROM credit_events_raw FINAL;
