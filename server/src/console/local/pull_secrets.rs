//! Pull secrets inside Berth: a namespace's registry credentials through `RegistrySecrets`,
//! listed without their data.

use app::api::ConsoleResult;
use app::api::pull_secrets::{PullSecretData, PullSecretRow};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::session::caller;
use crate::console::views::pull_secret_row;
use crate::kube::SECRETS;

#[async_trait]
impl PullSecretData for LocalConsoleData {
    async fn pull_secrets(&self, namespace: &str) -> ConsoleResult<Vec<PullSecretRow>> {
        let who = caller().await?;
        Ok(self
            .secrets
            .list(&who, namespace)
            .await?
            .items
            .iter()
            .map(pull_secret_row)
            .collect())
    }

    async fn create_pull_secret(
        &self,
        namespace: &str,
        name: &str,
        registry: &str,
        username: &str,
        password: &str,
    ) -> ConsoleResult<PullSecretRow> {
        let who = caller().await?;
        // Refused before the form is read, as the API refuses before it reads a body.
        self.image_streams
            .require_namespace_admin(&who, namespace, SECRETS, name.trim())
            .await?;
        let secret = crate::secrets::object::pull_secret(name, registry, username, password)?;
        let stored = self.secrets.create(&who, namespace, secret).await?;
        Ok(pull_secret_row(&stored))
    }

    async fn delete_pull_secret(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.secrets.delete(&who, namespace, name).await?;
        Ok(())
    }
}
