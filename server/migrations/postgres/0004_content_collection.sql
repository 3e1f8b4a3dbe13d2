-- Garbage collection of content (server/src/gc/content.rs): a review queue of blobs and
-- manifests that may have lost their last reference. Triggers queue a digest whenever a
-- reference to it goes (a repository's link, an image's reference) or a link is made (an
-- upload nobody references is garbage too); writers of a blob's bytes claim it first. The
-- collector reviews a digest once the grace period has passed since it was last queued or
-- claimed, and deletes it only if nothing references it then. (As SQLite's 0014.)
CREATE TABLE gc_queue (
    kind            TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    digest          TEXT COLLATE "C" NOT NULL,
    -- When the digest was last queued or claimed, in milliseconds since the epoch; 0 for a
    -- digest due at once (the children of a collected manifest: their links keep their own
    -- times).
    queued_at       BIGINT NOT NULL,
    -- While a collector deletes a blob's bytes: until when (milliseconds since the epoch).
    -- Writers of the same digest wait until the row is gone or this has passed.
    deleting_until  BIGINT,
    PRIMARY KEY (kind, digest)
);

-- Due first; of those queued at once, images before their blobs (a collected image makes its
-- blobs collectable in the same sweep).
CREATE INDEX gc_queue_by_time ON gc_queue (queued_at, kind DESC);

-- What a review looks up by the child's side.
CREATE INDEX manifest_references_by_child ON manifest_references (child, kind);
CREATE INDEX repository_manifests_by_digest ON repository_manifests (digest);

-- Milliseconds since the epoch, by the database's clock (every replica's queue times agree).
CREATE FUNCTION gc_now() RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT (extract(epoch FROM now()) * 1000)::bigint
$$;

CREATE FUNCTION gc_queue_blob() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    blob TEXT := CASE WHEN TG_OP = 'DELETE' THEN OLD.digest ELSE NEW.digest END;
BEGIN
    INSERT INTO gc_queue AS q (kind, digest, queued_at) VALUES ('blob', blob, gc_now())
    ON CONFLICT (kind, digest) DO UPDATE SET queued_at = greatest(q.queued_at, excluded.queued_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER gc_queue_linked_blob AFTER INSERT ON repository_blobs
    FOR EACH ROW EXECUTE FUNCTION gc_queue_blob();
CREATE TRIGGER gc_queue_unlinked_blob AFTER DELETE ON repository_blobs
    FOR EACH ROW EXECUTE FUNCTION gc_queue_blob();

-- An image leaving a repository: the image, and its blobs (whose links in that repository may
-- now be referenced by nothing there).
CREATE FUNCTION gc_queue_unlinked_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gc_queue AS q (kind, digest, queued_at)
    VALUES ('manifest', OLD.digest, gc_now())
    ON CONFLICT (kind, digest) DO UPDATE SET queued_at = greatest(q.queued_at, excluded.queued_at);
    INSERT INTO gc_queue AS q (kind, digest, queued_at)
    SELECT 'blob', r.child, gc_now() FROM manifest_references r
    WHERE r.digest = OLD.digest AND r.kind = 'blob'
    ON CONFLICT (kind, digest) DO UPDATE SET queued_at = greatest(q.queued_at, excluded.queued_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER gc_queue_unlinked_manifest AFTER DELETE ON repository_manifests
    FOR EACH ROW EXECUTE FUNCTION gc_queue_unlinked_manifest();

-- A collected manifest's references: its children are due at once.
CREATE FUNCTION gc_queue_dropped_reference() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gc_queue (kind, digest, queued_at) VALUES (OLD.kind, OLD.child, 0)
    ON CONFLICT (kind, digest) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER gc_queue_dropped_reference AFTER DELETE ON manifest_references
    FOR EACH ROW EXECUTE FUNCTION gc_queue_dropped_reference();

-- What earlier versions left: every blob, and every image no repository holds, is reviewed
-- once (the live ones leave the queue at their review).
INSERT INTO gc_queue (kind, digest, queued_at) SELECT 'blob', digest, gc_now() FROM blobs;
INSERT INTO gc_queue (kind, digest, queued_at)
SELECT 'manifest', digest, gc_now() FROM manifests m
WHERE NOT EXISTS (SELECT 1 FROM repository_manifests r WHERE r.digest = m.digest);
