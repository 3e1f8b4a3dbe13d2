//! Pull secrets in front of a cluster: the cluster's own `Secret`s of type
//! `kubernetes.io/dockerconfigjson`, listed without their data.

use app::api::ConsoleResult;
use app::api::pull_secrets::{PullSecretData, PullSecretRow};
use async_trait::async_trait;
use axum::http::Method;

use super::{UpstreamConsoleData, path_part};
use crate::console::views::pull_secret_row;
use crate::kube::Secret;
use crate::secrets::object::{DOCKER_CONFIG_JSON, pull_secret};

/// A namespace's secrets in the cluster's core API.
fn secrets_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{}/secrets", path_part(namespace))
}

#[async_trait]
impl PullSecretData for UpstreamConsoleData {
    async fn pull_secrets(&self, namespace: &str) -> ConsoleResult<Vec<PullSecretRow>> {
        let signed = self.signed().await?;
        // A cluster holds secrets of every type (service account tokens, TLS keys): it is
        // asked for pull secrets only, and what it answers is filtered again here.
        let path = format!(
            "{}?fieldSelector={}",
            secrets_path(namespace),
            path_part(&format!("type={DOCKER_CONFIG_JSON}"))
        );
        let secrets = self.list::<Secret>(&signed, &path).await?;
        let mut rows: Vec<PullSecretRow> = secrets
            .iter()
            .filter(|secret| secret.secret_type == DOCKER_CONFIG_JSON)
            .map(pull_secret_row)
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    async fn create_pull_secret(
        &self,
        namespace: &str,
        name: &str,
        registry: &str,
        username: &str,
        password: &str,
    ) -> ConsoleResult<PullSecretRow> {
        let signed = self.signed().await?;
        let secret = pull_secret(name, registry, username, password)?;
        let stored: Secret = self
            .call(
                &signed,
                Method::POST,
                &secrets_path(namespace),
                Some(&secret),
            )
            .await?;
        Ok(pull_secret_row(&stored))
    }

    async fn delete_pull_secret(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        self.delete(&format!("{}/{}", secrets_path(namespace), path_part(name)))
            .await
    }
}
