//! Imports inside Berth: the import dialog's request through the importer, as the API's
//! `ImageStreamImport`.

use app::api::ConsoleResult;
use app::api::imports::{ImportData, ImportOutcome, ImportRequest};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::forms::{import_body, import_outcomes};
use crate::console::session::caller;

#[async_trait]
impl ImportData for LocalConsoleData {
    async fn import(&self, request: ImportRequest) -> ConsoleResult<Vec<ImportOutcome>> {
        let who = caller().await?;
        let answer = self
            .importer
            .import(&who, request.namespace.trim(), import_body(&request))
            .await?;
        import_outcomes(answer)
    }
}
