-- Quotas (issue 15): Kubernetes' ResourceQuota and LimitRange objects per namespace, and what
-- each namespace's images reference, every digest counted once per namespace (as Harbor counts
-- shared layers), so that a push's quota check reads one row.

-- ResourceQuotas and LimitRanges. `spec` is the object's spec as the API shows it (JSON);
-- `limits` what is enforced, read inside every push's transaction (a JSON array of
-- {"limited": ..., "max": N}). They go with their namespace.
CREATE TABLE quota_objects (
    namespace         TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    kind              TEXT NOT NULL CHECK (kind IN ('ResourceQuota', 'LimitRange')),
    name              TEXT NOT NULL,
    uid               TEXT NOT NULL,
    resource_version  INTEGER NOT NULL,
    labels            TEXT,
    annotations       TEXT,
    spec              TEXT NOT NULL,
    limits            TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    PRIMARY KEY (namespace, kind, name)
) WITHOUT ROWID;

-- The last resourceVersion given to a quota object: every write takes the next, so a version
-- is never given twice (not even to an object made again under a deleted one's name).
CREATE TABLE quota_versions (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    last  INTEGER NOT NULL
);
INSERT INTO quota_versions (id, last) VALUES (1, 0);

-- What the images of a namespace reference: each manifest linked in one of its repositories,
-- and the config and layers of each, once per namespace with the number of linked images
-- (repository_manifests rows) that reference it. `size` is the size counted when the digest
-- came in (a manifest's length, a blob's stored size, else a remote link's declared size), so
-- that it goes out with the same.
CREATE TABLE namespace_content (
    namespace  TEXT NOT NULL,
    digest     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    refs       INTEGER NOT NULL,
    PRIMARY KEY (namespace, digest)
) WITHOUT ROWID;

-- The sum of `namespace_content.size` per namespace: the storage a quota limits.
CREATE TABLE namespace_usage (
    namespace  TEXT PRIMARY KEY,
    bytes      INTEGER NOT NULL
) WITHOUT ROWID;

-- What earlier versions stored, counted once.
INSERT INTO namespace_content (namespace, digest, size, refs)
SELECT namespace, digest, max(size), count(*) FROM (
    SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1)
                ELSE r.name END AS namespace,
           rm.digest AS digest, m.size AS size
    FROM repository_manifests rm
    JOIN repositories r ON r.id = rm.repository_id
    JOIN manifests m ON m.digest = rm.digest
    UNION ALL
    SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1)
                ELSE r.name END,
           mr.child,
           coalesce(b.size, (SELECT rb.size FROM remote_blobs rb
                             WHERE rb.repository_id = rm.repository_id AND rb.digest = mr.child), 0)
    FROM repository_manifests rm
    JOIN repositories r ON r.id = rm.repository_id
    JOIN manifest_references mr ON mr.digest = rm.digest AND mr.kind = 'blob'
    LEFT JOIN blobs b ON b.digest = mr.child
)
GROUP BY namespace, digest;

INSERT INTO namespace_usage (namespace, bytes)
SELECT namespace, sum(size) FROM namespace_content GROUP BY namespace;

-- The total follows the rows: a digest new to the namespace adds its size, one no image of the
-- namespace references any more takes it away.
CREATE TRIGGER quota_content_added AFTER INSERT ON namespace_content BEGIN
    INSERT INTO namespace_usage (namespace, bytes) VALUES (NEW.namespace, NEW.size)
    ON CONFLICT (namespace) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER quota_content_dropped AFTER DELETE ON namespace_content BEGIN
    UPDATE namespace_usage SET bytes = bytes - OLD.size WHERE namespace = OLD.namespace;
END;

-- An image linked into a repository (a push, a tag across streams, an import): the image and
-- its config and layers count for the repository's namespace.
CREATE TRIGGER quota_image_linked AFTER INSERT ON repository_manifests BEGIN
    INSERT INTO namespace_content (namespace, digest, size, refs)
    SELECT (SELECT CASE WHEN instr(name, '/') > 0 THEN substr(name, 1, instr(name, '/') - 1)
                        ELSE name END
            FROM repositories WHERE id = NEW.repository_id),
           c.digest, c.size, 1
    FROM (
        SELECT NEW.digest AS digest, m.size AS size FROM manifests m WHERE m.digest = NEW.digest
        UNION ALL
        SELECT mr.child,
               coalesce(b.size, (SELECT rb.size FROM remote_blobs rb
                                 WHERE rb.repository_id = NEW.repository_id
                                   AND rb.digest = mr.child), 0)
        FROM manifest_references mr
        LEFT JOIN blobs b ON b.digest = mr.child
        WHERE mr.digest = NEW.digest AND mr.kind = 'blob'
    ) c
    WHERE true
    ON CONFLICT (namespace, digest) DO UPDATE SET refs = refs + 1;
END;

-- An image unlinked: what it referenced counts once less, and goes when nothing references it.
CREATE TRIGGER quota_image_unlinked AFTER DELETE ON repository_manifests BEGIN
    UPDATE namespace_content SET refs = refs - 1
    WHERE namespace = (SELECT CASE WHEN instr(name, '/') > 0
                                   THEN substr(name, 1, instr(name, '/') - 1) ELSE name END
                       FROM repositories WHERE id = OLD.repository_id)
      AND digest IN (SELECT OLD.digest
                     UNION ALL
                     SELECT child FROM manifest_references
                     WHERE digest = OLD.digest AND kind = 'blob');
    DELETE FROM namespace_content
    WHERE namespace = (SELECT CASE WHEN instr(name, '/') > 0
                                   THEN substr(name, 1, instr(name, '/') - 1) ELSE name END
                       FROM repositories WHERE id = OLD.repository_id)
      AND refs <= 0
      AND digest IN (SELECT OLD.digest
                     UNION ALL
                     SELECT child FROM manifest_references
                     WHERE digest = OLD.digest AND kind = 'blob');
END;

-- A repository deleted (a stream, a namespace): its images are unlinked first, while the
-- repository's name still says whose namespace they counted for (a cascade runs after the
-- row is gone).
CREATE TRIGGER quota_repository_deleted BEFORE DELETE ON repositories BEGIN
    DELETE FROM repository_manifests WHERE repository_id = OLD.id;
END;
