//! Namespaces in front of a cluster: the cluster's list (without counts or sizes, which would
//! take a call per namespace), whether the user may create one, creating and deleting.

use app::api::ConsoleResult;
use app::api::namespaces::{NamespaceContents, NamespaceData, NamespaceList, NamespaceSummary};
use async_trait::async_trait;
use axum::http::Method;

use super::{UpstreamConsoleData, image_path, path_part};
use crate::console::forms::namespace_body;
use crate::console::views::{namespace_contents, time};
use crate::imagestream::model::ImageStream;
use crate::kube::Namespace;

#[async_trait]
impl NamespaceData for UpstreamConsoleData {
    async fn namespaces(&self) -> ConsoleResult<NamespaceList> {
        let signed = self.signed().await?;
        let (namespaces, can_create) = tokio::try_join!(
            self.list::<Namespace>(&signed, "/api/v1/namespaces"),
            self.may(&signed, "create", "namespaces")
        )?;
        Ok(NamespaceList {
            namespaces: namespaces
                .into_iter()
                .map(|ns| NamespaceSummary {
                    created: ns.metadata.creation_timestamp.map(time).unwrap_or_default(),
                    name: ns.metadata.name,
                    streams: None,
                    size: None,
                    can_delete: false,
                })
                .collect(),
            can_create,
        })
    }

    async fn create_namespace(&self, name: &str) -> ConsoleResult<()> {
        let signed = self.signed().await?;
        let _: Namespace = self
            .call(
                &signed,
                Method::POST,
                "/api/v1/namespaces",
                Some(&namespace_body(name)),
            )
            .await?;
        Ok(())
    }

    async fn delete_namespace(&self, name: &str) -> ConsoleResult<()> {
        self.delete(&format!("/api/v1/namespaces/{}", path_part(name)))
            .await
    }

    async fn namespace_contents(&self, name: &str) -> ConsoleResult<NamespaceContents> {
        let signed = self.signed().await?;
        let streams: Vec<ImageStream> = self
            .list(&signed, &image_path(name, "imagestreams", None))
            .await?;
        Ok(namespace_contents(&streams))
    }
}
