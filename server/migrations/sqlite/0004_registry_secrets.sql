-- Credentials for other registries ("pull secrets"), per namespace, as Kubernetes Secrets of
-- type kubernetes.io/dockerconfigjson. The Docker config.json is encrypted (XChaCha20-Poly1305,
-- a random nonce per secret, the namespace and name as associated data) with a key kept outside
-- the database, so a copy of the database alone reveals no credentials. The secrets go with
-- their namespace.
CREATE TABLE registry_secrets (
    namespace   TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    -- JSON array of the registry hosts (host[:port], Docker Hub as docker.io) the secret has
    -- credentials for, so that a lookup decrypts only the secret it uses.
    hosts       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
