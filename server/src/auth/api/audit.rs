//! The audit log (`GET /apis/access.berth.io/v1/auditevents`), for cluster administrators.

use crate::kube::AUDIT_EVENTS;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Access, list, require_cluster_admin};
use crate::auth::http::Caller;
use crate::kube::{ApiError, ApiQuery};

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

pub(super) async fn audit_events(
    State(api): Access,
    caller: Caller,
    ApiQuery(params): ApiQuery<AuditQuery>,
) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, AUDIT_EVENTS)?;
        Ok::<_, ApiError>(
            api.auth
                .store
                .list_audit(params.before, params.limit.unwrap_or(100).min(1000))
                .await?,
        )
    };
    match result.await {
        Ok(entries) => list("AuditEventList", "access.berth.io/v1", entries),
        Err(err) => err.into_response(),
    }
}
