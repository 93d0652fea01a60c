-- Payment status (issue 16, item 1): the rails' notifications land on invoices.status as
-- steps whose status is a payment status (paid, payment_failed, refunded, disputed,
-- voided; attempt 0, the rail's event type in rail_status, its event id in
-- rail_refs['event_id']). `status` stays the delivery status; `payment_status` is the
-- latest payment step, NULL while the rail has said nothing since delivery. Delivery
-- errors come from retrying and failed steps only, so a later payment step cannot hide
-- them.

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
              ('paid', 'payment_failed', 'refunded', 'disputed', 'voided'))), '')
           AS payment_status,
       argMaxIf(invoice_status_raw.rail_status, at, invoice_status_raw.status IN
              ('paid', 'payment_failed', 'refunded', 'disputed', 'voided')) AS payment_event,
       maxIf(at, invoice_status_raw.status IN
              ('paid', 'payment_failed', 'refunded', 'disputed', 'voided')) AS payment_at,
       min(at) AS first_at,
       max(at) AS updated_at
FROM invoice_status_raw FINAL
GROUP BY invoice_id;
