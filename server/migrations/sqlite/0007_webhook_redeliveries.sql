-- Deliveries sent again by hand: a redelivery is a new delivery of the same event with the same
-- body, so a subscription can hold several for one event. The uniqueness that keeps the
-- dispatcher from making a delivery twice (after a restart, or on a second replica) now holds
-- for the deliveries made from the log only; a redelivery names the delivery it repeats.
--
-- SQLite cannot drop a table constraint: both delivery tables are made again (the attempts
-- too, since dropping the deliveries with foreign keys on would delete them) and the rows
-- copied, ids kept.

CREATE TABLE webhook_deliveries_new (
    id               INTEGER PRIMARY KEY,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The event log row it was made from, and which of the subscriber's events it is.
    event_id         INTEGER NOT NULL,
    event            TEXT NOT NULL,
    -- The request body, made once so that every attempt sends the same bytes.
    content_type     TEXT NOT NULL,
    body             BLOB NOT NULL,
    -- pending, delivered or failed.
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- When a pending delivery is due (or, while it is being sent, when its claim lapses), in
    -- milliseconds since 1970, so that it compares as a number.
    next_attempt_at  INTEGER,
    created_at       TEXT NOT NULL,
    -- The delivery this one sends again, for a redelivery; NULL for one made from the log.
    -- No reference: both go with their subscription, together.
    redelivery_of    INTEGER
);

INSERT INTO webhook_deliveries_new (id, webhook_id, event_id, event, content_type, body, state,
        attempts, next_attempt_at, created_at, redelivery_of)
    SELECT id, webhook_id, event_id, event, content_type, body, state, attempts,
        next_attempt_at, created_at, NULL
    FROM webhook_deliveries;

CREATE TABLE webhook_attempts_new (
    delivery_id   INTEGER NOT NULL REFERENCES webhook_deliveries_new (id) ON DELETE CASCADE,
    number        INTEGER NOT NULL,
    -- The HTTP status answered, or why there was none.
    status_code   INTEGER,
    error         TEXT,
    duration_ms   INTEGER NOT NULL,
    attempted_at  TEXT NOT NULL,
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;

INSERT INTO webhook_attempts_new (delivery_id, number, status_code, error, duration_ms,
        attempted_at)
    SELECT delivery_id, number, status_code, error, duration_ms, attempted_at
    FROM webhook_attempts;

DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
-- Renaming updates the attempts' reference to the deliveries' new name.
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;
ALTER TABLE webhook_attempts_new RENAME TO webhook_attempts;

-- One delivery from the log per subscription, event and name.
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (webhook_id, event_id, event)
    WHERE redelivery_of IS NULL;

-- A subscription's oldest pending delivery goes first.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, id)
    WHERE state = 'pending';
