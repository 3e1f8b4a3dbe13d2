//! What the signed-in user may do, asked of the cluster: one `SelfSubjectRulesReview` for a
//! namespace (read as the console's permissions) or one `SelfSubjectAccessReview` for a
//! cluster-wide question.

use app::api::{ConsoleResult, Permissions};
use axum::http::Method;
use serde::Deserialize;

use super::{Signed, UpstreamConsoleData};
use crate::auth::reviews::{
    AccessReviewSpec, AccessReviewStatus, ResourceAttributes, ResourceRule, RulesReviewSpec,
    RulesReviewStatus,
};

const REVIEWS: &str = "/apis/authorization.k8s.io/v1";

/// A review's answer, as far as the console reads it.
#[derive(Debug, Deserialize)]
struct Review<T> {
    #[serde(default)]
    status: T,
}

/// What the rules allow, in OpenShift's terms: pull is `get imagestreams/layers`, push is
/// `update imagestreams/layers` (as its registry checks), delete is `delete imagestreams`,
/// pull secrets are `create secrets`. Access is managed in the cluster, not here.
pub(super) fn permissions_from(rules: &[ResourceRule], stream: Option<&str>) -> Permissions {
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

impl UpstreamConsoleData {
    /// One `SelfSubjectRulesReview`: what the user may do in `namespace`.
    pub(super) async fn rules(
        &self,
        signed: &Signed,
        namespace: &str,
    ) -> ConsoleResult<Vec<ResourceRule>> {
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

    /// One `SelfSubjectAccessReview` for a cluster-wide question of the core API.
    pub(super) async fn may(
        &self,
        signed: &Signed,
        verb: &str,
        resource: &str,
    ) -> ConsoleResult<bool> {
        self.may_in(signed, verb, "", resource).await
    }

    /// One `SelfSubjectAccessReview` for a cluster-wide question of API group `group`.
    pub(super) async fn may_in(
        &self,
        signed: &Signed,
        verb: &str,
        group: &str,
        resource: &str,
    ) -> ConsoleResult<bool> {
        let body = serde_json::json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": AccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: verb.to_owned(),
                    group: group.to_owned(),
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
}
