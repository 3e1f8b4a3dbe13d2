//! The console's data interface answered by the cluster: each page section is one call (or
//! one list, read in pages) to the cluster's API or registry with the signed-in user's token,
//! made concurrently. The only thing kept between requests is a session's own copy of a
//! namespace's stream list (`super::cache`), so nothing of one user's can reach another's.
//! The views are built by the same functions as in-process (`crate::console::views`).

use std::sync::Arc;

use app::api::access::{AccessData, AccessView};
use app::api::images::{ImageData, ImageDetail, ReferrerRow};
use app::api::imports::{ImportData, ImportOutcome, ImportRequest};
use app::api::namespaces::{NamespaceData, NamespaceList, NamespaceSummary};
use app::api::pull_secrets::{PullSecretData, PullSecretRow};
use app::api::session::{SessionData, SessionInfo};
use app::api::streams::{StreamData, StreamDetail, StreamPage, StreamSort, StreamSummary};
use app::api::tokens::{NewToken, TokenData, TokenRow};
use app::api::webhooks::{DeliveryRow, WebhookData, WebhookRow};
use app::api::{ConsoleError, ConsoleResult, Permissions};
use async_trait::async_trait;
use axum::http::Method;
use serde::Deserialize;

use super::cache::StreamListCache;
use super::{SESSION_TOKEN, UpstreamApi, UpstreamError, segment as path_part};
use crate::auth::reviews::{
    AccessReviewSpec, AccessReviewStatus, ResourceAttributes, ResourceRule, RulesReviewSpec,
    RulesReviewStatus,
};
use crate::console::forms::{
    import_body, import_outcomes, namespace_body, pin_to_image, tag_body, tag_source,
};
use crate::console::session::{check_session_csrf, session, session_value, signed_in_user};
use crate::console::views::{
    ImageParts, Images, image_detail, pretty_json, pull_secret_row, stream_detail, time,
};
use crate::imagestream::model::{Image, ImageStream, ImageStreamTag};
use crate::import::remote::{
    ReferrerDescriptor, RemoteError, RemoteManifest, RemoteReference, RemoteResult,
};
use crate::kube::{Namespace, Secret};
use crate::oci::Digest;
use crate::registry::image_metadata::{ImageMetadata, MAX_CONFIG_BYTES};
use crate::secrets::object::{DOCKER_CONFIG_JSON, pull_secret};

const IMAGE: &str = "/apis/image.openshift.io/v1";
const REVIEWS: &str = "/apis/authorization.k8s.io/v1";

/// Said of what the cluster manages itself in this mode.
const MANAGED_BY_CLUSTER: &str = "This console is in front of a cluster, which manages access, tokens and webhooks itself (oc adm policy, oc whoami -t); the console shows and changes image streams and pull secrets.";

pub struct UpstreamConsoleData {
    pub api: Arc<UpstreamApi>,
    /// Namespaces' stream lists as each session last read them.
    lists: StreamListCache,
}

impl UpstreamConsoleData {
    pub fn new(api: Arc<UpstreamApi>) -> Self {
        UpstreamConsoleData {
            api,
            lists: StreamListCache::default(),
        }
    }
}

/// A resource of the image API in `namespace`, or one of them by name.
fn image_path(namespace: &str, resource: &str, name: Option<&str>) -> String {
    let mut path = format!("{IMAGE}/namespaces/{}/{resource}", path_part(namespace));
    if let Some(name) = name {
        path.push('/');
        path.push_str(&path_part(name));
    }
    path
}

/// A namespace's secrets in the cluster's core API.
fn secrets_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{}/secrets", path_part(namespace))
}

/// The signed-in user's token at the cluster, from the session of the request.
struct Signed {
    session: tower_sessions::Session,
    token: String,
}

#[derive(Debug, Deserialize)]
struct StreamImage {
    image: Image,
}

/// A review's answer, as far as the console reads it.
#[derive(Debug, Deserialize)]
struct Review<T> {
    #[serde(default)]
    status: T,
}

/// What the rules allow, in OpenShift's terms: pull is `get imagestreams/layers`, push is
/// `update imagestreams/layers` (as its registry checks), delete is `delete imagestreams`,
/// pull secrets are `create secrets`. Access is managed in the cluster, not here.
fn permissions_from(rules: &[ResourceRule], stream: Option<&str>) -> Permissions {
    let allows = |verb: &str, group: &str, resource: &str, name: Option<&str>| {
        rules
            .iter()
            .any(|rule| rule.allows(verb, group, resource, name))
    };
    let image = "image.openshift.io";
    Permissions {
        pull: allows("get", image, "imagestreams/layers", stream),
        push: allows("update", image, "imagestreams/layers", stream),
        delete: allows("delete", image, "imagestreams", stream),
        manage_access: false,
        manage_secrets: allows("create", "", "secrets", None),
    }
}

/// A stream's row in its namespace's list, from its status.
fn stream_summary(stream: &ImageStream) -> StreamSummary {
    let newest = stream
        .status
        .tags
        .iter()
        .filter_map(|tag| tag.items.first().map(|item| (item.created, &tag.tag)))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
    StreamSummary {
        name: stream.metadata.name.clone(),
        tags: stream.status.tags.len() as u64,
        size: None,
        updated: newest.map(|(at, _)| time(at)),
        latest_tag: newest.map(|(_, tag)| tag.clone()),
    }
}

/// What is read of an image as the cluster describes it (the inverse of what Berth's API
/// renders from what it read at push time).
fn image_metadata(image: &Image) -> ImageMetadata {
    use crate::registry::image_metadata::{ChildManifest, HistoryEntry, Layer, RunConfig};
    let docker = image.docker_image_metadata.clone().unwrap_or_default();
    let some = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let mut annotations = image.metadata.annotations.clone();
    annotations.remove(crate::imagestream::model::LAYERS_ORDER_ANNOTATION);
    ImageMetadata {
        config: some(&docker.id).filter(|id| *id != image.metadata.name),
        config_media_type: None,
        layers: image
            .docker_image_layers
            .iter()
            .map(|layer| Layer {
                digest: layer.name.clone(),
                media_type: layer.media_type.clone(),
                size: layer.size,
            })
            .collect(),
        size: docker.size,
        os: some(&docker.os),
        architecture: some(&docker.architecture),
        variant: some(&docker.variant),
        created: some(&docker.created),
        author: some(&docker.author),
        run: docker.config.map(|config| RunConfig {
            user: some(&config.user),
            exposed_ports: Some(config.exposed_ports).filter(|p| !p.is_empty()),
            env: Some(config.env).filter(|e| !e.is_empty()),
            entrypoint: Some(config.entrypoint).filter(|e| !e.is_empty()),
            cmd: Some(config.cmd).filter(|c| !c.is_empty()),
            volumes: Some(config.volumes).filter(|v| !v.is_empty()),
            working_dir: some(&config.working_dir),
            labels: Some(config.labels).filter(|l| !l.is_empty()),
            stop_signal: some(&config.stop_signal),
        }),
        annotations,
        history: docker
            .history
            .iter()
            .map(|h| HistoryEntry {
                created: some(&h.created),
                created_by: some(&h.created_by),
                author: some(&h.author),
                comment: some(&h.comment),
                empty_layer: h.empty_layer,
            })
            .collect(),
        manifests: image
            .docker_image_manifests
            .iter()
            .map(|m| ChildManifest {
                digest: m.digest.clone(),
                media_type: m.media_type.clone(),
                size: m.manifest_size,
                os: some(&m.os),
                architecture: some(&m.architecture),
                variant: some(&m.variant),
                annotations: Default::default(),
            })
            .collect(),
        artifact_type: None,
    }
}

impl UpstreamConsoleData {
    /// The session's token; without one the caller must sign in.
    async fn signed(&self) -> ConsoleResult<Signed> {
        let session = session().ok_or(ConsoleError::SignInRequired)?;
        let token = session_value(&session, SESSION_TOKEN)
            .await?
            .ok_or(ConsoleError::SignInRequired)?;
        Ok(Signed { session, token })
    }

    /// The cluster's answer; a token it no longer takes ends the session here too, so the
    /// next page asks for a new sign-in instead of failing again.
    async fn answer<T>(
        &self,
        signed: &Signed,
        result: Result<T, UpstreamError>,
    ) -> ConsoleResult<T> {
        if let Err(UpstreamError::Unauthorized) = &result
            && let Err(err) = signed.session.flush().await
        {
            tracing::error!(%err, "ending a session the cluster refused failed");
        }
        result.map_err(ConsoleError::from)
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        signed: &Signed,
        path: &str,
    ) -> ConsoleResult<T> {
        self.answer(signed, self.api.get(&signed.token, path).await)
            .await
    }

    async fn call<T: serde::de::DeserializeOwned, B: serde::Serialize + ?Sized>(
        &self,
        signed: &Signed,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> ConsoleResult<T> {
        self.answer(
            signed,
            self.api.call(&signed.token, method, path, body).await,
        )
        .await
    }

    /// Deletes what `path` names, as the signed-in user.
    async fn delete(&self, path: &str) -> ConsoleResult<()> {
        let signed = self.signed().await?;
        let _: serde_json::Value = self
            .call(&signed, Method::DELETE, path, None::<&()>)
            .await?;
        Ok(())
    }

    /// The first `wanted` items of a list (see [`UpstreamApi::list_first`]).
    async fn list_first<T: serde::de::DeserializeOwned>(
        &self,
        signed: &Signed,
        path: &str,
        wanted: usize,
    ) -> ConsoleResult<super::Listed<T>> {
        self.answer(
            signed,
            self.api.list_first(&signed.token, path, wanted).await,
        )
        .await
    }

    /// Every item of a list.
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        signed: &Signed,
        path: &str,
    ) -> ConsoleResult<Vec<T>> {
        Ok(self.list_first(signed, path, usize::MAX).await?.items)
    }

    /// Every stream of a namespace as rows: this session's copy while the cluster's list is
    /// still at its version (one call with `limit=1` says), else the whole list.
    async fn all_streams(
        &self,
        signed: &Signed,
        namespace: &str,
        path: &str,
    ) -> ConsoleResult<Arc<Vec<StreamSummary>>> {
        let session_id = signed.session.id().map(|id| id.to_string());
        if let Some(id) = &session_id
            && self.lists.has(id, namespace)
        {
            let probe = self
                .list_first::<serde_json::Value>(signed, path, 1)
                .await?;
            if let Some(rows) = self.lists.get(id, namespace, &probe.version) {
                return Ok(rows);
            }
        }
        let listed = self
            .list_first::<ImageStream>(signed, path, usize::MAX)
            .await?;
        let rows = Arc::new(listed.items.iter().map(stream_summary).collect::<Vec<_>>());
        if let Some(id) = &session_id {
            self.lists.put(id, namespace, listed.version, rows.clone());
        }
        Ok(rows)
    }

    /// One `SelfSubjectRulesReview`: what the user may do in `namespace`.
    async fn rules(&self, signed: &Signed, namespace: &str) -> ConsoleResult<Vec<ResourceRule>> {
        let body = serde_json::json!({
            "kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": RulesReviewSpec {
                namespace: namespace.to_owned(),
            },
        });
        let review: Review<RulesReviewStatus> = self
            .call(
                signed,
                Method::POST,
                &format!("{REVIEWS}/selfsubjectrulesreviews"),
                Some(&body),
            )
            .await?;
        Ok(review.status.resource_rules)
    }

    /// One `SelfSubjectAccessReview` for a cluster-wide question.
    async fn may(&self, signed: &Signed, verb: &str, resource: &str) -> ConsoleResult<bool> {
        let body = serde_json::json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": AccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: verb.to_owned(),
                    resource: resource.to_owned(),
                    ..ResourceAttributes::default()
                }),
                non_resource_attributes: None,
            },
        });
        let review: Review<AccessReviewStatus> = self
            .call(
                signed,
                Method::POST,
                &format!("{REVIEWS}/selfsubjectaccessreviews"),
                Some(&body),
            )
            .await?;
        Ok(review.status.allowed)
    }

    async fn stream_object(
        &self,
        signed: &Signed,
        namespace: &str,
        stream: &str,
    ) -> ConsoleResult<ImageStream> {
        self.get(signed, &image_path(namespace, "imagestreams", Some(stream)))
            .await
    }

    /// What the cluster's registry answered for an image's page; a registry that cannot answer
    /// leaves the metadata page standing, saying why.
    async fn registry_views(
        &self,
        signed: &Signed,
        manifest: RemoteResult<RemoteManifest>,
        config: Option<RemoteResult<bytes::Bytes>>,
        referrers: RemoteResult<Vec<ReferrerDescriptor>>,
    ) -> ConsoleResult<(String, Option<String>, Vec<ReferrerRow>)> {
        if let Err(RemoteError::Unauthorized(_)) = &manifest {
            return self.answer(signed, Err(UpstreamError::Unauthorized)).await;
        }
        let raw_manifest = match manifest {
            Ok(manifest) => pretty_json(&manifest.content)
                .unwrap_or_else(|| String::from_utf8_lossy(&manifest.content).into_owned()),
            Err(err) => format!("(the cluster's registry could not be read: {err})"),
        };
        let raw_config = config
            .and_then(Result::ok)
            .and_then(|bytes| pretty_json(&bytes));
        let referrers = referrers
            .unwrap_or_default()
            .into_iter()
            .map(|r| ReferrerRow {
                artifact_type: r.artifact_type.unwrap_or(r.media_type),
                digest: r.digest,
                size: r.size,
            })
            .collect();
        Ok((raw_manifest, raw_config, referrers))
    }
}

#[async_trait]
impl SessionData for UpstreamConsoleData {
    async fn session(&self) -> ConsoleResult<SessionInfo> {
        let (user, csrf_token) = signed_in_user().await?;
        Ok(SessionInfo {
            user,
            csrf_token,
            registry_host: self.api.registry_host.clone(),
            upstream: Some(self.api.api_url().to_owned()),
        })
    }

    async fn check_csrf(&self, token: &str) -> ConsoleResult<()> {
        let signed = self.signed().await?;
        check_session_csrf(&signed.session, token).await
    }
}

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
}

#[async_trait]
impl StreamData for UpstreamConsoleData {
    async fn streams(
        &self,
        namespace: &str,
        filter: &str,
        sort: StreamSort,
        offset: u64,
        limit: u32,
    ) -> ConsoleResult<StreamPage> {
        let signed = self.signed().await?;
        let path = image_path(namespace, "imagestreams", None);
        let filter = filter.trim();
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        // The cluster's streams carry no sizes: by size is by name, the list's own order.
        let by_name = sort != StreamSort::Updated;
        let list = async {
            // By name and unfiltered, a page is the list's first items: read only those.
            if by_name && filter.is_empty() {
                let wanted = skip.saturating_add(limit as usize);
                let listed = self
                    .list_first::<ImageStream>(&signed, &path, wanted)
                    .await?;
                if let Some(total) = listed.total {
                    let rows = listed.items.iter().map(stream_summary).collect();
                    return Ok((Arc::new(rows), Some(total)));
                }
            }
            // Otherwise the API neither filters nor sorts: every stream is read, or this
            // session's copy reused while the cluster says the list has not changed.
            Ok::<_, ConsoleError>((self.all_streams(&signed, namespace, &path).await?, None))
        };
        let ((rows, known_total), rules) = tokio::try_join!(list, self.rules(&signed, namespace))?;
        let mut summaries: Vec<StreamSummary> = rows
            .iter()
            .filter(|s| filter.is_empty() || s.name.contains(filter))
            .cloned()
            .collect();
        if by_name {
            summaries.sort_by(|a, b| a.name.cmp(&b.name));
        } else {
            summaries.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.name.cmp(&b.name)));
        }
        let total = known_total.unwrap_or(summaries.len() as u64);
        let page = summaries
            .into_iter()
            .skip(skip)
            .take(limit as usize)
            .collect();
        Ok(StreamPage {
            namespace: namespace.to_owned(),
            streams: page,
            total,
            offset,
            permissions: permissions_from(&rules, None),
        })
    }

    async fn stream(&self, namespace: &str, stream: &str) -> ConsoleResult<StreamDetail> {
        let signed = self.signed().await?;
        let (object, rules) = tokio::try_join!(
            self.stream_object(&signed, namespace, stream),
            self.rules(&signed, namespace)
        )?;
        Ok(stream_detail(
            namespace,
            stream,
            &object,
            &Images::default(),
            permissions_from(&rules, Some(stream)),
        ))
    }

    async fn tag(&self, namespace: &str, stream: &str, tag: &str, from: &str) -> ConsoleResult<()> {
        let signed = self.signed().await?;
        let mut source = tag_source(stream, from).map_err(ConsoleError::from)?;
        if source.kind == "ImageStreamTag" {
            let current: ImageStreamTag = self
                .get(
                    &signed,
                    &image_path(namespace, "imagestreamtags", Some(&source.name)),
                )
                .await?;
            source = pin_to_image(stream, source, current.image)?;
        }
        let name = format!("{stream}:{}", tag.trim());
        let _: ImageStreamTag = self
            .call(
                &signed,
                Method::PUT,
                &image_path(namespace, "imagestreamtags", Some(&name)),
                Some(&tag_body(source)),
            )
            .await?;
        Ok(())
    }

    async fn untag(&self, namespace: &str, stream: &str, tag: &str) -> ConsoleResult<()> {
        let name = format!("{stream}:{tag}");
        self.delete(&image_path(namespace, "imagestreamtags", Some(&name)))
            .await
    }

    async fn delete_stream(&self, namespace: &str, stream: &str) -> ConsoleResult<()> {
        self.delete(&image_path(namespace, "imagestreams", Some(stream)))
            .await
    }
}

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

#[async_trait]
impl ImageData for UpstreamConsoleData {
    async fn image(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<ImageDetail> {
        let signed = self.signed().await?;
        let parsed: Digest = digest
            .parse()
            .map_err(|_| ConsoleError::NotFound(format!("{digest:?} is not an image digest")))?;
        let image_path = image_path(
            namespace,
            "imagestreamimages",
            Some(&format!("{stream}@{digest}")),
        );
        let repository = format!("{namespace}/{stream}");
        let reference =
            RemoteReference::parse(&format!("{}/{repository}@{digest}", self.api.registry_host))
                .map_err(|err| ConsoleError::Invalid(err.to_string()))?;
        let registry = self.api.registry(&signed.token);
        // The registry decides with the same token as the API, so every section is asked at
        // once; only the config waits, for the image's word on which blob it is.
        let image_and_config = async {
            let found = self.get::<StreamImage>(&signed, &image_path).await?;
            let image = image_metadata(&found.image);
            let config = match image
                .config
                .as_deref()
                .and_then(|c| c.parse::<Digest>().ok())
            {
                Some(config) => Some(
                    registry
                        .blob_bytes(&repository, &config, MAX_CONFIG_BYTES as usize)
                        .await,
                ),
                None => None,
            };
            Ok::<_, ConsoleError>((found, image, config))
        };
        let (image_and_config, object, manifest, referrers) = tokio::join!(
            image_and_config,
            self.stream_object(&signed, namespace, stream),
            registry.manifest(&reference),
            registry.referrers(&repository, &parsed),
        );
        let ((found, image, config), object) = (image_and_config?, object?);
        let (raw_manifest, raw_config, referrers) = self
            .registry_views(&signed, manifest, config, referrers)
            .await?;
        Ok(image_detail(ImageParts {
            namespace,
            stream,
            digest,
            media_type: found.image.docker_image_manifest_media_type.clone(),
            image: &image,
            images: &Images::default(),
            object: &object,
            referrers,
            raw_manifest,
            raw_config,
        }))
    }
}

#[async_trait]
impl WebhookData for UpstreamConsoleData {
    async fn webhooks(&self, _namespace: &str) -> ConsoleResult<Vec<WebhookRow>> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn create_webhook(
        &self,
        _namespace: &str,
        _name: &str,
        _url: &str,
        _events: &str,
        _format: &str,
    ) -> ConsoleResult<Option<String>> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn delete_webhook(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn redeliver_webhook(
        &self,
        _namespace: &str,
        _name: &str,
        _id: &str,
    ) -> ConsoleResult<DeliveryRow> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }
}

#[async_trait]
impl PullSecretData for UpstreamConsoleData {
    async fn pull_secrets(&self, namespace: &str) -> ConsoleResult<Vec<PullSecretRow>> {
        let signed = self.signed().await?;
        // A cluster holds secrets of every type (service account tokens, TLS keys): it is
        // asked for pull secrets only, and what it answers is filtered again here.
        let path = format!(
            "{}?fieldSelector={}",
            secrets_path(namespace),
            path_part(&format!("type={DOCKER_CONFIG_JSON}"))
        );
        let secrets = self.list::<Secret>(&signed, &path).await?;
        let mut rows: Vec<PullSecretRow> = secrets
            .iter()
            .filter(|secret| secret.secret_type == DOCKER_CONFIG_JSON)
            .map(pull_secret_row)
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    async fn create_pull_secret(
        &self,
        namespace: &str,
        name: &str,
        registry: &str,
        username: &str,
        password: &str,
    ) -> ConsoleResult<PullSecretRow> {
        let signed = self.signed().await?;
        let secret = pull_secret(name, registry, username, password)?;
        let stored: Secret = self
            .call(
                &signed,
                Method::POST,
                &secrets_path(namespace),
                Some(&secret),
            )
            .await?;
        Ok(pull_secret_row(&stored))
    }

    async fn delete_pull_secret(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        self.delete(&format!("{}/{}", secrets_path(namespace), path_part(name)))
            .await
    }
}

#[async_trait]
impl AccessData for UpstreamConsoleData {
    async fn access(&self, _namespace: &str, _stream: Option<&str>) -> ConsoleResult<AccessView> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn add_binding(
        &self,
        _namespace: &str,
        _stream: Option<&str>,
        _role: &str,
        _subject_kind: &str,
        _subject_name: &str,
    ) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn remove_binding(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn create_service_account(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn create_service_account_token(
        &self,
        _namespace: &str,
        _account: &str,
    ) -> ConsoleResult<NewToken> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn revoke_service_account_token(
        &self,
        _namespace: &str,
        _account: &str,
        _uid: &str,
    ) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }
}

#[async_trait]
impl TokenData for UpstreamConsoleData {
    async fn tokens(&self) -> ConsoleResult<Vec<TokenRow>> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn create_token(
        &self,
        _name: &str,
        _expires_in_days: Option<u32>,
    ) -> ConsoleResult<NewToken> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn revoke_token(&self, _uid: &str) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], resources: &[&str], names: &[&str]) -> ResourceRule {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        ResourceRule {
            verbs: owned(verbs),
            api_groups: vec!["image.openshift.io".into()],
            resources: owned(resources),
            resource_names: owned(names),
        }
    }

    #[test]
    fn permissions_read_openshift_rules() {
        let viewer = [rule(
            &["get", "list", "watch"],
            &["imagestreams", "imagestreams/layers"],
            &[],
        )];
        assert_eq!(
            permissions_from(&viewer, Some("app")),
            Permissions {
                pull: true,
                ..Permissions::default()
            }
        );
        let editor_of_app = [
            viewer[0].clone(),
            rule(&["update"], &["imagestreams/layers"], &["app"]),
        ];
        assert!(permissions_from(&editor_of_app, Some("app")).push);
        assert!(!permissions_from(&editor_of_app, Some("other")).push);
        assert!(!permissions_from(&editor_of_app, None).push);
        let everything = [rule(&["*"], &["*"], &[])];
        let all = permissions_from(&everything, None);
        assert!(all.pull && all.push && all.delete);
        // Access is the cluster's business in this mode.
        assert!(!all.manage_access);
    }

    #[test]
    fn a_stream_row_is_read_from_its_status() {
        let stream: ImageStream = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "app"},
            "status": {"dockerImageRepository": "r/ns/app", "tags": [
                {"tag": "v1", "items": [{"created": "2026-11-01T00:00:00Z", "dockerImageReference": "r/ns/app@sha256:a", "image": "sha256:a", "generation": 1}]},
                {"tag": "v2", "items": [{"created": "2026-11-02T00:00:00Z", "dockerImageReference": "r/ns/app@sha256:b", "image": "sha256:b", "generation": 1}]}
            ]}
        }))
        .expect("an image stream as the API renders it");
        let row = stream_summary(&stream);
        assert_eq!(row.tags, 2);
        assert_eq!(row.latest_tag.as_deref(), Some("v2"));
        assert_eq!(row.updated.as_deref(), Some("2026-11-02T00:00:00Z"));
        assert_eq!(row.size, None);
    }
}
