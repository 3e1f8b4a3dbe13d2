-- What replicas coordinate through besides records (storage/coordination.rs).

-- Work done by one replica at a time: a lease is held by `holder` until `expires_at`
-- (milliseconds since the epoch); taken over by another once expired.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Sign-in throttling (auth/throttle.rs): keyed instants in milliseconds since the epoch; a row
-- is deleted once `expires` has passed. No index on `expires`: the table holds about a minute
-- of failures, pruned by a scan once a minute, and every attempt writes one page less.
CREATE TABLE login_throttle (
    key      TEXT PRIMARY KEY,
    at       INTEGER NOT NULL,
    expires  INTEGER NOT NULL
) WITHOUT ROWID;
