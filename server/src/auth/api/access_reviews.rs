//! Kubernetes' `SelfSubjectAccessReview`: may the caller do this one thing?

use crate::kube::ACCESS_REVIEWS;
use axum::extract::State;
use axum::response::Response;

use super::Access;
use crate::auth::http::Caller;
use crate::auth::reviews::{
    self, AccessReviewSpec, AccessReviewStatus, JsonObject, NonResourceAttributes,
    ResourceAttributes, Review, invalid_field, object_field, review_body, text_field,
};
use crate::kube::{ApiJson, ApiResult, created};

fn resource_attributes(attributes: &JsonObject) -> ApiResult<ResourceAttributes> {
    let field = |name: &str| {
        text_field(
            attributes,
            name,
            &format!("spec.resourceAttributes.{name}"),
            ACCESS_REVIEWS,
        )
    };
    let attributes = ResourceAttributes {
        namespace: field("namespace")?,
        verb: field("verb")?,
        group: field("group")?,
        version: field("version")?,
        resource: field("resource")?,
        subresource: field("subresource")?,
        name: field("name")?,
    };
    for (name, value) in [
        ("verb", &attributes.verb),
        ("resource", &attributes.resource),
    ] {
        if value.is_empty() {
            return Err(invalid_field(
                ACCESS_REVIEWS,
                &format!("spec.resourceAttributes.{name}"),
                "required",
            ));
        }
    }
    Ok(attributes)
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` with
/// `spec.resourceAttributes`: may the caller do this (see [`reviews::request_of`])?
pub(super) async fn self_subject_access_review(
    State(api): Access,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Response {
    let result = (|| {
        let (metadata, mut spec) = review_body(body, "SelfSubjectAccessReview", ACCESS_REVIEWS)?;
        let resource = object_field(
            &mut spec,
            "resourceAttributes",
            "spec.resourceAttributes",
            ACCESS_REVIEWS,
        )?;
        let non_resource = object_field(
            &mut spec,
            "nonResourceAttributes",
            "spec.nonResourceAttributes",
            ACCESS_REVIEWS,
        )?;
        let (spec, status) = match (resource, non_resource) {
            (Some(attributes), None) => {
                let attributes = resource_attributes(&attributes)?;
                let status =
                    reviews::review_access(&api.auth.authorizer, &caller.subject, &attributes);
                let spec = AccessReviewSpec {
                    resource_attributes: Some(attributes),
                    non_resource_attributes: None,
                };
                (spec, status)
            }
            (None, Some(attributes)) => {
                let field = |name: &str| {
                    text_field(
                        &attributes,
                        name,
                        &format!("spec.nonResourceAttributes.{name}"),
                        ACCESS_REVIEWS,
                    )
                };
                let attributes = NonResourceAttributes {
                    path: field("path")?,
                    verb: field("verb")?,
                };
                let spec = AccessReviewSpec {
                    resource_attributes: None,
                    non_resource_attributes: Some(attributes),
                };
                let status = AccessReviewStatus {
                    allowed: false,
                    reason: "Berth grants no access to non-resource URLs".into(),
                };
                (spec, status)
            }
            _ => {
                return Err(invalid_field(
                    ACCESS_REVIEWS,
                    "spec.resourceAttributes",
                    "exactly one of resourceAttributes and nonResourceAttributes is required",
                ));
            }
        };
        Ok(Review {
            kind: "SelfSubjectAccessReview",
            api_version: reviews::API_VERSION,
            metadata,
            spec,
            status,
        })
    })();
    created(result)
}
