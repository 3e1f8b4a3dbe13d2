//! First start: the bootstrap administrator, and users seeded from an htpasswd file.

use std::sync::Arc;

use chrono::Utc;

use super::credentials::{hash_password, new_password, parse_htpasswd};
use crate::config::ConfigError;
use crate::config::auth::AuthConfig;
use crate::storage::auth::{AuthStore, BindingRecord};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("reading the htpasswd file {path}: {reason}")]
    Htpasswd { path: String, reason: String },
    #[error(transparent)]
    Credential(#[from] super::credentials::CredentialError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// What bootstrapping did, for the operator.
#[derive(Debug, Default)]
pub struct Bootstrapped {
    /// The administrator made now, with the password when it was generated (shown once).
    pub admin: Option<(String, Option<String>)>,
    pub seeded: Vec<String>,
}

/// The bootstrap administrator's name is a user name: checked at start with the rest of the
/// configuration, before anything is made.
pub fn check_bootstrap_admin(config: &AuthConfig) -> Result<(), ConfigError> {
    match super::names::user_name_error(&config.bootstrap_admin) {
        Some(reason) => Err(ConfigError::Invalid {
            field: "auth.bootstrap_admin",
            reason,
        }),
        None => Ok(()),
    }
}

/// Creates the bootstrap administrator when there are no users yet, and the users of the
/// htpasswd file that do not exist.
pub async fn bootstrap(
    store: &Arc<dyn AuthStore>,
    config: &AuthConfig,
) -> Result<Bootstrapped, BootstrapError> {
    let mut done = Bootstrapped::default();
    if store.count_users().await? == 0 {
        let generated = config.bootstrap_password.is_none().then(new_password);
        let password = config
            .bootstrap_password
            .clone()
            .or_else(|| generated.clone())
            .unwrap_or_default();
        let hash = hash_password(&password)?;
        store
            .create_user(
                &config.bootstrap_admin,
                Some(&hash),
                "local",
                Some("Administrator"),
            )
            .await?;
        store
            .create_binding(&BindingRecord {
                name: format!("bootstrap-{}", config.bootstrap_admin),
                namespace: None,
                stream: None,
                role: "cluster-admin".into(),
                subject_kind: "User".into(),
                subject_name: config.bootstrap_admin.clone(),
                subject_namespace: None,
                created_at: Utc::now(),
            })
            .await?;
        done.admin = Some((config.bootstrap_admin.clone(), generated));
    }
    if let Some(path) = &config.htpasswd_file {
        let text =
            tokio::fs::read_to_string(path)
                .await
                .map_err(|err| BootstrapError::Htpasswd {
                    path: path.display().to_string(),
                    reason: err.to_string(),
                })?;
        let entries = parse_htpasswd(&text).map_err(|err| BootstrapError::Htpasswd {
            path: path.display().to_string(),
            reason: err.to_string(),
        })?;
        for (name, hash) in entries {
            if let Some(reason) = super::names::user_name_error(&name) {
                tracing::warn!(user = %name.escape_debug(), %reason, "skipping an htpasswd entry");
                continue;
            }
            if store
                .create_user(&name, Some(&hash), "htpasswd", None)
                .await?
                .is_some()
            {
                done.seeded.push(name);
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_administrator_is_checked_as_a_user_name() {
        assert!(check_bootstrap_admin(&AuthConfig::default()).is_ok());
        for bad in ["", "../admin", "system:admin", "admin\n"] {
            let config = AuthConfig {
                bootstrap_admin: bad.into(),
                ..AuthConfig::default()
            };
            let err = check_bootstrap_admin(&config).unwrap_err().to_string();
            assert!(
                err.starts_with("auth.bootstrap_admin: "),
                "{bad:?} gave {err:?}"
            );
        }
    }
}
