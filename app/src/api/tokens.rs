//! Personal tokens: the signed-in user's own, made (the secret shown once) and revoked; and the
//! row every token is shown as, service accounts' too.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::{changing, console_data};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub uid: String,
    pub name: String,
    pub created: String,
    pub expires: Option<String>,
    pub last_used: Option<String>,
    pub revoked: bool,
}

/// A token just made: the secret is here and nowhere else, ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub token: TokenRow,
    pub secret: String,
}

/// The signed-in user's personal tokens.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait TokenData: Send + Sync {
    async fn tokens(&self) -> ConsoleResult<Vec<TokenRow>>;
    async fn create_token(
        &self,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> ConsoleResult<NewToken>;
    async fn revoke_token(&self, uid: &str) -> ConsoleResult<()>;
}

#[server(prefix = "/console/api", endpoint = "tokens", input = GetUrl)]
pub async fn list_tokens() -> ConsoleResult<Vec<TokenRow>> {
    console_data()?.tokens().await
}

#[server(prefix = "/console/api", endpoint = "create_token")]
pub async fn create_token(
    csrf: String,
    name: String,
    expires_in_days: Option<u32>,
) -> ConsoleResult<NewToken> {
    changing(&csrf)
        .await?
        .create_token(&name, expires_in_days)
        .await
}

#[server(prefix = "/console/api", endpoint = "revoke_token")]
pub async fn revoke_token(csrf: String, uid: String) -> ConsoleResult<()> {
    changing(&csrf).await?.revoke_token(&uid).await
}
