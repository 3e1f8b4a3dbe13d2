//! A client of another registry: manifests, blobs and tags over the Distribution API, with
//! Basic credentials or the bearer-token flow (Docker Hub, Quay, distribution, Harbor, Berth).
//! Every request goes through the egress policy ([`crate::egress`]); every answer Berth reads
//! whole is read up to a bound, and every request has a deadline.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use reqwest::Url;

use crate::egress::{EgressPolicy, HttpClient, Outbound, OutboundError, read_bounded};
use crate::oci;
use crate::oci::Digest;
use crate::oci::MAX_NAME_LEN;

/// What an import accepts: images and indexes, OCI and Docker schema 2.
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// Largest manifest read from another registry (as for a push), and largest referrers index.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest page of a tag list.
const MAX_TAG_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Largest answer of a token service (tokens are a few KiB).
const MAX_TOKEN_BYTES: usize = 1024 * 1024;
/// How much of an error's body is read for its message.
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// The deadline of one request for metadata (a manifest, a tag list page, a token, the
/// referrers), its body included: a slow registry fails the import instead of holding it.
const METADATA_DEADLINE: Duration = Duration::from_secs(60);
/// The deadline of one blob fetch, its body included.
const BLOB_DEADLINE: Duration = Duration::from_secs(60 * 60);
/// How long a response may go without a byte before it is given up (a stalled transfer).
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed (a registry sends blobs to a CDN or object storage).
const MAX_REDIRECTS: usize = 5;
/// Docker Hub's registry answers at this host, whatever name people give it.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Why talking to another registry failed, in the words of an import condition.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum RemoteError {
    #[error("{0}")]
    InvalidReference(String),
    #[error("not authorized: {0}")]
    Unauthorized(String),
    #[error("{0} was not found")]
    NotFound(String),
    #[error("the registry could not be reached: {0}")]
    Unreachable(String),
    #[error("the registry answered something Berth cannot use: {0}")]
    Protocol(String),
    /// A plain-HTTP registry reached as `https` (rustls says only "corrupt message of type
    /// InvalidContentType").
    #[error(
        "the registry answered in plain HTTP, not HTTPS: if it has no TLS, import again with \
         \"Plain HTTP (insecure registry)\" ticked (importPolicy.insecure: true)"
    )]
    PlainHttp,
    /// The egress policy refused a destination (the message names the address and the
    /// setting that would allow it).
    #[error("{0}")]
    Refused(String),
}

impl RemoteError {
    /// The `reason` of a failed import's condition, as OpenShift words them.
    pub fn reason(&self) -> &'static str {
        match self {
            RemoteError::InvalidReference(_) => "Invalid",
            RemoteError::Unauthorized(_) => "Unauthorized",
            RemoteError::NotFound(_) => "NotFound",
            RemoteError::Unreachable(_) => "InternalError",
            RemoteError::Protocol(_) | RemoteError::PlainHttp => "InternalError",
            RemoteError::Refused(_) => "Forbidden",
        }
    }
}

pub type RemoteResult<T> = Result<T, RemoteError>;

/// `registry/repository:tag` or `registry/repository@digest`, as `oc import-image` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReference {
    /// `host[:port]` as written (`docker.io` for Docker Hub).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl RemoteReference {
    /// Reads a pull spec: a first component with a dot or a port (or `localhost`) names the
    /// registry, else it is Docker Hub, where one-part names live under `library/`.
    pub fn parse(spec: &str) -> RemoteResult<Self> {
        let invalid = |why: &str| RemoteError::InvalidReference(format!("{spec:?}: {why}"));
        let spec = spec.trim();
        let (rest, digest) = match spec.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(
                    digest
                        .parse::<Digest>()
                        .map_err(|err| invalid(&err.to_string()))?,
                ),
            ),
            None => (spec, None),
        };
        let (rest, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag.to_owned())),
            _ => (rest, None),
        };
        let (registry, repository) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            _ => ("docker.io".to_owned(), rest.to_owned()),
        };
        let repository = if is_docker_hub(&registry) && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        // The same grammars as the registry's own names: no `..` or empty component, no
        // empty tag, and a host that cannot carry a URL's `#`, `?` or `@` into the requests.
        if !oci::is_valid_registry_host(&registry) {
            return Err(invalid(
                "a registry is a host name or [IPv6 address] with an optional :port",
            ));
        }
        if repository.is_empty()
            || repository.len() > MAX_NAME_LEN
            || !repository.split('/').all(oci::is_valid_component)
        {
            return Err(invalid(
                "a repository is '/'-separated parts of lowercase letters and digits, joined inside a part by '.', '_', '__' or '-'",
            ));
        }
        if let Some(tag) = &tag
            && tag.parse::<oci::Tag>().is_err()
        {
            return Err(invalid(
                "a tag is 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
            ));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        Ok(RemoteReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The same repository at another tag.
    pub fn with_tag(&self, tag: &str) -> Self {
        RemoteReference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository at a digest.
    pub fn with_digest(&self, digest: &Digest) -> Self {
        RemoteReference {
            tag: None,
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }

    /// What the manifest URL names: the digest when there is one, else the tag.
    fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The repository's pull spec, without tag or digest.
    pub fn repository_spec(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl std::fmt::Display for RemoteReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The HTTP client imports share, under the egress policy: bounded connect times and stalls
/// (each request also has a deadline of its own), redirects followed and checked (blobs often
/// live on a CDN; reqwest drops credentials on a redirect to another host or port).
pub fn http_client(policy: &std::sync::Arc<EgressPolicy>) -> anyhow::Result<HttpClient> {
    policy
        .client(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .follow_redirects(MAX_REDIRECTS)
        .with(|builder| builder.read_timeout(STALL_TIMEOUT))
        .build()
}

/// Whether `host` is Docker Hub under one of its names.
pub fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// A manifest as the remote registry serves it, its digest checked. What kind it is, the
/// registry's own parse says (`content::parse`, as for a push).
#[derive(Debug, Clone)]
pub struct RemoteManifest {
    pub digest: Digest,
    /// The response's `Content-Type`, without parameters.
    pub content_type: Option<String>,
    pub content: Bytes,
}

/// One artifact of a referrers index.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerDescriptor {
    pub digest: String,
    pub media_type: String,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub size: u64,
}

/// How to speak to one registry: its address, scheme and credentials, and how it last asked
/// to be authenticated (as a Docker client does, the first request goes without credentials
/// and the 401's challenge says Basic or a bearer token).
pub struct RemoteRegistry {
    http: HttpClient,
    base: String,
    credentials: Option<(String, String)>,
    auth: Mutex<Auth>,
}

#[derive(Debug, Clone)]
enum Auth {
    Anonymous,
    Basic,
    /// A token from the challenge's realm, reused until refused.
    Bearer(String),
}

/// A bearer challenge: where to ask for a token, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    realm: Option<String>,
    service: Option<String>,
    scope: Option<String>,
}

impl RemoteRegistry {
    /// `insecure` allows plain HTTP, for a registry the import marks so; otherwise HTTPS.
    pub fn new(
        http: HttpClient,
        registry: &str,
        insecure: bool,
        credentials: Option<(String, String)>,
    ) -> Self {
        let host = if is_docker_hub(registry) {
            DOCKER_HUB_API
        } else {
            registry
        };
        let scheme = if insecure { "http" } else { "https" };
        RemoteRegistry {
            http,
            base: format!("{scheme}://{host}"),
            credentials,
            auth: Mutex::new(Auth::Anonymous),
        }
    }

    /// Sends `token` from the first request on (a cluster's registry takes its users' tokens
    /// as bearer credentials, as OpenShift's does); a 401's challenge is still answered.
    pub fn with_bearer(self, token: &str) -> Self {
        self.set_auth(Auth::Bearer(token.to_owned()));
        self
    }

    /// The manifest `reference` names, with its digest verified against the content (and
    /// against the digest asked for, when one was).
    pub async fn manifest(&self, reference: &RemoteReference) -> RemoteResult<RemoteManifest> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base,
            reference.repository,
            reference.reference()
        );
        let (headers, content) = self
            .get_small(
                &reference.repository,
                &url,
                Some(ACCEPT_MANIFESTS),
                &format!("the manifest of {reference}"),
                MAX_MANIFEST_BYTES,
            )
            .await?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let advertised = headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let expected = reference.digest.clone().or(advertised);
        let digest = match &expected {
            Some(expected) => {
                let actual = Digest::of(expected.algorithm(), &content);
                if &actual != expected {
                    return Err(RemoteError::Protocol(format!(
                        "the manifest of {reference} has digest {actual}, not {expected}"
                    )));
                }
                actual
            }
            None => Digest::sha256_of(&content),
        };
        Ok(RemoteManifest {
            digest,
            content_type,
            content,
        })
    }

    /// A blob, as a response whose body streams it (callers check the digest as they read).
    /// The body must arrive within the blob deadline, and never stall for long.
    pub async fn blob(&self, repository: &str, digest: &Digest) -> RemoteResult<reqwest::Response> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self
            .send(repository, |http| http.get(&url).timeout(BLOB_DEADLINE))
            .await?;
        self.expect_success(response, &format!("blob {digest} of {repository}"))
            .await
    }

    /// A small blob (a config), read up to `limit` bytes and checked against its digest.
    pub async fn blob_bytes(
        &self,
        repository: &str,
        digest: &Digest,
        limit: usize,
    ) -> RemoteResult<Bytes> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let (_, content) = self
            .get_small(
                repository,
                &url,
                None,
                &format!("blob {digest} of {repository}"),
                limit,
            )
            .await?;
        if Digest::of(digest.algorithm(), &content) != *digest {
            return Err(RemoteError::Protocol(format!(
                "blob {digest} of {repository} does not match its digest"
            )));
        }
        Ok(content)
    }

    /// The artifacts that refer to `digest` (the referrers API's index, its first page).
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> RemoteResult<Vec<ReferrerDescriptor>> {
        #[derive(serde::Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<ReferrerDescriptor>,
        }
        let url = format!("{}/v2/{repository}/referrers/{digest}", self.base);
        let (_, content) = self
            .get_small(
                repository,
                &url,
                None,
                &format!("the referrers of {digest}"),
                MAX_MANIFEST_BYTES,
            )
            .await?;
        let index: Index = serde_json::from_slice(&content)
            .map_err(|err| RemoteError::Protocol(format!("the referrers of {digest}: {err}")))?;
        Ok(index.manifests)
    }

    /// Every tag of `repository`, following the registry's pages (on the registry's own
    /// address only: the requests carry its credentials).
    pub async fn tags(&self, repository: &str) -> RemoteResult<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut next = Some(format!("{}/v2/{repository}/tags/list?n=1000", self.base));
        // A bound on pages, so a registry that links in circles cannot hold an import forever.
        for _ in 0..1000 {
            let Some(url) = next.take() else { break };
            let (headers, content) = self
                .get_small(
                    repository,
                    &url,
                    None,
                    &format!("the tags of {repository}"),
                    MAX_TAG_PAGE_BYTES,
                )
                .await?;
            next = next_page(&self.base, &headers)?;
            let page: TagList = serde_json::from_slice(&content)
                .map_err(|err| RemoteError::Protocol(format!("the tag list: {err}")))?;
            tags.extend(page.tags.unwrap_or_default());
        }
        Ok(tags)
    }

    /// `GET url` for metadata (`what`): within the metadata deadline, a success, its body read
    /// up to `limit` bytes as it arrives; with the response's headers.
    async fn get_small(
        &self,
        repository: &str,
        url: &str,
        accept: Option<&str>,
        what: &str,
        limit: usize,
    ) -> RemoteResult<(HeaderMap, Bytes)> {
        let response = self
            .send(repository, |http| {
                let request = http.get(url).timeout(METADATA_DEADLINE);
                match accept {
                    Some(accept) => request.header(header::ACCEPT, accept),
                    None => request,
                }
            })
            .await?;
        let response = self.expect_success(response, what).await?;
        let headers = response.headers().clone();
        let content = read_bounded(response, limit)
            .await
            .map_err(|err| outbound(err, what))?;
        Ok((headers, content))
    }

    /// Sends a request built by `build`; on a 401 from the registry itself, answers the
    /// challenge (Basic, or a bearer token for `repository`'s pull scope) and sends it once
    /// more.
    async fn send(
        &self,
        repository: &str,
        build: impl Fn(&HttpClient) -> Outbound,
    ) -> RemoteResult<reqwest::Response> {
        let first = self
            .authorize(build(&self.http))
            .send()
            .await
            .map_err(|err| outbound(err, "the answer"))?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        // A challenge from another host (a redirect's target) is not the registry's: its realm
        // would be sent the registry's credentials.
        if !self.is_registry(first.url()) {
            return Ok(first);
        }
        let challenge = first
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let Some(challenge) = challenge else {
            return Ok(first);
        };
        if challenge.scheme.eq_ignore_ascii_case("bearer") {
            let token = self.bearer_token(&challenge, repository).await?;
            self.set_auth(Auth::Bearer(token));
        } else if self.credentials.is_some() && challenge.scheme.eq_ignore_ascii_case("basic") {
            self.set_auth(Auth::Basic);
        } else {
            return Ok(first);
        }
        self.authorize(build(&self.http))
            .send()
            .await
            .map_err(|err| outbound(err, "the answer"))
    }

    /// Whether `url` is on the registry's own origin.
    fn is_registry(&self, url: &Url) -> bool {
        Url::parse(&self.base).is_ok_and(|base| base.origin() == url.origin())
    }

    fn authorize(&self, request: Outbound) -> Outbound {
        let auth = self
            .auth
            .lock()
            .map(|auth| auth.clone())
            .unwrap_or(Auth::Anonymous);
        match (auth, &self.credentials) {
            (Auth::Bearer(token), _) => request.bearer_auth(token),
            (Auth::Basic, Some((user, password))) => request.basic_auth(user, Some(password)),
            _ => request,
        }
    }

    fn set_auth(&self, auth: Auth) {
        if let Ok(mut slot) = self.auth.lock() {
            *slot = auth;
        }
    }

    /// Asks the challenge's realm for a token to pull `repository`, with the credentials when
    /// there are some (anonymous otherwise, as Docker Hub allows for public images). The realm
    /// must be the registry's own host or site, or one the operator lists, and never plain
    /// http for an https registry.
    async fn bearer_token(&self, challenge: &Challenge, repository: &str) -> RemoteResult<String> {
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let realm = challenge.realm.as_deref().ok_or_else(|| {
            RemoteError::Protocol("a bearer challenge without a realm".to_owned())
        })?;
        let realm_url = Url::parse(realm).map_err(|err| {
            RemoteError::Protocol(format!("the token realm {realm:?} is not a URL: {err}"))
        })?;
        let base = Url::parse(&self.base)
            .map_err(|err| RemoteError::InvalidReference(format!("{}: {err}", self.base)))?;
        self.http
            .policy()
            .check_realm(&base, &realm_url)
            .map_err(|refused| RemoteError::Refused(refused.to_string()))?;
        let scope = challenge
            .scope
            .clone()
            .unwrap_or_else(|| format!("repository:{repository}:pull"));
        let mut query = vec![("scope", scope)];
        if let Some(service) = &challenge.service {
            query.push(("service", service.clone()));
        }
        let mut request = self
            .http
            .get(realm_url)
            .query(&query)
            .timeout(METADATA_DEADLINE);
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .await
            .map_err(|err| outbound(err, "the token response"))?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(RemoteError::Unauthorized(format!(
                    "the token service at {realm} refused {}",
                    if self.credentials.is_some() {
                        "the credentials"
                    } else {
                        "anonymous access (add a pull secret for this registry)"
                    }
                )));
            }
            status => {
                return Err(RemoteError::Protocol(format!(
                    "the token service at {realm} answered {status}"
                )));
            }
        }
        let content = read_bounded(response, MAX_TOKEN_BYTES)
            .await
            .map_err(|err| outbound(err, "the token response"))?;
        let body: TokenResponse = serde_json::from_slice(&content)
            .map_err(|err| RemoteError::Protocol(format!("the token response: {err}")))?;
        body.token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RemoteError::Protocol(format!("no token from {realm}")))
    }

    /// A success, or the error it means (with the message of the error's body, read up to a
    /// bound).
    async fn expect_success(
        &self,
        response: reqwest::Response,
        what: &str,
    ) -> RemoteResult<reqwest::Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let detail = read_bounded(response, MAX_ERROR_BYTES)
            .await
            .ok()
            .and_then(|body| registry_error_message(&body))
            .map(|message| format!(" ({message})"))
            .unwrap_or_default();
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RemoteError::Unauthorized(format!(
                "{what}: {status}{detail}{}",
                if self.credentials.is_none() {
                    "; add a pull secret for this registry"
                } else {
                    ""
                }
            )),
            StatusCode::NOT_FOUND => RemoteError::NotFound(format!("{what}{detail}")),
            _ => RemoteError::Protocol(format!("{what}: {status}{detail}")),
        })
    }
}

/// An outbound failure in an import's words: `what` names the answer that was too large.
fn outbound(err: OutboundError, what: &str) -> RemoteError {
    match err {
        OutboundError::Refused(refused) => RemoteError::Refused(refused.to_string()),
        OutboundError::TooLarge(limit) => {
            RemoteError::Protocol(format!("{what} is larger than {limit} bytes"))
        }
        other if other.is_plain_http_answer() => RemoteError::PlainHttp,
        other => RemoteError::Unreachable(other.to_string()),
    }
}

/// The first message of a Distribution error body.
fn registry_error_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    let first = errors.errors.into_iter().next()?;
    match (first.code, first.message) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (code, message) => code.or(message),
    }
}

/// The next page from a `Link: <...>; rel="next"` header, made absolute against `base`. A page
/// on another origin is refused: the request would carry the registry's credentials there.
fn next_page(base: &str, headers: &HeaderMap) -> RemoteResult<Option<String>> {
    let Some(link) = headers.get(header::LINK).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let target = link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
            return None;
        }
        Some(
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned(),
        )
    });
    let Some(target) = target else {
        return Ok(None);
    };
    let base_url =
        Url::parse(base).map_err(|err| RemoteError::InvalidReference(format!("{base}: {err}")))?;
    let next = base_url
        .join(&target)
        .map_err(|err| RemoteError::Protocol(format!("the next page {target:?}: {err}")))?;
    if next.origin() != base_url.origin() {
        return Err(RemoteError::Protocol(format!(
            "the next page of the tag list is on another host ({next})"
        )));
    }
    Ok(Some(next.to_string()))
}

/// `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    let mut challenge = Challenge {
        scheme: scheme.to_owned(),
        realm: None,
        service: None,
        scope: None,
    };
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match key.to_ascii_lowercase().as_str() {
            "realm" => challenge.realm = Some(value.to_owned()),
            "service" => challenge.service = Some(value.to_owned()),
            "scope" => challenge.scope = Some(value.to_owned()),
            _ => {}
        }
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_as_oc_import_image_reads_them() {
        let busybox = RemoteReference::parse("busybox").expect("busybox");
        assert_eq!(busybox.registry, "docker.io");
        assert_eq!(busybox.repository, "library/busybox");
        assert_eq!(busybox.tag.as_deref(), Some("latest"));
        let quay = RemoteReference::parse("quay.io/team/app:v1.2").expect("quay");
        assert_eq!(
            (quay.registry.as_str(), quay.repository.as_str()),
            ("quay.io", "team/app")
        );
        assert_eq!(quay.tag.as_deref(), Some("v1.2"));
        let local = RemoteReference::parse("127.0.0.1:5001/a/b/c").expect("port");
        assert_eq!(local.registry, "127.0.0.1:5001");
        assert_eq!(local.repository, "a/b/c");
        assert_eq!(local.tag.as_deref(), Some("latest"));
        let digest = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        let pinned = RemoteReference::parse(&format!("localhost/x@{digest}")).expect("digest");
        assert_eq!(pinned.tag, None);
        assert_eq!(pinned.reference(), digest);
        assert_eq!(pinned.to_string(), format!("localhost/x@{digest}"));
        assert_eq!(
            RemoteReference::parse("docker.io/nginx")
                .expect("hub")
                .repository,
            "library/nginx"
        );
        // The last ones were accepted before the property tests compared the parser with the
        // reference grammar: `..` components, an empty tag, a host that is not a host.
        for bad in [
            "",
            "Upper/case",
            "a//b",
            "x:bad tag",
            "x@sha256:short",
            "quay.io/a/../b",
            "quay.io/..",
            "x:",
            "evil.example#frag/x",
            "evil.example?q=1/x",
            "h:port/x",
            "a..b.example/x",
        ] {
            assert!(RemoteReference::parse(bad).is_err(), "{bad}");
        }
        let v6 = RemoteReference::parse("[::1]:5000/a/b:v1").expect("IPv6 registry");
        assert_eq!(
            (v6.registry.as_str(), v6.repository.as_str()),
            ("[::1]:5000", "a/b")
        );
    }

    #[test]
    fn references_cannot_walk_out_of_the_repository_path() {
        for tricky in [
            "127.0.0.1:5000/evil/../victim/app:v1",
            "127.0.0.1:5000/../v2/_catalog",
            "127.0.0.1:5000/a/./b",
            "127.0.0.1:5000/a/..",
            "quay.io/./x",
            "registry.example.com/a/b%2f..%2fc",
            "registry.example.com/a?x=1",
            "registry.example.com/a#frag",
            "registry.example.com/-a",
            "registry.example.com/a-",
            "registry.example.com/a...b",
            "evil.example@169.254.169.254/x",
            "user:pw@registry.example.com/x",
            "reg.example.com:99999/x",
            "reg.example.com:/x",
            "-reg.example.com/x",
            "reg_istry.example.com/x",
            "[::1/x",
        ] {
            assert!(RemoteReference::parse(tricky).is_err(), "{tricky}");
        }
        let long = format!("quay.io/{}", "a".repeat(MAX_NAME_LEN + 1));
        assert!(RemoteReference::parse(&long).is_err());
        for fine in [
            "quay.io/a.b/c_d/e__f/g--h:v1",
            "localhost:5000/x",
            "docker.io/library/a-b",
        ] {
            assert!(RemoteReference::parse(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn challenges_parse_with_quotes_and_commas() {
        let challenge = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .expect("bearer");
        assert_eq!(challenge.scheme, "Bearer");
        assert_eq!(
            challenge.realm.as_deref(),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(challenge.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            challenge.scope.as_deref(),
            Some("repository:library/busybox:pull,push")
        );
        let basic = parse_challenge(r#"Basic realm="Registry Realm""#).expect("basic");
        assert_eq!(basic.scheme, "Basic");
        assert_eq!(basic.realm.as_deref(), Some("Registry Realm"));
    }

    #[test]
    fn pages_follow_link_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LINK,
            "</v2/a/tags/list?last=x&n=2>; rel=\"next\""
                .parse()
                .expect("header"),
        );
        assert_eq!(
            next_page("http://r", &headers),
            Ok(Some("http://r/v2/a/tags/list?last=x&n=2".to_owned()))
        );
        assert_eq!(next_page("http://r", &HeaderMap::new()), Ok(None));
        // The credentials go with every page: never to another host, port or scheme.
        for elsewhere in [
            "<http://169.254.169.254/latest>; rel=\"next\"",
            "<//evil.example/v2/a/tags/list>; rel=\"next\"",
            "<http://r:8080/v2/a/tags/list>; rel=\"next\"",
            "<https://r/v2/a/tags/list>; rel=\"next\"",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::LINK, elsewhere.parse().expect("header"));
            assert!(
                matches!(
                    next_page("http://r", &headers),
                    Err(RemoteError::Protocol(_))
                ),
                "{elsewhere}"
            );
        }
    }

    #[test]
    fn registry_errors_keep_their_code_and_message() {
        assert_eq!(
            registry_error_message(
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
            )
            .as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(registry_error_message(b"not json"), None);
    }
}

/// Properties over generated pull specs: no text panics the parser, what it accepts follows the
/// reference grammar (host, path components, tag), and an accepted reference prints as a spec
/// that reads back the same.
#[cfg(test)]
mod properties {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    const COMPONENT: &str = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
    static PATH: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^{COMPONENT}(?:/{COMPONENT})*$")).unwrap());
    /// distribution's `domain`: dot-separated labels or a bracketed IPv6 address, and a port.
    static HOST: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            "^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\\[[a-fA-F0-9:.]+\\])(?::[0-9]+)?$",
        )
        .unwrap()
    });
    static TAG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").unwrap());

    fn check(spec: &str) -> Result<(), TestCaseError> {
        let Ok(reference) = RemoteReference::parse(spec) else {
            return Ok(());
        };
        prop_assert!(
            HOST.is_match(&reference.registry),
            "{:?}: registry {:?}",
            spec,
            reference.registry
        );
        prop_assert!(
            PATH.is_match(&reference.repository),
            "{:?}: repository {:?}",
            spec,
            reference.repository
        );
        if let Some(tag) = &reference.tag {
            prop_assert!(TAG.is_match(tag), "{:?}: tag {:?}", spec, tag);
        }
        prop_assert!(reference.tag.is_some() || reference.digest.is_some());
        let printed = reference.to_string();
        prop_assert_eq!(
            RemoteReference::parse(&printed),
            Ok(reference),
            "{:?} printed as {:?}",
            spec,
            printed
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn any_spec(spec in any::<String>()) {
            check(&spec)?;
        }

        #[test]
        fn specs_near_the_grammar(
            parts in proptest::collection::vec(
                prop_oneof![
                    "[a-z0-9]{1,6}",
                    prop::sample::select(vec![
                        "..", ".", "localhost", "a.b", "h:5000", "[::1]:5000", "A", "a#b", "a?b",
                        "x_y", "x__y", "x--y", "x...y", "-x", "",
                    ])
                    .prop_map(str::to_owned),
                ],
                1..5,
            ),
            tag in proptest::option::of(prop_oneof!["[a-zA-Z0-9_.-]{0,8}", Just(String::new())]),
            digest in proptest::option::of("[a-f0-9]{64}"),
        ) {
            let mut spec = parts.join("/");
            if let Some(tag) = tag {
                spec.push(':');
                spec.push_str(&tag);
            }
            if let Some(hex) = digest {
                spec.push_str(&format!("@sha256:{hex}"));
            }
            check(&spec)?;
        }

        #[test]
        fn specs_of_the_grammar_are_read(
            host in "[a-z0-9]{1,8}\\.[a-z]{2,4}(:[1-9][0-9]{0,3})?",
            path in proptest::collection::vec(COMPONENT, 1..4),
            tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}",
        ) {
            let path = path.join("/");
            let spec = format!("{host}/{path}:{tag}");
            let reference = RemoteReference::parse(&spec);
            // The grammar's names are at most 255 characters long.
            if path.len() > MAX_NAME_LEN {
                prop_assert!(reference.is_err(), "{:?} is too long", spec);
                return Ok(());
            }
            prop_assert!(reference.is_ok(), "{:?}: {:?}", spec, reference);
            let reference = reference.unwrap();
            prop_assert_eq!((reference.registry, reference.repository, reference.tag), (host, path, Some(tag)));
        }
    }
}
