-- Trusted public keys (server/src/storage/trusted_keys.rs): per namespace, the keys cosign
-- signatures of its images are verified with. They go with their namespace.
CREATE TABLE trusted_keys (
    namespace    TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    uid          TEXT NOT NULL,
    -- The PEM "PUBLIC KEY" as given (checked to be an ECDSA P-256 or Ed25519 key).
    public_key   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
