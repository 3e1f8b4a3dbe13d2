-- Per-namespace retention policies (server/src/prune/retention.rs): spec and the status of the
-- last run as JSON; they go with their namespace.
CREATE TABLE retention_policies (
    namespace   TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    uid         TEXT NOT NULL,
    spec        TEXT NOT NULL,
    status      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;
