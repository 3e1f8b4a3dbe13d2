-- Where a repository's blobs come from. A repository serves a blob only through a link in
-- `repository_blobs`, and such a link is made only for bytes verified here: an upload whose
-- digest matched, a mount from a repository that links it so, or a pull-through fetch whose
-- size and digest matched. `blobs.size` is the size of those bytes.
--
-- An import used to write its remote links into `blobs` and `repository_blobs` too, with the
-- size its manifest declared: a manifest that merely named a digest made any stored copy of it
-- readable in the importing repository, and a forged size could stand in `blobs` for everyone.
-- Remote links now live only here, with the declared size; a pull of one fetches the bytes
-- from the remote, verifies them, and only then links them.

CREATE TABLE remote_blobs_sized (
    repository_id  INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    -- The remote repository's pull spec (`registry/path`), and whether it is plain HTTP.
    source         TEXT NOT NULL,
    insecure       INTEGER NOT NULL DEFAULT 0,
    -- The size the imported manifest declares; the fetched bytes must have it.
    size           INTEGER NOT NULL CHECK (size >= 0),
    PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;

INSERT INTO remote_blobs_sized (repository_id, digest, source, insecure, size)
SELECT r.repository_id, r.digest, r.source, r.insecure, coalesce(b.size, 0)
FROM remote_blobs r LEFT JOIN blobs b ON b.digest = r.digest;

-- The links imports made were never verified for their repository: they become remote links
-- only (the next pull fetches and verifies the bytes again).
DELETE FROM repository_blobs
WHERE EXISTS (SELECT 1 FROM remote_blobs r
              WHERE r.repository_id = repository_blobs.repository_id
                AND r.digest = repository_blobs.digest);

DROP TABLE remote_blobs;
ALTER TABLE remote_blobs_sized RENAME TO remote_blobs;

-- Blob rows that no repository links carry no verified size (imports made most of them); a
-- verified link writes the row again.
DELETE FROM blobs
WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest);
