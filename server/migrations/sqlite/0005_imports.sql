-- Imports from other registries: where a blob linked into a repository can be fetched from
-- while its content is not here yet (pull-through), and with what the import said about it.

CREATE TABLE remote_blobs (
    repository_id  INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    -- The remote repository's pull spec (`registry/path`), and whether it is plain HTTP.
    source         TEXT NOT NULL,
    insecure       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;
