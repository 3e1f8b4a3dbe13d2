//! The console's data interface answered by the cluster: each page section is one call (or
//! one list, read in pages) to the cluster's API or registry with the signed-in user's token,
//! made concurrently. The only thing kept between requests is a session's own copy of a
//! namespace's stream list (`super::cache`), so nothing of one user's can reach another's,
//! and layers' bytes (`super::layer_cache`), shown only after the registry let the requester
//! read the manifest that lists them.
//! The views are built by the same functions as in-process (`crate::console::views`).
//!
//! One file per resource implements its part; here the calls they all make (the session's
//! token, a 401 ending the session, lists read in pages) and what several of them read.

mod access;
mod diff;
mod images;
mod imports;
pub mod layers;
mod lifecycle;
mod namespaces;
mod pull_secrets;
mod quotas;
mod reviews;
mod session;
mod signatures;
mod streams;
mod tokens;
mod users;
mod webhooks;

use std::sync::Arc;

use app::api::{ConsoleError, ConsoleResult};
use axum::http::Method;

use super::cache::StreamListCache;
use super::layer_cache::LayerCache;
use super::{SESSION_TOKEN, UpstreamApi, UpstreamError, segment as path_part};
use crate::console::session::{session, session_value};
use crate::imagestream::model::ImageStream;

const IMAGE: &str = "/apis/image.openshift.io/v1";

/// Said of what the cluster manages itself in this mode.
const MANAGED_BY_CLUSTER: &str = "This console is in front of a cluster, which manages access, tokens and webhooks itself (oc adm policy, oc whoami -t); the console shows and changes image streams and pull secrets.";

/// The console's data source in front of a cluster.
pub struct UpstreamConsoleData {
    pub api: Arc<UpstreamApi>,
    /// Namespaces' stream lists as each session last read them.
    lists: StreamListCache,
    /// Layers' bytes and file indexes, shown only to whom the registry lets pull them.
    pub files: Arc<LayerCache>,
}

impl UpstreamConsoleData {
    pub fn new(api: Arc<UpstreamApi>, files: Arc<LayerCache>) -> Self {
        UpstreamConsoleData {
            api,
            lists: StreamListCache::default(),
            files,
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

/// The signed-in user's token at the cluster, from the session of the request.
struct Signed {
    session: tower_sessions::Session,
    token: String,
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

    async fn stream_object(
        &self,
        signed: &Signed,
        namespace: &str,
        stream: &str,
    ) -> ConsoleResult<ImageStream> {
        self.get(signed, &image_path(namespace, "imagestreams", Some(stream)))
            .await
    }
}
