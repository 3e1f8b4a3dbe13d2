-- Per-namespace retention policies (server/src/prune/retention.rs): spec and the status of the
-- last run as JSON; they go with their namespace.
CREATE TABLE retention_policies (
    namespace   TEXT COLLATE "C" NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name        TEXT COLLATE "C" NOT NULL,
    uid         TEXT NOT NULL,
    spec        TEXT NOT NULL,
    status      TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (namespace, name)
);
