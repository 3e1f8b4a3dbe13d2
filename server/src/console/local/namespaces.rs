//! Namespaces inside Berth: the ones the caller may see with their usage, made and deleted
//! through the image stream API.

use app::api::ConsoleResult;
use app::api::namespaces::{NamespaceContents, NamespaceData, NamespaceList, NamespaceSummary};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::auth::{Action, Target};
use crate::console::forms::namespace_body;
use crate::console::session::caller;
use crate::console::views::{namespace_contents, time};
use crate::kube::{MAX_PAGE, Page};

#[async_trait]
impl NamespaceData for LocalConsoleData {
    async fn namespaces(&self) -> ConsoleResult<NamespaceList> {
        let who = caller().await?;
        let authorizer = &self.auth.authorizer;
        let visible = authorizer.visible_namespaces(&who);
        let namespaces = self
            .image_streams
            .store
            .namespace_usage()
            .await?
            .into_iter()
            .filter(|usage| visible.contains(&usage.name))
            .map(|usage| NamespaceSummary {
                can_delete: authorizer.allows(&who, Action::Delete, Target::namespace(&usage.name)),
                name: usage.name,
                streams: Some(usage.streams),
                size: Some(usage.size),
                created: time(usage.created_at),
            })
            .collect();
        Ok(NamespaceList {
            namespaces,
            can_create: authorizer.may_create_namespace(&who),
        })
    }

    async fn create_namespace(&self, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams
            .create_namespace(&who, namespace_body(name))
            .await?;
        Ok(())
    }

    async fn delete_namespace(&self, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams.delete_namespace(&who, name).await?;
        Ok(())
    }

    async fn namespace_contents(&self, name: &str) -> ConsoleResult<NamespaceContents> {
        let who = caller().await?;
        let mut streams = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = Page::parse(Some(MAX_PAGE), next.as_deref())?;
            let list = self.image_streams.list_streams(&who, name, &page).await?;
            streams.extend(list.items);
            if list.metadata.continue_token.is_empty() {
                break;
            }
            next = Some(list.metadata.continue_token);
        }
        Ok(namespace_contents(&streams))
    }
}
