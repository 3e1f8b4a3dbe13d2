//! Kubernetes' `SelfSubjectRulesReview`: what the caller may do in a namespace, as RBAC rules.

use crate::kube::RULES_REVIEWS;
use axum::extract::State;
use axum::response::Response;

use super::Access;
use crate::auth::http::Caller;
use crate::auth::reviews::{self, Review, RulesReviewSpec, invalid_field, review_body, text_field};
use crate::kube::{ApiJson, created};
use crate::oci::is_valid_namespace;

/// `POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews` with `spec.namespace`: what
/// the caller may do there, as RBAC rules (see [`reviews::resource_rules`]).
pub(super) async fn self_subject_rules_review(
    State(api): Access,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Response {
    let result = (|| {
        let (metadata, spec) = review_body(body, "SelfSubjectRulesReview", RULES_REVIEWS)?;
        let namespace = text_field(&spec, "namespace", "spec.namespace", RULES_REVIEWS)?;
        if namespace.is_empty() {
            return Err(invalid_field(
                RULES_REVIEWS,
                "spec.namespace",
                "a namespace is required",
            ));
        }
        if !is_valid_namespace(&namespace) {
            return Err(invalid_field(
                RULES_REVIEWS,
                "spec.namespace",
                format!("{namespace:?} is not a namespace name"),
            ));
        }
        let status = reviews::review_rules(&api.auth.authorizer, &caller.subject, &namespace);
        Ok(Review {
            kind: "SelfSubjectRulesReview",
            api_version: reviews::API_VERSION,
            metadata,
            spec: RulesReviewSpec { namespace },
            status,
        })
    })();
    created(result)
}
