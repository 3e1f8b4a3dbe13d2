-- Identity and access: users and groups, service accounts, tokens, role bindings, the embedded
-- OAuth server's codes, the audit log, and the server's own secrets.

CREATE TABLE users (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT NOT NULL UNIQUE,
    uid                TEXT NOT NULL,
    -- argon2 (PHC string), or bcrypt from a seeding htpasswd file until the first login; NULL
    -- for users of an external provider.
    password_hash      TEXT,
    identity_provider  TEXT NOT NULL,
    full_name          TEXT,
    -- The provider's groups claim at the last login (JSON array).
    external_groups    TEXT,
    disabled           INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL
);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE group_members (
    group_id  INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;

CREATE TABLE service_accounts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace   TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    uid         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (namespace, name)
);

-- Tokens are shown once; only the SHA-256 of the secret is kept (secrets are 256 random bits,
-- so a fast hash is enough).
CREATE TABLE tokens (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    uid                 TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    secret_hash         TEXT NOT NULL UNIQUE,
    kind                TEXT NOT NULL CHECK (kind IN ('personal', 'serviceaccount', 'oauth')),
    user_id             INTEGER REFERENCES users (id) ON DELETE CASCADE,
    service_account_id  INTEGER REFERENCES service_accounts (id) ON DELETE CASCADE,
    created_at          TEXT NOT NULL,
    expires_at          TEXT,
    last_used_at        TEXT,
    revoked_at          TEXT,
    CHECK ((user_id IS NULL) <> (service_account_id IS NULL))
);

-- A role for one subject, on the whole registry (namespace NULL), a namespace, or one stream.
CREATE TABLE role_bindings (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT NOT NULL,
    namespace          TEXT REFERENCES namespaces (name) ON DELETE CASCADE,
    stream             TEXT,
    role               TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin', 'cluster-admin')),
    subject_kind       TEXT NOT NULL CHECK (subject_kind IN ('User', 'Group', 'ServiceAccount')),
    subject_name       TEXT NOT NULL,
    subject_namespace  TEXT,
    created_at         TEXT NOT NULL,
    CHECK (stream IS NULL OR namespace IS NOT NULL),
    CHECK (role <> 'cluster-admin' OR namespace IS NULL)
);

CREATE UNIQUE INDEX role_bindings_by_name ON role_bindings (coalesce(namespace, ''), name);

-- Authorization codes of the embedded OAuth server, single use, minutes long.
CREATE TABLE oauth_codes (
    code_hash       TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_challenge  TEXT NOT NULL,
    nonce           TEXT,
    scope           TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used            INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    address   TEXT,
    detail    TEXT
);

-- Keys the server makes for itself on first start (registry token signing, OAuth client).
CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
) WITHOUT ROWID;
