//! External identities (`/apis/user.openshift.io/v1/identities`), for cluster administrators: a
//! provider's subject linked to a user.

use crate::kube::IDENTITIES;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::bindings::RoleRef;
use super::{Access, list, require_cluster_admin};
use crate::auth::http::Caller;
use crate::kube::{ApiError, ApiJson, FieldError, created};
use crate::storage::auth::{IdentityRecord, LinkOutcome};

fn identity_object(record: &IdentityRecord) -> serde_json::Value {
    serde_json::json!({
        "kind": "Identity",
        "apiVersion": "user.openshift.io/v1",
        "metadata": {
            "name": format!("{}:{}", record.provider, record.subject),
            "creationTimestamp": record.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "providerName": record.provider,
        "providerUserName": record.subject,
        "user": {"name": record.user},
    })
}

/// `GET /apis/user.openshift.io/v1/identities`: every external identity and its user.
pub(super) async fn list_identities(State(api): Access, caller: Caller) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, IDENTITIES)?;
        Ok::<_, ApiError>(api.auth.store.list_identities().await?)
    };
    match result.await {
        Ok(identities) => list(
            "IdentityList",
            "user.openshift.io/v1",
            identities.iter().map(identity_object).collect(),
        ),
        Err(err) => err.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IdentityBody {
    #[serde(default)]
    provider_name: String,
    #[serde(default)]
    provider_user_name: String,
    #[serde(default)]
    user: RoleRef,
}

/// `POST /apis/user.openshift.io/v1/identities` with `providerName`, `providerUserName` (the
/// provider's subject) and `user.name`: links an identity to a user, as OpenShift's Identity
/// with a UserIdentityMapping (what `mappingMethod: lookup` signs in with).
pub(super) async fn create_identity(
    State(api): Access,
    caller: Caller,
    ApiJson(body): ApiJson<IdentityBody>,
) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, IDENTITIES)?;
        let name = format!("{}:{}", body.provider_name, body.provider_user_name);
        let invalid = |field: &str, message: &str| {
            ApiError::invalid(IDENTITIES, &name, FieldError::new(field, message))
        };
        for (field, value) in [
            ("providerName", &body.provider_name),
            ("providerUserName", &body.provider_user_name),
        ] {
            if value.is_empty() || value.len() > 1024 || value.chars().any(char::is_control) {
                return Err(invalid(
                    field,
                    "1 to 1024 characters, none of them control characters",
                ));
            }
        }
        match api
            .auth
            .store
            .link_identity(
                &body.provider_name,
                &body.provider_user_name,
                &body.user.name,
            )
            .await?
        {
            LinkOutcome::Linked => {}
            LinkOutcome::NoSuchUser => {
                return Err(invalid("user.name", "no such user"));
            }
            LinkOutcome::Taken => {
                return Err(ApiError::AlreadyExists {
                    resource: IDENTITIES,
                    name,
                });
            }
        }
        api.auth
            .audit_change(
                &caller.subject,
                "identity-link",
                name.clone(),
                Some(format!("to user {}", body.user.name)),
            )
            .await;
        Ok(identity_object(&IdentityRecord {
            provider: body.provider_name,
            subject: body.provider_user_name,
            user: body.user.name,
            created_at: Utc::now(),
        }))
    };
    created(result.await)
}
