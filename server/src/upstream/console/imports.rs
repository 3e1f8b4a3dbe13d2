//! Imports in front of a cluster: the import dialog's request as the cluster's
//! `ImageStreamImport`.

use app::api::ConsoleResult;
use app::api::imports::{ImportData, ImportOutcome, ImportRequest};
use async_trait::async_trait;
use axum::http::Method;

use super::{UpstreamConsoleData, image_path};
use crate::console::forms::{import_body, import_outcomes};

#[async_trait]
impl ImportData for UpstreamConsoleData {
    async fn import(&self, request: ImportRequest) -> ConsoleResult<Vec<ImportOutcome>> {
        let signed = self.signed().await?;
        let answer = self
            .call(
                &signed,
                Method::POST,
                &image_path(request.namespace.trim(), "imagestreamimports", None),
                Some(&import_body(&request)),
            )
            .await?;
        import_outcomes(answer)
    }
}
