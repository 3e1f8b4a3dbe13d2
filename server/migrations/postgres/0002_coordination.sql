-- What replicas coordinate through besides records (storage/coordination.rs); messages between
-- replicas are NOTIFY on the channels of storage::coordination::Topic, and need no table.

-- Work done by one replica at a time: a lease is held by `holder` until `expires_at` (the
-- database's clock); taken over by another once expired.
CREATE TABLE leases (
    name        TEXT COLLATE "C" PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

-- Sign-in throttling (auth/throttle.rs): keyed instants in milliseconds since the epoch; a row
-- is deleted once `expires` has passed. No index on `expires`: the table holds about a minute
-- of failures, pruned by a scan once a minute, and every attempt writes one page less.
CREATE TABLE login_throttle (
    key      TEXT COLLATE "C" PRIMARY KEY,
    at       BIGINT NOT NULL,
    expires  BIGINT NOT NULL
);
