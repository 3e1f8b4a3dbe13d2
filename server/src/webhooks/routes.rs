//! `GET/POST /apis/berth.io/v1/namespaces/{ns}/webhooks`,
//! `GET/DELETE /apis/berth.io/v1/namespaces/{ns}/webhooks/{name}`,
//! `GET /apis/berth.io/v1/namespaces/{ns}/webhooks/{name}/deliveries?limit=N`,
//! `POST /apis/berth.io/v1/namespaces/{ns}/webhooks/{name}/deliveries/{id}/redeliver`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{DEFAULT_DELIVERIES, Webhook, WebhookDelivery, Webhooks};
use crate::auth::http::Caller;
use crate::kube::ApiJson;
use crate::kube::{ApiResult, parse_query};
use crate::kube::{List, Status};

type Api = State<Arc<Webhooks>>;

async fn list(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<List<Webhook>>> {
    api.list(&caller.subject, &namespace).await.map(Json)
}

async fn create(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<Webhook>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    let created = api.create(&caller.subject, &namespace, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_one(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Webhook>> {
    api.get(&caller.subject, &namespace, &name).await.map(Json)
}

async fn delete(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Status>> {
    api.delete(&caller.subject, &namespace, &name)
        .await
        .map(Json)
}

#[derive(Debug, Default, Deserialize)]
struct DeliveriesQuery {
    limit: Option<u32>,
}

async fn deliveries(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<List<WebhookDelivery>>> {
    let query: DeliveriesQuery = parse_query(query.as_deref())?;
    let limit = query.limit.unwrap_or(DEFAULT_DELIVERIES);
    api.deliveries(&caller.subject, &namespace, &name, limit)
        .await
        .map(Json)
}

/// Sends a finished delivery again; answers 201 with the new delivery.
async fn redeliver(
    State(api): Api,
    caller: Caller,
    Path((namespace, name, id)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<WebhookDelivery>)> {
    let made = api
        .redeliver(&caller.subject, &namespace, &name, &id)
        .await?;
    Ok((StatusCode::CREATED, Json(made)))
}

pub fn router(webhooks: Arc<Webhooks>) -> Router {
    Router::new()
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks",
            get(list).post(create),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks/{name}",
            get(get_one).delete(delete),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks/{name}/deliveries",
            get(deliveries),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks/{name}/deliveries/{id}/redeliver",
            post(redeliver),
        )
        .with_state(webhooks)
}
