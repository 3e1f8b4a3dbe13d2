//! Personal tokens in front of a cluster: the cluster's own (`oc whoami -t`), so every call
//! says so.

use app::api::tokens::{NewToken, TokenData, TokenRow};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;

use super::{MANAGED_BY_CLUSTER, UpstreamConsoleData};

#[async_trait]
impl TokenData for UpstreamConsoleData {
    async fn tokens(&self) -> ConsoleResult<Vec<TokenRow>> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn create_token(
        &self,
        _name: &str,
        _expires_in_days: Option<u32>,
    ) -> ConsoleResult<NewToken> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn revoke_token(&self, _uid: &str) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }
}
