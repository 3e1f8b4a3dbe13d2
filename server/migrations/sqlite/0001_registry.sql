-- Registry metadata. Blob and manifest content is global (content-addressed); repositories link
-- to it, so the same layer pushed to many repositories is stored once.

-- AUTOINCREMENT: a deleted repository's id is never reused, so nothing of it can reappear.
CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    created_at  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE repository_blobs (
    repository_id  INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT NOT NULL REFERENCES blobs (digest),
    created_at     TEXT NOT NULL,
    PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;

CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    digest         TEXT PRIMARY KEY,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    subject        TEXT,
    annotations    TEXT,
    size           INTEGER NOT NULL,
    content        BLOB NOT NULL,
    -- What the image stream API shows of the image: read from the manifest and its config at
    -- push time (JSON).
    image          TEXT,
    created_at     TEXT NOT NULL
) WITHOUT ROWID;

-- What each manifest refers to: its config and layers ('blob') or, for an index, its children
-- ('manifest'). Kept for validation and garbage collection.
CREATE TABLE manifest_references (
    digest  TEXT NOT NULL REFERENCES manifests (digest) ON DELETE CASCADE,
    child   TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (digest, kind, child)
) WITHOUT ROWID;

CREATE TABLE repository_manifests (
    repository_id  INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT NOT NULL REFERENCES manifests (digest),
    -- Copied from the manifest so that referrers are one index lookup.
    subject        TEXT,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;

CREATE INDEX repository_manifests_by_subject
    ON repository_manifests (repository_id, subject) WHERE subject IS NOT NULL;

-- A tag's current image: the registry's tag, and the image stream's status tag. `digest` is NULL
-- when the tag names an image kept elsewhere (`external_reference`), or none yet.
CREATE TABLE tags (
    repository_id       INTEGER NOT NULL,
    name                TEXT NOT NULL,
    digest              TEXT,
    external_reference  TEXT,
    generation          INTEGER NOT NULL DEFAULT 0,
    -- TagEventConditions (JSON), such as a failed import.
    conditions          TEXT,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (repository_id, name),
    -- The first key also covers tags that name no local image (digest NULL).
    FOREIGN KEY (repository_id) REFERENCES repositories (id) ON DELETE CASCADE,
    FOREIGN KEY (repository_id, digest)
        REFERENCES repository_manifests (repository_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE INDEX tags_by_digest ON tags (repository_id, digest);

-- Upload sessions, with the running hash, so that any replica (or this one after a restart)
-- can continue them.
CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    repository      TEXT NOT NULL,
    size            INTEGER NOT NULL,
    hash_algorithm  TEXT NOT NULL,
    hash_state      BLOB NOT NULL,
    started_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) WITHOUT ROWID;
