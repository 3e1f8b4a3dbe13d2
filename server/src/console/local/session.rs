//! The console's session inside Berth: the signed-in user, the registry's address, the CSRF
//! check of changes.

use app::api::session::{SessionData, SessionInfo};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::auth::sign_in::SESSION_USER;
use crate::console::session::{check_session_csrf, session, session_value, signed_in_user};

#[async_trait]
impl SessionData for LocalConsoleData {
    async fn session(&self) -> ConsoleResult<SessionInfo> {
        let registry_host = self
            .image_streams
            .public_host
            .clone()
            .unwrap_or_else(|| self.image_streams.registry_host.clone());
        let (user, csrf_token) = signed_in_user().await?;
        Ok(SessionInfo {
            user,
            csrf_token,
            registry_host,
            upstream: None,
        })
    }

    async fn check_csrf(&self, token: &str) -> ConsoleResult<()> {
        let Some(session) = session() else {
            return Err(ConsoleError::SignInRequired);
        };
        if session_value(&session, SESSION_USER).await?.is_none() {
            return Err(ConsoleError::SignInRequired);
        }
        check_session_csrf(&session, token).await
    }
}
