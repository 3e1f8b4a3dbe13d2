//! The console in front of an OpenShift-compatible cluster: Berth runs no registry or store of
//! its own, people sign in through the cluster's OAuth server, and every page is answered by
//! the cluster's image stream API and registry with the signed-in user's token, so that the
//! cluster's permissions decide what each person sees.
//!
//! - [`UpstreamApi`]: the HTTP client (only the paths the console needs, bounded answers, the
//!   cluster's `Status` errors mapped once to [`UpstreamError`]).
//! - [`sign_in`]: the cluster's OAuth server as the provider of the console's sign-in
//!   (`auth::sign_in`); the token stays in the server-side session.
//! - [`console`]: the console's data interface answered through the cluster.
//! - [`events`]: the console's live feed, from the cluster's watches.
//! - [`layer_cache`]: layers read from the cluster's registry for the file views, bounded.

mod cache;
pub mod console;
pub mod events;
pub mod layer_cache;
pub mod sign_in;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use app::api::ConsoleError;
use axum::http::{Method, StatusCode};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::upstream::UpstreamConfig;
use crate::import::remote::RemoteRegistry;
use crate::kube::Status;

/// Session key of the user's token at the cluster (never sent to the browser).
pub const SESSION_TOKEN: &str = "upstream_token";

/// The whole application in front of `upstream`: the console's pages and server functions,
/// sign-in through the cluster, the live feed from its watches, and the operations
/// endpoints. No registry, API or store of Berth's own; sessions live in memory (a restart
/// asks people to sign in again, and no token is written to disk); the only thing on disk is
/// the bounded cache of layers the file views read (`<data_dir>/upstream-layers`).
pub async fn build_app(
    config: &crate::config::Config,
    upstream: &UpstreamConfig,
    address: std::net::SocketAddr,
) -> anyhow::Result<axum::Router> {
    let egress = crate::egress::EgressPolicy::from_config(&config.egress)?;
    let api = Arc::new(UpstreamApi::new(upstream, &egress)?);
    let console_sign_in = Arc::new(crate::auth::sign_in::SignIn::new(
        sign_in::Cluster::new(api.clone(), upstream.scopes.clone()),
        upstream.client_id.clone(),
        upstream.client_secret.clone(),
        config.base_url(address),
    ));
    let files = Arc::new(
        layer_cache::LayerCache::open(
            &config.data_dir.join(layer_cache::CACHE_DIR),
            upstream.layer_cache_bytes,
            config.layers.clone(),
        )
        .await?,
    );
    let upstream_data = Arc::new(console::UpstreamConsoleData::new(api.clone(), files));
    let data: Arc<dyn app::api::ConsoleData> = upstream_data.clone();
    // One connection: every connection to `:memory:` would be a database of its own.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .context("opening the in-memory session store")?;
    let sessions = crate::console::router::sessions(
        config,
        crate::storage::sessions::ConsoleSessions::Sqlite(
            tower_sessions_sqlx_store::SqliteStore::new(pool),
        ),
    )
    .await?;
    let health = crate::ops::Health {
        parts: api.clone(),
        metrics: crate::ops::metrics_handle(),
    };
    let with_sessions = axum::Router::new()
        .merge(crate::auth::sign_in::router(console_sign_in))
        .route(
            "/console/api/events",
            axum::routing::get(events::feed)
                .with_state(api.clone())
                .layer(axum::Extension(crate::limits::WatchLimits::new(
                    &config.limits,
                ))),
        )
        .route(
            app::api::layers::FILE_DOWNLOAD_PATH,
            axum::routing::get(console::layers::download).with_state(upstream_data),
        )
        .merge(crate::console::router::router(config, data))
        .layer(sessions);
    tracing::info!(api = %api.api_url, registry = %api.registry_address, "serving the console in front of an upstream cluster");
    Ok(crate::ops::served(
        axum::Router::new()
            .merge(crate::ops::router(health))
            .merge(with_sessions),
        config,
        address,
    ))
}

/// Ready when the cluster's API answers (its OAuth metadata, which needs no token).
#[async_trait::async_trait]
impl crate::ops::Readiness for UpstreamApi {
    async fn failures(&self) -> Vec<String> {
        match self.oauth_metadata().await {
            Ok(_) => Vec::new(),
            Err(err) => vec![format!("upstream: {err}")],
        }
    }
}

/// How the upstream answered, as the console needs to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The token is no longer taken (expired, revoked): the session ends.
    #[error("the cluster no longer accepts this session's token; sign in again")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 400, 422: the cluster's message says what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// 409: the name is taken (or the object changed meanwhile), in the cluster's words.
    #[error("{0}")]
    Conflict(String),
    #[error("the cluster could not be reached: {0}")]
    Unreachable(String),
    #[error("the cluster's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the cluster answered {status}: {message}")]
    Failed { status: StatusCode, message: String },
    #[error("the cluster's answer could not be read: {0}")]
    Protocol(String),
}

pub type UpstreamResult<T> = Result<T, UpstreamError>;

/// The one mapping of the cluster's answers to what the console shows.
impl From<UpstreamError> for ConsoleError {
    fn from(err: UpstreamError) -> Self {
        match err {
            UpstreamError::Unauthorized => ConsoleError::SignInRequired,
            UpstreamError::Forbidden(message) => ConsoleError::Forbidden(message),
            UpstreamError::NotFound(message) => ConsoleError::NotFound(message),
            UpstreamError::Invalid(message) => ConsoleError::Invalid(message),
            UpstreamError::Conflict(message) => ConsoleError::AlreadyExists(message),
            other => {
                tracing::warn!(error = %other, "a call to the upstream cluster failed");
                ConsoleError::Unavailable(other.to_string())
            }
        }
    }
}

/// The cluster: where its API and registry are, and one HTTP client for both (its CA trusted,
/// bounded times, no redirects followed on the API), under the egress policy with the API's
/// and the registry's configured origins trusted.
pub struct UpstreamApi {
    api_url: String,
    /// The registry's host and port, and whether it speaks plain HTTP.
    registry_address: String,
    registry_insecure: bool,
    /// The registry's address in pull commands.
    pub registry_host: String,
    http: crate::egress::HttpClient,
    registry_http: crate::egress::HttpClient,
    max_response_bytes: usize,
}

/// A Kubernetes list, as far as the console reads it.
#[derive(Debug, serde::Deserialize)]
struct ObjectList<T> {
    #[serde(default)]
    metadata: crate::kube::ListMeta,
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

/// Some or all of a list.
pub struct Listed<T> {
    pub items: Vec<T>,
    /// How many items the whole list has, when known.
    pub total: Option<u64>,
    /// The list's resourceVersion (its first page's).
    pub version: String,
}

/// One event of a watch.
#[derive(Debug, serde::Deserialize)]
pub struct WatchLine {
    #[serde(rename = "type")]
    pub event_type: String,
    pub object: serde_json::Value,
}

/// How long a watch is asked to last before it is opened again.
pub const WATCH_SECONDS: u64 = 300;

/// Lists are read in pages of this many, and at most this many pages (a namespace of more
/// than 20,000 streams shows its first 20,000).
const LIST_PAGE: usize = 500;
const LIST_PAGES: usize = 40;

impl UpstreamApi {
    pub fn new(
        config: &UpstreamConfig,
        egress: &Arc<crate::egress::EgressPolicy>,
    ) -> anyhow::Result<Self> {
        let mut roots = Vec::new();
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the upstream CA bundle {}", path.display()))?;
            roots = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("reading the upstream CA bundle {}", path.display()))?;
        }
        // The API and the registry are the operator's: trusted at their configured origins.
        // Whatever else they name (a redirect, the OAuth server's token endpoint) goes through
        // the egress policy.
        let client = |redirects: usize| {
            egress
                .client(concat!("berth-console/", env!("CARGO_PKG_VERSION")))
                .trust(&config.api_url)?
                .trust(&config.registry_url)?
                .follow_redirects(redirects)
                .with(|mut builder| {
                    builder = builder
                        .timeout(Duration::from_secs(60))
                        .pool_idle_timeout(Duration::from_secs(90));
                    for root in &roots {
                        builder = builder.add_root_certificate(root.clone());
                    }
                    builder
                })
                .build()
        };
        // Registries send blobs elsewhere (object storage); reqwest drops the token when a
        // redirect leaves the host. The API is never redirected.
        let registry_http = client(5)?;
        let http = client(0)?;
        let registry_url = config.registry_url.trim_end_matches('/');
        let (scheme, registry_address) = registry_url
            .split_once("://")
            .unwrap_or(("https", registry_url));
        Ok(UpstreamApi {
            api_url: config.api_url.trim_end_matches('/').to_owned(),
            registry_address: registry_address.to_owned(),
            registry_insecure: scheme == "http",
            registry_host: config
                .registry_hostname
                .clone()
                .unwrap_or_else(|| registry_address.to_owned()),
            http,
            registry_http,
            max_response_bytes: config.max_response_bytes,
        })
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The API's `/.well-known/oauth-authorization-server` document (it needs no token).
    pub async fn oauth_metadata(&self) -> UpstreamResult<bytes::Bytes> {
        let url = format!("{}/.well-known/oauth-authorization-server", self.api_url);
        let response = self.http.get(&url).send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(UpstreamError::Failed {
                status: response.status(),
                message: url,
            });
        }
        self.read(response).await
    }

    /// `GET path` as the token's owner.
    pub async fn get<T: DeserializeOwned>(&self, token: &str, path: &str) -> UpstreamResult<T> {
        self.call(token, Method::GET, path, None::<&()>).await
    }

    /// `method path` with a JSON body, as the token's owner.
    pub async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> UpstreamResult<T> {
        let response = self.send(token, method, path, body).await?;
        let bytes = self.read(response).await?;
        serde_json::from_slice(&bytes).map_err(|err| UpstreamError::Protocol(err.to_string()))
    }

    /// The first `wanted` items of a list in its own order (name; `usize::MAX` for all of
    /// it), read page by page with `limit` and `continue` in as few pages as that takes, how many items the whole list has when the cluster says
    /// (`remainingItemCount`, or a list that ended), and the list's resourceVersion.
    pub async fn list_first<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        wanted: usize,
    ) -> UpstreamResult<Listed<T>> {
        let mut listed = Listed {
            items: Vec::new(),
            total: None,
            version: String::new(),
        };
        let mut next = String::new();
        for _ in 0..LIST_PAGES {
            let limit = wanted
                .saturating_sub(listed.items.len())
                .clamp(1, LIST_PAGE);
            let separator = if path.contains('?') { '&' } else { '?' };
            let mut url = format!("{path}{separator}limit={limit}");
            if !next.is_empty() {
                url.push('&');
                url.push_str(
                    &serde_urlencoded::to_string([("continue", &next)]).unwrap_or_default(),
                );
            }
            let page: ObjectList<T> = self.get(token, &url).await?;
            if listed.version.is_empty() {
                listed.version = page.metadata.resource_version;
            }
            listed.items.extend(page.items);
            next = page.metadata.continue_token;
            if next.is_empty() {
                listed.total = Some(listed.items.len() as u64);
                break;
            }
            if listed.items.len() >= wanted {
                listed.total = page
                    .metadata
                    .remaining_item_count
                    .map(|remaining| listed.items.len() as u64 + remaining);
                break;
            }
        }
        Ok(listed)
    }

    /// A request's response once it succeeded; the cluster's refusals as errors.
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> UpstreamResult<reqwest::Response> {
        self.send_within(token, method, path, body, None).await
    }

    /// [`Self::send`], with a time limit of its own instead of the client's.
    async fn send_within<B: Serialize + ?Sized>(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> UpstreamResult<reqwest::Response> {
        debug_assert!(path.starts_with('/'));
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api_url))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(unreachable)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let message = self
            .read(response)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Status>(&bytes).ok())
            .map(|status| status.message)
            .filter(|message| !message.is_empty())
            .unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("no reason given")
                    .to_owned()
            });
        Err(match status {
            StatusCode::UNAUTHORIZED => UpstreamError::Unauthorized,
            StatusCode::FORBIDDEN => UpstreamError::Forbidden(message),
            StatusCode::NOT_FOUND | StatusCode::GONE => UpstreamError::NotFound(message),
            StatusCode::CONFLICT => UpstreamError::Conflict(message),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                UpstreamError::Invalid(message)
            }
            status => UpstreamError::Failed { status, message },
        })
    }

    /// A watch (`?watch=true`): its events as they come, one JSON object each; the stream
    /// ends when the cluster ends the watch. A line longer than the bound ends it too.
    pub async fn watch(
        &self,
        token: &str,
        path: &str,
    ) -> UpstreamResult<impl futures_util::Stream<Item = UpstreamResult<WatchLine>> + Send + use<>>
    {
        // A watch lasts as long as the cluster keeps it (asked for with timeoutSeconds).
        let timeout = Duration::from_secs(WATCH_SECONDS + 30);
        let response = self
            .send_within(token, Method::GET, path, None::<&()>, Some(timeout))
            .await?;
        let limit = self.max_response_bytes;
        let lines = futures_util::stream::unfold(
            (
                response.bytes_stream().boxed(),
                bytes::BytesMut::new(),
                false,
            ),
            move |(mut body, mut buffer, mut ended)| async move {
                loop {
                    if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                        let line = buffer.split_to(end + 1);
                        let text = &line[..end];
                        if text.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        let parsed = serde_json::from_slice::<WatchLine>(text)
                            .map_err(|err| UpstreamError::Protocol(err.to_string()));
                        return Some((parsed, (body, buffer, ended)));
                    }
                    if ended {
                        return None;
                    }
                    let failure = match body.next().await {
                        Some(Ok(chunk)) if buffer.len() + chunk.len() <= limit => {
                            buffer.extend_from_slice(&chunk);
                            continue;
                        }
                        Some(Ok(_)) => UpstreamError::TooLarge(limit),
                        Some(Err(err)) => {
                            unreachable(crate::egress::OutboundError::from_reqwest(err))
                        }
                        None => {
                            // A last line without its newline still counts.
                            buffer.extend_from_slice(b"\n");
                            ended = true;
                            continue;
                        }
                    };
                    return Some((Err(failure), (body, bytes::BytesMut::new(), true)));
                }
            },
        );
        Ok(lines)
    }

    /// A response's body, up to the configured bound.
    pub async fn read(&self, response: reqwest::Response) -> UpstreamResult<bytes::Bytes> {
        crate::egress::read_bounded(response, self.max_response_bytes)
            .await
            .map_err(unreachable)
    }

    /// The cluster's registry as the token's owner: the token as bearer credentials, and when
    /// the registry answers with a challenge, a Docker client's login with the token as the
    /// password (`podman login -u any -p $(oc whoami -t)`). Made per request, so nothing of one
    /// user's reaches another's.
    pub fn registry(&self, token: &str) -> RemoteRegistry {
        RemoteRegistry::new(
            self.registry_http.clone(),
            &self.registry_address,
            self.registry_insecure,
            Some(("berth-console".to_owned(), token.to_owned())),
        )
        .with_bearer(token)
    }
}

/// A call that got no answer, was refused by the egress policy, or whose answer was too large.
fn unreachable(err: crate::egress::OutboundError) -> UpstreamError {
    match err {
        crate::egress::OutboundError::TooLarge(limit) => UpstreamError::TooLarge(limit),
        other => UpstreamError::Unreachable(other.to_string()),
    }
}

/// One path segment of a call, encoded: a name from a page can never reach another path of
/// the cluster (`..`, `/` and `?` are sent as data).
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
