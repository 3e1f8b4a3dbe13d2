-- Image streams: namespaces hold streams; a stream is a repository seen as OpenShift's
-- ImageStream, with spec tags, tag history and a resourceVersion taken from the event log.

CREATE TABLE namespaces (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    uid               TEXT NOT NULL,
    resource_version  INTEGER NOT NULL,
    labels            TEXT,
    annotations       TEXT,
    created_at        TEXT NOT NULL
);

CREATE TABLE image_streams (
    repository_id     INTEGER PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
    namespace_id      INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    uid               TEXT NOT NULL,
    -- Incremented on every change of the spec, as OpenShift's metadata.generation.
    generation        INTEGER NOT NULL,
    resource_version  INTEGER NOT NULL,
    labels            TEXT,
    annotations       TEXT,
    lookup_local      INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    UNIQUE (namespace_id, name)
);

-- spec.tags[]: where a tag comes from (TagReference JSON), with its generation.
CREATE TABLE spec_tags (
    repository_id  INTEGER NOT NULL REFERENCES image_streams (repository_id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    reference      TEXT NOT NULL,
    generation     INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name)
) WITHOUT ROWID;

-- status.tags[].items[]: every image a tag has named, the newest last by id. Items go with
-- their tag, and with their image when it is deleted from the repository.
CREATE TABLE tag_history (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id       INTEGER NOT NULL,
    tag                 TEXT NOT NULL,
    digest              TEXT,
    external_reference  TEXT,
    generation          INTEGER NOT NULL,
    created_at          TEXT NOT NULL,
    FOREIGN KEY (repository_id, tag) REFERENCES tags (repository_id, name) ON DELETE CASCADE,
    FOREIGN KEY (repository_id, digest)
        REFERENCES repository_manifests (repository_id, digest) ON DELETE CASCADE
);

CREATE INDEX tag_history_by_tag ON tag_history (repository_id, tag, id);
CREATE INDEX tag_history_by_digest ON tag_history (repository_id, digest);

-- The durable, ordered log of every change. Its id is the resourceVersion that watchers resume
-- from. DELETED events keep the object's last state; others are rendered when read.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('Namespace', 'ImageStream')),
    type        TEXT NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    tag         TEXT,
    old_image   TEXT,
    new_image   TEXT,
    object      TEXT,
    created_at  TEXT NOT NULL
);

CREATE INDEX events_by_namespace ON events (namespace, id);
