-- Berth's whole schema on PostgreSQL: what `migrations/sqlite/0001..0011` build on SQLite, as
-- one migration in native types. Identities for ids (never reused, as SQLite's AUTOINCREMENT),
-- TIMESTAMPTZ for times, BOOLEAN for flags, BYTEA for bytes. JSON kept as text stays TEXT,
-- except where queries reach into it (`manifests.image`, `spec_tags.reference`).
--
-- Names and digests are `COLLATE "C"`: they sort and compare by bytes whatever the database's
-- locale, as on SQLite, so pages (`name > $last ORDER BY name`) are the same on both, and a
-- prefix `LIKE` can use their index.

-- Registry metadata. Blob and manifest content is global (content-addressed); repositories link
-- to it, so the same layer pushed to many repositories is stored once.

CREATE TABLE repositories (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE blobs (
    digest      TEXT COLLATE "C" PRIMARY KEY,
    size        BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

-- A repository serves a blob only through a link here, and such a link is made only for bytes
-- verified here (an upload whose digest matched, a mount, a verified pull-through fetch).
CREATE TABLE repository_blobs (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT COLLATE "C" NOT NULL REFERENCES blobs (digest),
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repository_id, digest)
);

CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

-- Where an import found blobs that a repository may fetch (pull-through) but holds no verified
-- bytes of yet, with the size the imported manifest declares (the fetched bytes must have it).
CREATE TABLE remote_blobs (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT COLLATE "C" NOT NULL,
    -- The remote repository's pull spec (`registry/path`), and whether it is plain HTTP.
    source         TEXT NOT NULL,
    insecure       BOOLEAN NOT NULL DEFAULT FALSE,
    size           BIGINT NOT NULL CHECK (size >= 0),
    PRIMARY KEY (repository_id, digest)
);

CREATE TABLE manifests (
    digest         TEXT COLLATE "C" PRIMARY KEY,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    subject        TEXT COLLATE "C",
    -- JSON, served as stored by the referrers API.
    annotations    TEXT,
    size           BIGINT NOT NULL,
    content        BYTEA NOT NULL,
    -- What the image stream API shows of the image: read from the manifest and its config at
    -- push time. Sizes are summed from it (`image->>'size'`).
    image          JSONB,
    created_at     TIMESTAMPTZ NOT NULL
);

-- What each manifest refers to: its config and layers ('blob') or, for an index, its children
-- ('manifest'). Kept for validation and garbage collection.
CREATE TABLE manifest_references (
    digest  TEXT COLLATE "C" NOT NULL REFERENCES manifests (digest) ON DELETE CASCADE,
    child   TEXT COLLATE "C" NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (digest, kind, child)
);

CREATE TABLE repository_manifests (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT COLLATE "C" NOT NULL REFERENCES manifests (digest),
    -- Copied from the manifest so that referrers are one index lookup.
    subject        TEXT COLLATE "C",
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repository_id, digest)
);

CREATE INDEX repository_manifests_by_subject
    ON repository_manifests (repository_id, subject) WHERE subject IS NOT NULL;

-- A tag's current image: the registry's tag, and the image stream's status tag. `digest` is NULL
-- when the tag names an image kept elsewhere (`external_reference`), or none yet.
CREATE TABLE tags (
    repository_id       BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name                TEXT COLLATE "C" NOT NULL,
    digest              TEXT COLLATE "C",
    external_reference  TEXT,
    generation          BIGINT NOT NULL DEFAULT 0,
    -- TagEventConditions (JSON), such as a failed import.
    conditions          TEXT,
    updated_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repository_id, name),
    -- MATCH SIMPLE: a tag with no local image (digest NULL) is not checked against this key.
    FOREIGN KEY (repository_id, digest)
        REFERENCES repository_manifests (repository_id, digest) ON DELETE CASCADE
);

CREATE INDEX tags_by_digest ON tags (repository_id, digest);

-- Upload sessions, with the running hash, so that any replica (or this one after a restart)
-- can continue them.
CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    repository      TEXT COLLATE "C" NOT NULL,
    size            BIGINT NOT NULL,
    hash_algorithm  TEXT NOT NULL,
    hash_state      BYTEA NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

-- Image streams: namespaces hold streams; a stream is a repository seen as OpenShift's
-- ImageStream, with spec tags, tag history and a resourceVersion taken from the event log.

CREATE TABLE namespaces (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              TEXT COLLATE "C" NOT NULL UNIQUE,
    uid               TEXT NOT NULL,
    resource_version  BIGINT NOT NULL,
    -- JSON objects, or NULL for none.
    labels            TEXT,
    annotations       TEXT,
    created_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE image_streams (
    repository_id     BIGINT PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
    namespace_id      BIGINT NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    name              TEXT COLLATE "C" NOT NULL,
    uid               TEXT NOT NULL,
    -- Incremented on every change of the spec, as OpenShift's metadata.generation.
    generation        BIGINT NOT NULL,
    resource_version  BIGINT NOT NULL,
    labels            TEXT,
    annotations       TEXT,
    lookup_local      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (namespace_id, name)
);

-- spec.tags[]: where a tag comes from (TagReference JSON), with its generation. JSON, not
-- JSONB: the text is given back exactly as written (the API compares it to tell a changed spec
-- tag from an unchanged one), and queries still reach into it (`reference->'from'->>'kind'`).
CREATE TABLE spec_tags (
    repository_id  BIGINT NOT NULL REFERENCES image_streams (repository_id) ON DELETE CASCADE,
    name           TEXT COLLATE "C" NOT NULL,
    reference      JSON NOT NULL,
    generation     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name)
);

-- status.tags[].items[]: every image a tag has named, the newest last by id. Items go with
-- their tag, and with their image when it is deleted from the repository.
CREATE TABLE tag_history (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository_id       BIGINT NOT NULL,
    tag                 TEXT COLLATE "C" NOT NULL,
    digest              TEXT COLLATE "C",
    external_reference  TEXT,
    generation          BIGINT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (repository_id, tag) REFERENCES tags (repository_id, name) ON DELETE CASCADE,
    FOREIGN KEY (repository_id, digest)
        REFERENCES repository_manifests (repository_id, digest) ON DELETE CASCADE
);

CREATE INDEX tag_history_by_tag ON tag_history (repository_id, tag, id);
CREATE INDEX tag_history_by_digest ON tag_history (repository_id, digest);

-- The durable, ordered log of every change. Its id is the resourceVersion that watchers resume
-- from. DELETED events keep the object's last state (JSON); others are rendered when read.
-- Appends are serialised (a transaction-scoped advisory lock taken just before the insert), so
-- ids commit in order and a reader of `id > last` never skips one that commits late.
CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('Namespace', 'ImageStream')),
    type        TEXT NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
    namespace   TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    reason      TEXT NOT NULL,
    tag         TEXT,
    old_image   TEXT,
    new_image   TEXT,
    object      TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX events_by_namespace ON events (namespace, id);

-- Identity and access: users and groups, service accounts, tokens, role bindings, the embedded
-- OAuth server's codes, the audit log, and the server's own secrets.

CREATE TABLE users (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               TEXT COLLATE "C" NOT NULL UNIQUE,
    uid                TEXT NOT NULL,
    -- argon2 (PHC string), or bcrypt from a seeding htpasswd file until the first login; NULL
    -- for users of an external provider.
    password_hash      TEXT,
    identity_provider  TEXT NOT NULL,
    full_name          TEXT,
    -- The provider's groups claim at the last login (JSON array).
    external_groups    TEXT,
    disabled           BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         TIMESTAMPTZ NOT NULL
);

CREATE TABLE groups (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE group_members (
    group_id  BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX group_members_by_user ON group_members (user_id);

-- Identities of external providers, as OpenShift maps them: an identity is (provider, subject)
-- and belongs to one user; a user may have several. Signing in finds the user through the
-- identity, never through a name the provider chose.
CREATE TABLE identities (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (provider, subject)
);

CREATE INDEX identities_by_user ON identities (user_id);

CREATE TABLE service_accounts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace   TEXT COLLATE "C" NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name        TEXT COLLATE "C" NOT NULL,
    uid         TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (namespace, name)
);

-- Tokens are shown once; only the SHA-256 of the secret is kept (secrets are 256 random bits,
-- so a fast hash is enough).
CREATE TABLE tokens (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid                 TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    secret_hash         TEXT NOT NULL UNIQUE,
    kind                TEXT NOT NULL CHECK (kind IN ('personal', 'serviceaccount', 'oauth')),
    user_id             BIGINT REFERENCES users (id) ON DELETE CASCADE,
    service_account_id  BIGINT REFERENCES service_accounts (id) ON DELETE CASCADE,
    created_at          TIMESTAMPTZ NOT NULL,
    expires_at          TIMESTAMPTZ,
    last_used_at        TIMESTAMPTZ,
    revoked_at          TIMESTAMPTZ,
    CHECK ((user_id IS NULL) <> (service_account_id IS NULL))
);

CREATE INDEX tokens_by_user ON tokens (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX tokens_by_service_account ON tokens (service_account_id)
    WHERE service_account_id IS NOT NULL;

-- A role for one subject, on the whole registry (namespace NULL), a namespace, or one stream.
CREATE TABLE role_bindings (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               TEXT COLLATE "C" NOT NULL,
    namespace          TEXT COLLATE "C" REFERENCES namespaces (name) ON DELETE CASCADE,
    stream             TEXT COLLATE "C",
    role               TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin', 'cluster-admin')),
    subject_kind       TEXT NOT NULL CHECK (subject_kind IN ('User', 'Group', 'ServiceAccount')),
    subject_name       TEXT COLLATE "C" NOT NULL,
    subject_namespace  TEXT COLLATE "C",
    created_at         TIMESTAMPTZ NOT NULL,
    CHECK (stream IS NULL OR namespace IS NOT NULL),
    CHECK (role <> 'cluster-admin' OR namespace IS NULL)
);

CREATE UNIQUE INDEX role_bindings_by_name ON role_bindings (coalesce(namespace, ''), name);
CREATE INDEX role_bindings_by_namespace ON role_bindings (namespace);
CREATE INDEX role_bindings_by_subject
    ON role_bindings (subject_kind, subject_namespace, subject_name);

-- A binding to a service account goes with the account (and so with its namespace, whose
-- deletion deletes its accounts): whoever makes an account of the same name later starts with
-- nothing.
CREATE FUNCTION delete_service_account_bindings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM role_bindings
    WHERE subject_kind = 'ServiceAccount'
      AND subject_namespace = OLD.namespace
      AND subject_name = OLD.name;
    RETURN OLD;
END
$$;

CREATE TRIGGER service_account_bindings_go_with_it AFTER DELETE ON service_accounts
    FOR EACH ROW EXECUTE FUNCTION delete_service_account_bindings();

-- The same for the group of a namespace's service accounts (system:serviceaccounts:NS), bound
-- anywhere: it goes with its namespace.
CREATE FUNCTION delete_service_account_group_bindings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM role_bindings
    WHERE subject_kind = 'Group' AND subject_name = 'system:serviceaccounts:' || OLD.name;
    RETURN OLD;
END
$$;

CREATE TRIGGER service_account_group_bindings_go_with_it AFTER DELETE ON namespaces
    FOR EACH ROW EXECUTE FUNCTION delete_service_account_group_bindings();

-- Authorization codes of the embedded OAuth server, single use, minutes long.
CREATE TABLE oauth_codes (
    code_hash       TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_challenge  TEXT NOT NULL,
    nonce           TEXT,
    scope           TEXT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    used            BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX oauth_codes_by_user ON oauth_codes (user_id);

CREATE TABLE audit_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time      TIMESTAMPTZ NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    address   TEXT,
    detail    TEXT
);

-- Audit retention deletes by time.
CREATE INDEX audit_log_by_time ON audit_log (time);

-- Keys the server makes for itself on first start (registry token signing, OAuth client).
CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY,
    value  BYTEA NOT NULL
);

-- Credentials for other registries ("pull secrets"), per namespace, as Kubernetes Secrets of
-- type kubernetes.io/dockerconfigjson. The Docker config.json is encrypted (XChaCha20-Poly1305,
-- a random nonce per secret, the namespace and name as associated data) with a key kept outside
-- the database, so a copy of the database alone reveals no credentials. The secrets go with
-- their namespace.
CREATE TABLE registry_secrets (
    namespace   TEXT COLLATE "C" NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name        TEXT COLLATE "C" NOT NULL,
    type        TEXT NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    -- JSON array of the registry hosts (host[:port], Docker Hub as docker.io) the secret has
    -- credentials for, so that a lookup decrypts only the secret it uses.
    hosts       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- Webhooks: per-namespace subscriptions to the event log, the deliveries made for them, and
-- every attempt at a delivery. The subscriptions go with their namespace, the deliveries with
-- their subscription.

CREATE TABLE webhooks (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace          TEXT COLLATE "C" NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name               TEXT COLLATE "C" NOT NULL,
    uid                TEXT NOT NULL,
    url                TEXT NOT NULL,
    -- JSON array of the event names wanted (push, delete, imagestream); empty for all.
    events             TEXT NOT NULL,
    -- distribution or cloudevents.
    format             TEXT NOT NULL,
    -- The signing secret, encrypted as registry credentials are (XChaCha20-Poly1305 under the
    -- key file, `namespace/webhook:name` as associated data).
    secret_nonce       BYTEA NOT NULL,
    secret_ciphertext  BYTEA NOT NULL,
    -- The newest event when the subscription was made: only later events are delivered.
    since_event        BIGINT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (namespace, name)
);

CREATE TABLE webhook_deliveries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The event log row it was made from, and which of the subscriber's events it is.
    event_id         BIGINT NOT NULL,
    event            TEXT NOT NULL,
    -- The request body, made once so that every attempt sends the same bytes.
    content_type     TEXT NOT NULL,
    body             BYTEA NOT NULL,
    -- pending, delivered or failed.
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    -- When a pending delivery is due (or, while it is being sent, when its claim lapses).
    next_attempt_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    -- The delivery this one sends again, for a redelivery (a new delivery of the same event
    -- with the same body); NULL for one made from the log. No reference: both go with their
    -- subscription, together.
    redelivery_of    BIGINT
);

CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id);

-- One delivery from the log per subscription, event and name: the dispatcher never makes one
-- twice (after a restart, or on a second replica).
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (webhook_id, event_id, event)
    WHERE redelivery_of IS NULL;

-- A subscription's oldest pending delivery goes first.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, id)
    WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id   BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number        BIGINT NOT NULL,
    -- The HTTP status answered, or why there was none.
    status_code   BIGINT,
    error         TEXT,
    duration_ms   BIGINT NOT NULL,
    attempted_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (delivery_id, number)
);

-- How far the dispatcher has read the event log (one row).
CREATE TABLE webhook_cursor (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    event_id  BIGINT NOT NULL
);
