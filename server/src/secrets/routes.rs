//! `GET/POST /api/v1/namespaces/{ns}/secrets`, `GET/DELETE /api/v1/namespaces/{ns}/secrets/{name}`:
//! the HTTP surface of [`RegistrySecrets`], answered as every Kubernetes-style API answers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;

use super::api::RegistrySecrets;
use crate::auth::http::Caller;
use crate::kube::{ApiJson, Secret, created, ok};

type Secrets = State<Arc<RegistrySecrets>>;

async fn list_secrets(
    State(secrets): Secrets,
    caller: Caller,
    Path(namespace): Path<String>,
) -> Response {
    ok(secrets.list(&caller.subject, &namespace).await)
}

async fn create_secret(
    State(secrets): Secrets,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<Secret>,
) -> Response {
    created(secrets.create(&caller.subject, &namespace, body).await)
}

async fn get_secret(
    State(secrets): Secrets,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(secrets.get(&caller.subject, &namespace, &name).await)
}

async fn delete_secret(
    State(secrets): Secrets,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(secrets.delete(&caller.subject, &namespace, &name).await)
}

/// The routes above, over the one service.
pub fn router(secrets: Arc<RegistrySecrets>) -> Router {
    Router::new()
        .route(
            "/api/v1/namespaces/{namespace}/secrets",
            get(list_secrets).post(create_secret),
        )
        .route(
            "/api/v1/namespaces/{namespace}/secrets/{name}",
            get(get_secret).delete(delete_secret),
        )
        .with_state(secrets)
}
