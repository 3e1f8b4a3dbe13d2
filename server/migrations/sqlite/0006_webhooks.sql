-- Webhooks: per-namespace subscriptions to the event log, the deliveries made for them, and
-- every attempt at a delivery. The subscriptions go with their namespace, the deliveries with
-- their subscription.

CREATE TABLE webhooks (
    id                 INTEGER PRIMARY KEY,
    namespace          TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    uid                TEXT NOT NULL,
    url                TEXT NOT NULL,
    -- JSON array of the event names wanted (push, delete, imagestream); empty for all.
    events             TEXT NOT NULL,
    -- distribution or cloudevents.
    format             TEXT NOT NULL,
    -- The signing secret, encrypted as registry credentials are (XChaCha20-Poly1305 under the
    -- key file, `namespace/webhook:name` as associated data).
    secret_nonce       BLOB NOT NULL,
    secret_ciphertext  BLOB NOT NULL,
    -- The newest event when the subscription was made: only later events are delivered.
    since_event        INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    UNIQUE (namespace, name)
);

CREATE TABLE webhook_deliveries (
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
    UNIQUE (webhook_id, event_id, event)
);

-- A subscription's oldest pending delivery goes first.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, id)
    WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id   INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number        INTEGER NOT NULL,
    -- The HTTP status answered, or why there was none.
    status_code   INTEGER,
    error         TEXT,
    duration_ms   INTEGER NOT NULL,
    attempted_at  TEXT NOT NULL,
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;

-- How far the dispatcher has read the event log (one row).
CREATE TABLE webhook_cursor (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    event_id  INTEGER NOT NULL
);
