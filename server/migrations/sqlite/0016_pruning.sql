-- Pruning (server/src/prune/): when each image was last pushed and pulled in each repository,
-- what an image's content is shared with, and the scheduled pruner's settings.

-- The last push of an image to a repository (a push of the same digest again moves it; NULL on
-- rows older than this migration: `created_at` stands for it) and its last pull, recorded in
-- batches (storage/pulls.rs), never once per pull.
ALTER TABLE repository_manifests ADD COLUMN pushed_at TEXT;
ALTER TABLE repository_manifests ADD COLUMN pulled_at TEXT;

-- Which manifests refer to a blob or child: what a prune's bytes freed are counted against.
CREATE INDEX IF NOT EXISTS manifest_references_by_child ON manifest_references (child, kind);

-- The scheduled pruner, as OpenShift's ImagePruner: one object (`cluster`), its spec and the
-- status of its last run as JSON.
CREATE TABLE image_pruners (
    name        TEXT PRIMARY KEY,
    uid         TEXT NOT NULL,
    spec        TEXT NOT NULL,
    status      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) WITHOUT ROWID;
