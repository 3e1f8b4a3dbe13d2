//! The access API: role bindings per registry, namespace or stream; "who can" and "what may";
//! service accounts and their tokens; personal tokens; users (and "who am I"), groups and
//! identities; the audit log; Kubernetes' access reviews. Every change is decided by the same function as everything else, and a
//! binding can grant no more than its author holds. One file per resource holds its service
//! methods and handlers; this one the [`AccessApi`] they share and the router.

mod access_reviews;
mod audit;
pub mod bindings;
mod groups;
mod identities;
mod permissions;
mod personal_tokens;
mod rules_reviews;
mod service_accounts;
mod users;
mod who_can;

pub use audit::{AUDIT_SCAN, AuditPage, AuditSearch, namespace_of};

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use super::{AccessChange, Action, AuthContext, Role, Subject, Target};
use crate::kube::{ApiError, ApiResult, NAMESPACES, Resource};
use crate::oci::is_valid_namespace;
use crate::storage::ImageStreamStore;

/// What the access API's resources share: authentication and the authorizer, and the store that
/// says which namespaces exist.
pub struct AccessApi {
    pub auth: Arc<AuthContext>,
    pub streams: Arc<dyn ImageStreamStore>,
}

type Access = State<Arc<AccessApi>>;

/// The API version of Berth's own access resources.
pub fn access_api_version() -> String {
    "access.berth.io/v1".into()
}

/// A list as the access API answers it (no `resourceVersion`, no paging).
fn list<T: Serialize>(kind: &str, api_version: &str, items: Vec<T>) -> Response {
    axum::Json(serde_json::json!({
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    }))
    .into_response()
}

impl AccessApi {
    /// Tells open console pages that the access of `namespace` (the registry's, when `None`)
    /// changed: `what` (`binding`, `serviceaccount`, `token`) named `name`.
    async fn access_changed_in(&self, namespace: Option<&str>, what: &str, name: &str) {
        self.auth
            .access_changed(&AccessChange {
                namespace: namespace.map(str::to_owned),
                user: None,
                what: what.to_owned(),
                name: name.to_owned(),
            })
            .await;
    }

    /// Whether `who` may read users, groups, identities and the audit log.
    pub fn is_cluster_admin(&self, who: &Subject) -> bool {
        self.auth.authorizer.role(who, Target::REGISTRY) == Some(Role::ClusterAdmin)
    }

    /// A `Status` 404 for a namespace that does not exist.
    async fn require_namespace(&self, namespace: &str) -> ApiResult<()> {
        if is_valid_namespace(namespace) && self.streams.get_namespace(namespace).await?.is_some() {
            Ok(())
        } else {
            Err(ApiError::not_found(NAMESPACES, namespace))
        }
    }
}

/// The query of binding lists, "who can" and "what may", one struct for the three so that each
/// refuses the same malformed query.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeQuery {
    image_stream: Option<String>,
    action: Option<String>,
    subject: Option<String>,
}

/// Users, groups and the audit log are the cluster administrators' alone: a registry-wide
/// `admin` who managed groups could join one bound to cluster-admin and so become one.
fn require_cluster_admin(api: &AccessApi, who: &Subject, resource: Resource) -> ApiResult<()> {
    if api.is_cluster_admin(who) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            &who.display_name(),
            Action::ManageAccess.verb(),
            resource,
            "",
            None,
        ))
    }
}

pub fn router(api: Arc<AccessApi>) -> Router {
    const ACCESS: &str = "/apis/access.berth.io/v1";
    Router::new()
        .route(
            &format!("{ACCESS}/rolebindings"),
            get(bindings::list_registry_bindings).post(bindings::create_registry_binding),
        )
        .route(
            &format!("{ACCESS}/rolebindings/{{name}}"),
            delete(bindings::delete_registry_binding),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/rolebindings"),
            get(bindings::list_namespace_bindings).post(bindings::create_namespace_binding),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/rolebindings/{{name}}"),
            delete(bindings::delete_namespace_binding),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/whocan"),
            get(who_can::who_can_route),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/permissions"),
            get(permissions::permissions),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/serviceaccounts/{{name}}/tokens"),
            get(service_accounts::list_service_account_tokens),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/serviceaccounts/{{name}}/tokens/{{uid}}"),
            delete(service_accounts::revoke_service_account_token_route),
        )
        .route(&format!("{ACCESS}/auditevents"), get(audit::audit_events))
        .route(
            &format!("{ACCESS}/personaltokens"),
            get(personal_tokens::list_personal_tokens).post(personal_tokens::create_personal_token),
        )
        .route(
            &format!("{ACCESS}/personaltokens/{{uid}}"),
            delete(personal_tokens::revoke_personal_token),
        )
        .route(
            "/api/v1/namespaces/{namespace}/serviceaccounts",
            get(service_accounts::list_service_accounts)
                .post(service_accounts::create_service_account),
        )
        .route(
            "/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
            get(service_accounts::get_service_account)
                .delete(service_accounts::delete_service_account),
        )
        .route(
            "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            post(service_accounts::create_service_account_token_route),
        )
        .route("/apis/user.openshift.io/v1/users", get(users::list_users))
        .route("/apis/user.openshift.io/v1/users/~", get(users::whoami))
        .route(
            "/apis/user.openshift.io/v1/groups",
            get(groups::list_groups),
        )
        .route(
            "/apis/user.openshift.io/v1/identities",
            get(identities::list_identities).post(identities::create_identity),
        )
        .route(
            "/apis/user.openshift.io/v1/groups/{name}",
            axum::routing::put(groups::put_group),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            post(rules_reviews::self_subject_rules_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(access_reviews::self_subject_access_review),
        )
        .with_state(api)
}
