//! Image streams: the registry's content as OpenShift's `image.openshift.io/v1` resources, at
//! OpenShift's paths (namespaces under `/api/v1`, everything else under
//! `/apis/image.openshift.io/v1`). Namespaces hold image streams; repository `ns/stream` is
//! stream `stream` in namespace `ns`. Lists take `limit` and `continue`.
//!
//! This file holds [`ImageStreamApi`] (the service every surface calls: the HTTP API, the
//! console, imports, webhooks, secrets), what all its resources share, and the [`router`].
//! One file per resource, each with its rules and its HTTP handlers: `namespaces.rs` (and
//! `projects.rs`, namespaces as `oc` reads them),
//! `streams.rs`, `tags.rs` (ImageStreamTags), `images.rs` (Images and ImageStreamImages),
//! `mappings.rs` (ImageStreamMappings). Shared by them: `names.rs` (how `ns/stream`,
//! `stream:tag` and `stream@digest` parse), `spec_tags.rs` (a spec tag's checks, defaults and
//! where its `from` points), `changes.rs` (writes to a stream and their refusals), `render.rs`
//! (a stream as an `ImageStream`, with its pull specs), `watch.rs` (watches of namespaces and
//! streams, and the console's feed of their changes). `model.rs` holds the resource shapes;
//! what is read of an image at push time is the registry's
//! ([`crate::registry::image_metadata`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{any, get, post};

use crate::auth::{Action, AuthContext, Subject, Target};
use crate::kube::{ApiError, ApiResult, ContinueTokens, Resource, method_not_allowed, not_found};
use crate::storage::ImageStreamStore;

mod changes;
mod images;
mod mappings;
pub mod model;
pub mod names;
mod namespaces;
mod projects;
mod render;
pub mod spec_tags;
mod streams;
mod tags;
pub mod watch;

/// The image stream API's service: its rules over the [`ImageStreamStore`], behind the HTTP
/// handlers and every other surface that reads or writes streams.
pub struct ImageStreamApi {
    pub store: Arc<dyn ImageStreamStore>,
    /// Identity and access: the decision function, and what a namespace creator is granted.
    pub auth: Arc<AuthContext>,
    /// The registry's address in pull specs (`status.dockerImageRepository`).
    pub registry_host: String,
    /// The address outside the cluster, when different (`publicDockerImageRepository`).
    pub public_host: Option<String>,
    /// Seals and opens lists' `continue` tokens.
    pub continue_tokens: ContinueTokens,
    /// Open watches and event streams, and how long each runs.
    pub watches: std::sync::Arc<crate::limits::WatchLimits>,
}

/// What every handler of the API extracts.
type Api = State<Arc<ImageStreamApi>>;

impl ImageStreamApi {
    /// Records a deletion in the audit log.
    async fn audit(&self, who: &Subject, action: &'static str, target: &str) {
        self.auth
            .audit(crate::storage::auth::NewAudit {
                actor: who.display_name(),
                action,
                target: target.to_owned(),
                success: true,
                address: None,
                detail: None,
            })
            .await;
    }

    /// The permission a patch needs: an update's, named `patch` when refused.
    fn require_patch(
        &self,
        who: &Subject,
        namespace: &str,
        stream: &str,
        resource: Resource,
        name: &str,
    ) -> ApiResult<()> {
        if self
            .auth
            .authorizer
            .allows(who, Action::Push, Target::stream(namespace, stream))
        {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                &who.display_name(),
                "patch",
                resource,
                name,
                Some(namespace),
            ))
        }
    }

    /// A list's resourceVersion: the event log's newest entry.
    async fn list_version(&self) -> ApiResult<String> {
        Ok(self.store.latest_event_id().await?.to_string())
    }

    /// The `continue` of a page of `list` for `who` that ended with the item keyed `last`, when
    /// more may follow.
    fn next_token(&self, more: bool, list: &str, who: &Subject, last: Option<&str>) -> String {
        match last {
            Some(last) if more => self.continue_tokens.seal(list, &who.key(), last),
            _ => String::new(),
        }
    }
}

/// Every route of the image stream API; other paths under its prefixes are `NotFound` in
/// Kubernetes' words, and a known path's other methods `MethodNotAllowed`.
pub fn router(api: Arc<ImageStreamApi>) -> Router {
    const IMAGE: &str = "/apis/image.openshift.io/v1";
    Router::new()
        .route(
            "/api/v1/namespaces",
            get(namespaces::list_namespaces).post(namespaces::create_namespace),
        )
        .route(
            "/api/v1/namespaces/{namespace}",
            get(namespaces::get_namespace).delete(namespaces::delete_namespace),
        )
        .route(
            "/apis/project.openshift.io/v1/projects",
            get(projects::list_projects),
        )
        .route(
            "/apis/project.openshift.io/v1/projects/{name}",
            get(projects::get_project),
        )
        .route(
            &format!("{IMAGE}/imagestreams"),
            get(streams::list_all_streams),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreams"),
            get(streams::list_streams).post(streams::create_stream),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreams/{{name}}"),
            get(streams::get_stream)
                .put(streams::update_stream)
                .patch(streams::patch_stream)
                .delete(streams::delete_stream),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreamtags"),
            get(tags::list_tags).post(tags::create_tag),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreamtags/{{name}}"),
            get(tags::get_tag)
                .put(tags::put_tag)
                .patch(tags::patch_tag)
                .delete(tags::delete_tag),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreamimages/{{name}}"),
            get(images::get_stream_image),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreammappings"),
            post(mappings::create_mapping),
        )
        .route(&format!("{IMAGE}/images"), get(images::list_images))
        .route(&format!("{IMAGE}/images/{{name}}"), get(images::get_image))
        .route(&format!("{IMAGE}/{{*rest}}"), any(not_found))
        .route("/api/v1/{*rest}", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
}
