//! Users inside Berth, through the access API's service (cluster administrators only).

use app::api::ConsoleResult;
use app::api::users::{UserData, UserRow};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::session::caller;
use crate::console::views::time;

#[async_trait]
impl UserData for LocalConsoleData {
    async fn users(&self) -> ConsoleResult<Vec<UserRow>> {
        let who = caller().await?;
        Ok(self
            .access
            .users(&who)
            .await?
            .into_iter()
            .map(|(user, identities)| UserRow {
                created: time(user.created_at),
                name: user.name,
                full_name: user.full_name,
                identities,
                groups: user.groups,
            })
            .collect())
    }

    async fn may_list_users(&self) -> ConsoleResult<bool> {
        Ok(self.access.is_cluster_admin(&caller().await?))
    }
}
