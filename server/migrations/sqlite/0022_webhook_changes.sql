-- Webhooks changed after creation: a subscription may be disabled (no deliveries are made for
-- events while it is, and its pending ones wait), each attempt keeps the first 4 KiB of the
-- receiver's answer (removed with its delivery, after `[gc] webhook_delivery_retention_seconds`),
-- and a test event (`ping`) is a delivery made by hand from no log entry (event_id 0), of which
-- a subscription may hold any number.

ALTER TABLE webhooks ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

-- The start of the response body (at most 4 KiB, as text), and whether it was cut there.
ALTER TABLE webhook_attempts ADD COLUMN response_body TEXT;
ALTER TABLE webhook_attempts ADD COLUMN response_truncated INTEGER NOT NULL DEFAULT 0;

-- One delivery from the log per subscription, event and name; test events are from no entry.
DROP INDEX webhook_deliveries_event;
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (webhook_id, event_id, event)
    WHERE redelivery_of IS NULL AND event_id > 0;
