-- Identities of external providers, as OpenShift maps them: an identity is (provider, subject)
-- and belongs to one user; a user may have several. Signing in finds the user through the
-- identity, never through a name the provider chose, so an external "admin" is not Berth's
-- administrator.
CREATE TABLE identities (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    UNIQUE (provider, subject)
);

CREATE INDEX identities_by_user ON identities (user_id);

-- Until now an external sign-in whose name was a local user's wrote its groups claim onto that
-- user: whatever a local user holds from a provider's claim came from there.
UPDATE users SET external_groups = NULL WHERE identity_provider IN ('local', 'htpasswd');

-- A binding to a service account goes with the account (and so with its namespace, whose
-- deletion deletes its accounts): whoever makes an account of the same name later starts with
-- nothing. The bindings already left behind by deleted accounts go now.
CREATE TRIGGER service_account_bindings_go_with_it AFTER DELETE ON service_accounts
BEGIN
    DELETE FROM role_bindings
    WHERE subject_kind = 'ServiceAccount'
      AND subject_namespace = OLD.namespace
      AND subject_name = OLD.name;
END;

DELETE FROM role_bindings
WHERE subject_kind = 'ServiceAccount'
  AND NOT EXISTS (
      SELECT 1 FROM service_accounts a
      WHERE a.namespace = role_bindings.subject_namespace AND a.name = role_bindings.subject_name
  );

-- The same for the group of a namespace's service accounts (system:serviceaccounts:NS), bound
-- anywhere: it goes with its namespace.
CREATE TRIGGER service_account_group_bindings_go_with_it AFTER DELETE ON namespaces
BEGIN
    DELETE FROM role_bindings
    WHERE subject_kind = 'Group' AND subject_name = 'system:serviceaccounts:' || OLD.name;
END;

DELETE FROM role_bindings
WHERE subject_kind = 'Group'
  AND substr(subject_name, 1, 23) = 'system:serviceaccounts:'
  AND NOT EXISTS (SELECT 1 FROM namespaces n WHERE n.name = substr(role_bindings.subject_name, 24));

CREATE INDEX role_bindings_by_subject ON role_bindings (subject_kind, subject_namespace, subject_name);

-- Audit retention deletes by time.
CREATE INDEX audit_log_by_time ON audit_log (time);
