//! What the console shows and how it asks for it: the shared types, the server functions, and
//! (on the server) the [`ConsoleData`] interface they read and write through.
//!
//! Every page reaches registry data through `ConsoleData`, so the same pages can later be served
//! from another source (an upstream OpenShift-compatible server) by a second implementation.
//! Reads are GET server functions; changes are POST and carry the session's CSRF token.

use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, JsonEncoding};
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Who is signed in to the console, and the token their changes must carry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionInfo {
    pub user: Option<String>,
    pub csrf_token: Option<String>,
    /// The registry's address, for pull and login commands.
    pub registry_host: String,
    /// The cluster's API address when the console is in front of one: tokens, access and
    /// webhooks are then the cluster's business, not the console's.
    pub upstream: Option<String>,
}

/// What the caller may do at a place (a namespace or one stream of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Permissions {
    pub pull: bool,
    pub push: bool,
    pub delete: bool,
    pub manage_access: bool,
    /// Registry credentials of the namespace ("pull secrets").
    pub manage_secrets: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSummary {
    pub name: String,
    /// Unknown in front of a cluster (counting would take a call per namespace).
    pub streams: Option<u64>,
    pub size: Option<u64>,
    pub created: String,
    /// Whether the caller may delete it.
    pub can_delete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceList {
    pub namespaces: Vec<NamespaceSummary>,
    pub can_create: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StreamSort {
    #[default]
    Name,
    Updated,
    Size,
}

impl StreamSort {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamSort::Name => "name",
            StreamSort::Updated => "updated",
            StreamSort::Size => "size",
        }
    }

    pub fn parse(text: &str) -> StreamSort {
        match text {
            "updated" => StreamSort::Updated,
            "size" => StreamSort::Size,
            _ => StreamSort::Name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    pub name: String,
    pub tags: u64,
    /// Bytes of the images its tags name; unknown in front of a cluster, whose image streams
    /// do not carry sizes.
    pub size: Option<u64>,
    pub updated: Option<String>,
    pub latest_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPage {
    pub namespace: String,
    pub streams: Vec<StreamSummary>,
    /// Streams matching the filter that the caller may see.
    pub total: u64,
    pub offset: u64,
    pub permissions: Permissions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub tag: String,
    pub image: String,
    pub pull_spec: String,
    pub created: String,
    pub generation: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRow {
    pub name: String,
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub platforms: Vec<String>,
    pub updated: Option<String>,
    /// Where the spec tag points, when there is one (`ImageStreamTag app:v1`).
    pub from: Option<String>,
    /// The reason of a failed import, when the last one failed.
    pub warning: Option<String>,
    /// Newest first.
    pub history: Vec<HistoryItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDetail {
    pub namespace: String,
    pub name: String,
    pub pull_repository: String,
    pub tags: Vec<TagRow>,
    /// Every tag's items, newest first.
    pub history: Vec<HistoryItem>,
    pub permissions: Permissions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformRow {
    pub digest: String,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub size: u64,
    /// An attestation (provenance, SBOM) attached to another child, not a platform.
    pub attestation_for: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRow {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunConfigView {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStep {
    pub created: Option<String>,
    pub created_by: String,
    pub empty_layer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferrerRow {
    pub digest: String,
    pub artifact_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDetail {
    pub namespace: String,
    pub stream: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub created: Option<String>,
    pub author: Option<String>,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    pub platforms: Vec<PlatformRow>,
    pub layers: Vec<LayerRow>,
    pub config: Option<RunConfigView>,
    pub annotations: Vec<(String, String)>,
    pub history: Vec<BuildStep>,
    pub referrers: Vec<ReferrerRow>,
    pub tags: Vec<String>,
    pub pull_repository: String,
    pub raw_manifest: String,
    pub raw_config: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRow {
    pub name: String,
    pub role: String,
    pub subject_kind: String,
    pub subject_name: String,
    pub stream: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoCanRow {
    pub subject: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountRow {
    pub name: String,
    pub tokens: Vec<TokenRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessView {
    pub namespace: String,
    pub stream: Option<String>,
    pub bindings: Vec<BindingRow>,
    pub who_can_pull: Vec<WhoCanRow>,
    pub who_can_push: Vec<WhoCanRow>,
    pub service_accounts: Vec<ServiceAccountRow>,
}

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

/// A namespace's credentials for another registry ("pull secret"), as the console lists it:
/// never the credentials themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullSecretRow {
    pub name: String,
    /// The registries it has credentials for (`quay.io`, `127.0.0.1:5000`).
    pub registries: Vec<String>,
    /// Empty when the source does not say.
    pub created: String,
}

/// A failure the console can show to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    NotFound(String),
    /// Something this console does not do where it runs (access or tokens in front of a
    /// cluster, which manages them itself).
    #[error("{0}")]
    NotHere(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("sign in to do this")]
    SignInRequired,
    #[error("the page is out of date (the CSRF token is missing or wrong); reload it")]
    Csrf,
    /// Refused for now: too many failed sign-ins from here (the throttle), or too many requests.
    #[error("{0}")]
    TooManyRequests(String),
    #[error("the registry could not answer: {0}")]
    Unavailable(String),
    #[error("the request to the server failed: {0}")]
    Request(String),
}

impl FromServerFnError for ConsoleError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ConsoleError::Request(value.to_string())
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

/// The console's source of registry data. Every method decides with the caller of the request
/// being served, as the APIs do.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ConsoleData: Send + Sync + 'static {
    async fn session(&self) -> ConsoleResult<SessionInfo>;
    /// Checks a change's CSRF token against the session.
    async fn check_csrf(&self, token: &str) -> ConsoleResult<()>;

    async fn namespaces(&self) -> ConsoleResult<NamespaceList>;
    async fn create_namespace(&self, name: &str) -> ConsoleResult<()>;
    async fn delete_namespace(&self, name: &str) -> ConsoleResult<()>;

    async fn streams(
        &self,
        namespace: &str,
        filter: &str,
        sort: StreamSort,
        offset: u64,
        limit: u32,
    ) -> ConsoleResult<StreamPage>;
    async fn stream(&self, namespace: &str, stream: &str) -> ConsoleResult<StreamDetail>;
    /// Points `tag` at `from` (`other:tag` or `stream@digest`): `oc tag`, and rollback.
    async fn tag(&self, namespace: &str, stream: &str, tag: &str, from: &str) -> ConsoleResult<()>;
    async fn untag(&self, namespace: &str, stream: &str, tag: &str) -> ConsoleResult<()>;
    async fn delete_stream(&self, namespace: &str, stream: &str) -> ConsoleResult<()>;
    /// `oc import-image`: one tag (or every tag) of another registry's repository into a
    /// stream; one outcome per tag.
    async fn import(&self, request: ImportRequest) -> ConsoleResult<Vec<ImportOutcome>>;

    /// A namespace's webhook subscriptions, each with its newest deliveries.
    async fn webhooks(&self, namespace: &str) -> ConsoleResult<Vec<WebhookRow>>;
    /// Subscribes `url` to `events` (comma-separated; empty for all); answers with the secret
    /// when one was generated (shown once).
    async fn create_webhook(
        &self,
        namespace: &str,
        name: &str,
        url: &str,
        events: &str,
        format: &str,
    ) -> ConsoleResult<Option<String>>;
    async fn delete_webhook(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
    /// Sends a finished delivery (delivered, or failed for good) again, as a new delivery with
    /// the same body; answers with it.
    async fn redeliver_webhook(
        &self,
        namespace: &str,
        name: &str,
        id: &str,
    ) -> ConsoleResult<DeliveryRow>;

    /// A namespace's pull secrets (`kubernetes.io/dockerconfigjson`), without their data.
    async fn pull_secrets(&self, namespace: &str) -> ConsoleResult<Vec<PullSecretRow>>;
    /// Stores a pull secret holding `username` and `password` for the registry at `registry`
    /// (a host with an optional port); answers with its row, without the credentials.
    async fn create_pull_secret(
        &self,
        namespace: &str,
        name: &str,
        registry: &str,
        username: &str,
        password: &str,
    ) -> ConsoleResult<PullSecretRow>;
    async fn delete_pull_secret(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
    async fn image(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<ImageDetail>;

    async fn access(&self, namespace: &str, stream: Option<&str>) -> ConsoleResult<AccessView>;
    async fn add_binding(
        &self,
        namespace: &str,
        stream: Option<&str>,
        role: &str,
        subject_kind: &str,
        subject_name: &str,
    ) -> ConsoleResult<()>;
    async fn remove_binding(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
    async fn create_service_account(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
    async fn create_service_account_token(
        &self,
        namespace: &str,
        account: &str,
    ) -> ConsoleResult<NewToken>;
    async fn revoke_service_account_token(
        &self,
        namespace: &str,
        account: &str,
        uid: &str,
    ) -> ConsoleResult<()>;

    async fn tokens(&self) -> ConsoleResult<Vec<TokenRow>>;
    async fn create_token(
        &self,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> ConsoleResult<NewToken>;
    async fn revoke_token(&self, uid: &str) -> ConsoleResult<()>;
}

#[cfg(feature = "ssr")]
fn console_data() -> ConsoleResult<std::sync::Arc<dyn ConsoleData>> {
    // Only the not-found page renders without a data source (a path the router matches but
    // axum's routes do not, such as one with a trailing slash): it is not found.
    use_context::<std::sync::Arc<dyn ConsoleData>>()
        .ok_or_else(|| ConsoleError::NotFound("no page at this address".into()))
}

/// A change: the CSRF token is checked before anything else.
#[cfg(feature = "ssr")]
async fn changing(csrf: &str) -> ConsoleResult<std::sync::Arc<dyn ConsoleData>> {
    let data = console_data()?;
    data.check_csrf(csrf).await?;
    Ok(data)
}

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
}

/// One tag's import: the image it now names, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    pub tag: String,
    pub digest: Option<String>,
    pub error: Option<String>,
}

/// A webhook subscription and its newest deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub name: String,
    pub url: String,
    /// Empty for every event.
    pub events: Vec<String>,
    pub format: String,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub created: String,
    /// Each attempt: its HTTP status or error.
    pub attempts: Vec<String>,
    /// For a delivery sent again by hand: the id of the one it repeats.
    #[serde(default)]
    pub redelivery_of: Option<String>,
}

/// Streams shown on one page of a namespace.
pub const STREAM_PAGE: u32 = 50;

#[server(prefix = "/console/api", endpoint = "session", input = GetUrl)]
pub async fn current_session() -> ConsoleResult<SessionInfo> {
    console_data()?.session().await
}

#[server(prefix = "/console/api", endpoint = "namespaces", input = GetUrl)]
pub async fn list_namespaces() -> ConsoleResult<NamespaceList> {
    console_data()?.namespaces().await
}

#[server(prefix = "/console/api", endpoint = "create_namespace")]
pub async fn create_namespace(csrf: String, name: String) -> ConsoleResult<()> {
    changing(&csrf).await?.create_namespace(&name).await
}

#[server(prefix = "/console/api", endpoint = "delete_namespace")]
pub async fn delete_namespace(csrf: String, name: String) -> ConsoleResult<()> {
    changing(&csrf).await?.delete_namespace(&name).await
}

#[server(prefix = "/console/api", endpoint = "streams", input = GetUrl)]
pub async fn list_streams(
    namespace: String,
    filter: String,
    sort: String,
    offset: u64,
) -> ConsoleResult<StreamPage> {
    console_data()?
        .streams(
            &namespace,
            &filter,
            StreamSort::parse(&sort),
            offset,
            STREAM_PAGE,
        )
        .await
}

#[server(prefix = "/console/api", endpoint = "stream", input = GetUrl)]
pub async fn get_stream(namespace: String, stream: String) -> ConsoleResult<StreamDetail> {
    console_data()?.stream(&namespace, &stream).await
}

#[server(prefix = "/console/api", endpoint = "tag")]
pub async fn tag_image(
    csrf: String,
    namespace: String,
    stream: String,
    tag: String,
    from: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .tag(&namespace, &stream, &tag, &from)
        .await
}

#[server(prefix = "/console/api", endpoint = "import")]
pub async fn import_images(
    csrf: String,
    request: ImportRequest,
) -> ConsoleResult<Vec<ImportOutcome>> {
    changing(&csrf).await?.import(request).await
}

#[server(prefix = "/console/api", endpoint = "webhooks", input = GetUrl)]
pub async fn list_webhooks(namespace: String) -> ConsoleResult<Vec<WebhookRow>> {
    console_data()?.webhooks(&namespace).await
}

#[server(prefix = "/console/api", endpoint = "create_webhook")]
pub async fn create_webhook(
    csrf: String,
    namespace: String,
    name: String,
    url: String,
    events: String,
    format: String,
) -> ConsoleResult<Option<String>> {
    changing(&csrf)
        .await?
        .create_webhook(&namespace, &name, &url, &events, &format)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_webhook")]
pub async fn delete_webhook(csrf: String, namespace: String, name: String) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_webhook(&namespace, &name)
        .await
}

#[server(prefix = "/console/api", endpoint = "redeliver_webhook")]
pub async fn redeliver_webhook(
    csrf: String,
    namespace: String,
    name: String,
    id: String,
) -> ConsoleResult<DeliveryRow> {
    changing(&csrf)
        .await?
        .redeliver_webhook(&namespace, &name, &id)
        .await
}

#[server(prefix = "/console/api", endpoint = "pull_secrets", input = GetUrl)]
pub async fn list_pull_secrets(namespace: String) -> ConsoleResult<Vec<PullSecretRow>> {
    console_data()?.pull_secrets(&namespace).await
}

#[server(prefix = "/console/api", endpoint = "create_pull_secret")]
pub async fn create_pull_secret(
    csrf: String,
    namespace: String,
    name: String,
    registry: String,
    username: String,
    password: String,
) -> ConsoleResult<PullSecretRow> {
    changing(&csrf)
        .await?
        .create_pull_secret(&namespace, &name, &registry, &username, &password)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_pull_secret")]
pub async fn delete_pull_secret(
    csrf: String,
    namespace: String,
    name: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_pull_secret(&namespace, &name)
        .await
}

#[server(prefix = "/console/api", endpoint = "untag")]
pub async fn untag_image(
    csrf: String,
    namespace: String,
    stream: String,
    tag: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .untag(&namespace, &stream, &tag)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_stream")]
pub async fn delete_stream(csrf: String, namespace: String, stream: String) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_stream(&namespace, &stream)
        .await
}

#[server(prefix = "/console/api", endpoint = "image", input = GetUrl)]
pub async fn get_image(
    namespace: String,
    stream: String,
    digest: String,
) -> ConsoleResult<ImageDetail> {
    console_data()?.image(&namespace, &stream, &digest).await
}

#[server(prefix = "/console/api", endpoint = "access", input = GetUrl)]
pub async fn get_access(namespace: String, stream: Option<String>) -> ConsoleResult<AccessView> {
    console_data()?.access(&namespace, stream.as_deref()).await
}

#[server(prefix = "/console/api", endpoint = "add_binding")]
pub async fn add_binding(
    csrf: String,
    namespace: String,
    stream: Option<String>,
    role: String,
    subject_kind: String,
    subject_name: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .add_binding(
            &namespace,
            stream.as_deref(),
            &role,
            &subject_kind,
            &subject_name,
        )
        .await
}

#[server(prefix = "/console/api", endpoint = "remove_binding")]
pub async fn remove_binding(csrf: String, namespace: String, name: String) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .remove_binding(&namespace, &name)
        .await
}

#[server(prefix = "/console/api", endpoint = "create_service_account")]
pub async fn create_service_account(
    csrf: String,
    namespace: String,
    name: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .create_service_account(&namespace, &name)
        .await
}

#[server(prefix = "/console/api", endpoint = "create_service_account_token")]
pub async fn create_service_account_token(
    csrf: String,
    namespace: String,
    account: String,
) -> ConsoleResult<NewToken> {
    changing(&csrf)
        .await?
        .create_service_account_token(&namespace, &account)
        .await
}

#[server(prefix = "/console/api", endpoint = "revoke_service_account_token")]
pub async fn revoke_service_account_token(
    csrf: String,
    namespace: String,
    account: String,
    uid: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .revoke_service_account_token(&namespace, &account, &uid)
        .await
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
