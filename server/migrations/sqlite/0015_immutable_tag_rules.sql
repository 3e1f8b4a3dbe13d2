-- Tag immutability rules (server/src/storage/immutability.rs): per namespace, stream and tag
-- patterns that make the tags they match immutable. They go with their namespace; the
-- (namespace, name) key is also how a push finds its namespace's rules.
CREATE TABLE immutable_tag_rules (
    id                INTEGER PRIMARY KEY,
    namespace         TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    uid               TEXT NOT NULL,
    -- JSON objects {"include": [globs], "exclude": [globs]}.
    repositories      TEXT NOT NULL,
    tags              TEXT NOT NULL,
    disabled          INTEGER NOT NULL DEFAULT 0,
    -- From 1, up by one at each update.
    resource_version  INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    UNIQUE (namespace, name)
);
