//! Access in front of a cluster: managed by the cluster itself (`oc adm policy`), so every call
//! says so.

use app::api::access::{AccessData, AccessView};
use app::api::tokens::NewToken;
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;

use super::{MANAGED_BY_CLUSTER, UpstreamConsoleData};

#[async_trait]
impl AccessData for UpstreamConsoleData {
    async fn access(&self, _namespace: &str, _stream: Option<&str>) -> ConsoleResult<AccessView> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn add_binding(
        &self,
        _namespace: &str,
        _stream: Option<&str>,
        _role: &str,
        _subject_kind: &str,
        _subject_name: &str,
    ) -> ConsoleResult<Vec<String>> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn remove_binding(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn create_service_account(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn delete_service_account(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn create_service_account_token(
        &self,
        _namespace: &str,
        _account: &str,
    ) -> ConsoleResult<NewToken> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn revoke_service_account_token(
        &self,
        _namespace: &str,
        _account: &str,
        _uid: &str,
    ) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }
}
