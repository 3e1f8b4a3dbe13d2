-- Upload sessions expire ([gc] upload_ttl): found by when they were last written.
CREATE INDEX uploads_by_updated_at ON uploads (updated_at);
