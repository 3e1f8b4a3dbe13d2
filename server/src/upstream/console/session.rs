//! The console's session in front of a cluster: the signed-in user, the cluster's addresses,
//! the CSRF check of changes (for a session that still holds a token).

use app::api::ConsoleResult;
use app::api::session::{SessionData, SessionInfo};
use async_trait::async_trait;

use super::UpstreamConsoleData;
use crate::console::session::{check_session_csrf, signed_in_user};

#[async_trait]
impl SessionData for UpstreamConsoleData {
    async fn session(&self) -> ConsoleResult<SessionInfo> {
        let (user, csrf_token) = signed_in_user().await?;
        Ok(SessionInfo {
            user,
            csrf_token,
            registry_host: self.api.registry_host.clone(),
            upstream: Some(self.api.api_url().to_owned()),
        })
    }

    async fn check_csrf(&self, token: &str) -> ConsoleResult<()> {
        let signed = self.signed().await?;
        check_session_csrf(&signed.session, token).await
    }
}
