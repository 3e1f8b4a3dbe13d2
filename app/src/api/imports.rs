//! Imports: `oc import-image` from the console's dialog, one outcome per tag.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::changing;

/// What the import dialog asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequest {
    pub namespace: String,
    pub stream: String,
    /// The remote image: `registry/repository[:tag|@digest]`.
    pub from: String,
    /// The tag to write; empty for the remote's tag.
    pub tag: String,
    /// Every tag of the remote repository.
    pub all_tags: bool,
    /// Plain HTTP to the remote.
    pub insecure: bool,
    /// Import again on the server's schedule.
    pub scheduled: bool,
    /// Serve pulls from Berth (`referencePolicy: Local`).
    pub local: bool,
    /// Only read what would be imported (`import: false`): nothing is stored or changed.
    #[serde(default)]
    pub dry_run: bool,
}

/// One tag's import: the image it now names, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// The stream the tag is in.
    #[serde(default)]
    pub stream: String,
    pub tag: String,
    pub digest: Option<String>,
    pub error: Option<String>,
    /// A dry run's: the image was read, not imported.
    #[serde(default)]
    pub dry_run: bool,
}

/// Images brought in from another registry.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ImportData: Send + Sync {
    /// `oc import-image`: one tag (or every tag) of another registry's repository into a
    /// stream; one outcome per tag.
    async fn import(&self, request: ImportRequest) -> ConsoleResult<Vec<ImportOutcome>>;
}

#[server(prefix = "/console/api", endpoint = "import")]
pub async fn import_images(
    csrf: String,
    request: ImportRequest,
) -> ConsoleResult<Vec<ImportOutcome>> {
    changing(&csrf).await?.import(request).await
}
