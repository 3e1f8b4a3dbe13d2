-- Tag immutability rules (server/src/storage/immutability.rs): per namespace, stream and tag
-- patterns that make the tags they match immutable. They go with their namespace; the
-- (namespace, name) key is also how a push finds its namespace's rules.
CREATE TABLE immutable_tag_rules (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace         TEXT COLLATE "C" NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name              TEXT COLLATE "C" NOT NULL,
    uid               TEXT NOT NULL,
    -- JSON objects {"include": [globs], "exclude": [globs]}.
    repositories      TEXT NOT NULL,
    tags              TEXT NOT NULL,
    disabled          BOOLEAN NOT NULL DEFAULT FALSE,
    -- From 1, up by one at each update.
    resource_version  BIGINT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (namespace, name)
);
