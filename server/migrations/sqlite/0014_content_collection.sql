-- Garbage collection of content (server/src/gc/content.rs): a review queue of blobs and
-- manifests that may have lost their last reference. Triggers queue a digest whenever a
-- reference to it goes (a repository's link, an image's reference) or a link is made (an
-- upload nobody references is garbage too); writers of a blob's bytes claim it first. The
-- collector reviews a digest once the grace period has passed since it was last queued or
-- claimed, and deletes it only if nothing references it then.
CREATE TABLE gc_queue (
    kind            TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    digest          TEXT NOT NULL,
    -- When the digest was last queued or claimed, in milliseconds since the epoch; 0 for a
    -- digest due at once (the children of a collected manifest: their links keep their own
    -- times).
    queued_at       INTEGER NOT NULL,
    -- While a collector deletes a blob's bytes: until when (milliseconds since the epoch).
    -- Writers of the same digest wait until the row is gone or this has passed.
    deleting_until  INTEGER,
    PRIMARY KEY (kind, digest)
) WITHOUT ROWID;

-- Due first; of those queued at once, images before their blobs (a collected image makes its
-- blobs collectable in the same sweep).
CREATE INDEX gc_queue_by_time ON gc_queue (queued_at, kind DESC);

-- What a review looks up by the child's side.
CREATE INDEX manifest_references_by_child ON manifest_references (child, kind);
CREATE INDEX repository_manifests_by_digest ON repository_manifests (digest);

CREATE TRIGGER gc_queue_linked_blob AFTER INSERT ON repository_blobs BEGIN
    INSERT INTO gc_queue (kind, digest, queued_at)
    VALUES ('blob', NEW.digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT DO UPDATE SET queued_at = max(queued_at, excluded.queued_at);
END;

CREATE TRIGGER gc_queue_unlinked_blob AFTER DELETE ON repository_blobs BEGIN
    INSERT INTO gc_queue (kind, digest, queued_at)
    VALUES ('blob', OLD.digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT DO UPDATE SET queued_at = max(queued_at, excluded.queued_at);
END;

-- An image leaving a repository: the image, and its blobs (whose links in that repository may
-- now be referenced by nothing there).
CREATE TRIGGER gc_queue_unlinked_manifest AFTER DELETE ON repository_manifests BEGIN
    INSERT INTO gc_queue (kind, digest, queued_at)
    VALUES ('manifest', OLD.digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT DO UPDATE SET queued_at = max(queued_at, excluded.queued_at);
    INSERT INTO gc_queue (kind, digest, queued_at)
    SELECT 'blob', child, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM manifest_references WHERE digest = OLD.digest AND kind = 'blob'
    ON CONFLICT DO UPDATE SET queued_at = max(queued_at, excluded.queued_at);
END;

-- A collected manifest's references: its children are due at once.
CREATE TRIGGER gc_queue_dropped_reference AFTER DELETE ON manifest_references BEGIN
    INSERT INTO gc_queue (kind, digest, queued_at) VALUES (OLD.kind, OLD.child, 0)
    ON CONFLICT DO NOTHING;
END;

-- What earlier versions left: every blob, and every image no repository holds, is reviewed
-- once (the live ones leave the queue at their review).
INSERT INTO gc_queue (kind, digest, queued_at)
SELECT 'blob', digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM blobs;
INSERT INTO gc_queue (kind, digest, queued_at)
SELECT 'manifest', digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
FROM manifests m WHERE NOT EXISTS (SELECT 1 FROM repository_manifests r WHERE r.digest = m.digest);
