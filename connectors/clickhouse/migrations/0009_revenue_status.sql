-- Payment status, continued (issue 16, item 1): the polled rails (NetSuite, SAP,
-- Salesforce) add partially_paid and overdue, with what the rail says is paid so far in
-- rail_refs['amount_paid']. invoice_delivery is 0008's with those two among the payment
-- statuses; revenue_status says, per rail and currency, what was issued, collected,
-- is outstanding, failed and was refunded (docs/rails.md, "Collected and outstanding").

DROP VIEW IF EXISTS invoice_delivery;

CREATE VIEW invoice_delivery AS
SELECT invoice_id,
       argMax(number, at) AS number,
       argMax(customer, at) AS customer,
       argMax(rail, at) AS rail,
       if(countIf(invoice_status_raw.status = 'delivered') > 0, 'delivered',
          argMaxIf(invoice_status_raw.status, at,
                   invoice_status_raw.status IN ('retrying', 'failed'))) AS status,
       max(attempt) AS attempts,
       countIf(invoice_status_raw.status = 'retrying') AS retries,
       argMaxIf(rail_refs, at, invoice_status_raw.status = 'delivered') AS rail_refs,
       argMaxIf(rail_status, at, invoice_status_raw.status = 'delivered') AS rail_status,
       argMaxIf(error_code, at, invoice_status_raw.status IN ('retrying', 'failed')) AS error_code,
       argMaxIf(error_message, at, invoice_status_raw.status IN ('retrying', 'failed'))
           AS error_message,
       argMaxIf(retry_at, at, invoice_status_raw.status IN ('delivered', 'retrying', 'failed'))
           AS retry_at,
       nullIf(toString(argMaxIf(invoice_status_raw.status, at, invoice_status_raw.status IN
              ('paid', 'partially_paid', 'overdue', 'payment_failed', 'refunded', 'disputed',
               'voided'))), '') AS payment_status,
       argMaxIf(invoice_status_raw.rail_status, at, invoice_status_raw.status IN
              ('paid', 'partially_paid', 'overdue', 'payment_failed', 'refunded', 'disputed',
               'voided')) AS payment_event,
       maxIf(at, invoice_status_raw.status IN
              ('paid', 'partially_paid', 'overdue', 'payment_failed', 'refunded', 'disputed',
               'voided')) AS payment_at,
       min(at) AS first_at,
       max(at) AS updated_at
FROM invoice_status_raw FINAL
GROUP BY invoice_id;

-- Each invoice's latest payment step, and what was paid on it: the whole total once paid
-- (refunded and disputed invoices were paid first), the rail's amount_paid while partly
-- paid or overdue (0 when the rail reports no amount), nothing otherwise.
CREATE VIEW IF NOT EXISTS invoice_payments AS
SELECT i.id AS invoice_id,
       i.rail AS rail,
       i.currency AS currency,
       i.total AS total,
       p.payment_status AS payment_status,
       multiIf(p.payment_status IN ('paid', 'refunded', 'disputed'), i.total,
               p.payment_status IN ('partially_paid', 'overdue'),
               least(i.total, toDecimal128OrZero(p.amount_paid, 9)),
               toDecimal128(0, 9)) AS paid_amount,
       if(p.payment_status = 'refunded', i.total, toDecimal128(0, 9)) AS refunded_amount
FROM invoices AS i
LEFT JOIN
(
    SELECT invoice_id,
           toString(argMax(status, at)) AS payment_status,
           argMax(rail_refs['amount_paid'], at) AS amount_paid
    FROM invoice_status_raw FINAL
    WHERE status IN ('paid', 'partially_paid', 'overdue', 'payment_failed', 'refunded',
                     'disputed', 'voided')
    GROUP BY invoice_id
) AS p ON p.invoice_id = i.id
WHERE i.kind = 'invoice';

-- Per rail and currency (never summed across currencies): issued is every invoice's total;
-- collected what was paid less what was refunded; outstanding what is neither paid nor
-- voided (failed payments included: the customer still owes them); failed the unpaid part
-- of invoices whose payment failed; refunded what was paid and given back.
CREATE VIEW IF NOT EXISTS revenue_status AS
SELECT rail,
       currency,
       count() AS invoices,
       sum(total) AS issued,
       sum(paid_amount) - sum(refunded_amount) AS collected,
       sumIf(total - paid_amount, payment_status != 'voided') AS outstanding,
       sumIf(total - paid_amount, payment_status = 'payment_failed') AS failed,
       sum(refunded_amount) AS refunded
FROM invoice_payments
GROUP BY rail, currency;
