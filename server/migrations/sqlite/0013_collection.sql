-- What garbage collection (server/src/gc/) looks for by time: upload sessions last written
-- before their TTL, and log rows past their retention.
CREATE INDEX uploads_by_updated_at ON uploads (updated_at);
CREATE INDEX events_by_created_at ON events (created_at);
CREATE INDEX webhook_deliveries_by_created_at ON webhook_deliveries (created_at);
