//! Personal tokens inside Berth: the signed-in user's own, through the access API.

use app::api::ConsoleResult;
use app::api::tokens::{NewToken, TokenData, TokenRow};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::session::{authenticated, caller};
use crate::console::views::token_row;

#[async_trait]
impl TokenData for LocalConsoleData {
    async fn tokens(&self) -> ConsoleResult<Vec<TokenRow>> {
        let who = caller().await?;
        Ok(self
            .access
            .personal_tokens(&who)
            .await?
            .iter()
            .map(token_row)
            .collect())
    }

    async fn create_token(
        &self,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> ConsoleResult<NewToken> {
        let who = authenticated().await?;
        let (record, secret) = self
            .access
            .create_personal_token(&who, name, expires_in_days.map(u64::from))
            .await?;
        Ok(NewToken {
            token: token_row(&record),
            secret,
        })
    }

    async fn revoke_token(&self, uid: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access.revoke_personal_token(&who, uid).await?;
        Ok(())
    }
}
