//! Kubernetes' access reviews (`SelfSubjectRulesReview`, `SelfSubjectAccessReview`) in
//! OpenShift's vocabulary: what a role allows, as the RBAC rules a console in front of an
//! OpenShift cluster reads. One table ([`RULES`]) says which verbs on which resources each
//! [`Action`] allows; it builds the rules of a rules review and decides what an access review
//! asks. The bodies of both reviews are read here; their handlers are in `api/rules_reviews.rs`
//! and `api/access_reviews.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::authorizer::Authorizer;
use super::model::{Action, Role, Subject, Target};
use crate::config::auth::NamespaceCreation;
use crate::kube::{ApiError, ApiResult, FieldError, Resource};

pub const API_VERSION: &str = "authorization.k8s.io/v1";
pub const IMAGE_GROUP: &str = "image.openshift.io";
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// What one action allows in one API group, as RBAC verbs on resources (`imagestreams/layers`
/// is the `layers` subresource of `imagestreams`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRow {
    pub action: Action,
    pub api_group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

/// The table: every verb on every resource Berth answers for, and the action it needs.
/// OpenShift's registry checks `get imagestreams/layers` for a pull and
/// `update imagestreams/layers` for a push.
pub const RULES: &[RuleRow] = &[
    RuleRow {
        action: Action::Pull,
        api_group: IMAGE_GROUP,
        resources: &[
            "imagestreams",
            "imagestreamtags",
            "imagestreamimages",
            "imagestreams/layers",
        ],
        verbs: &["get", "list", "watch"],
    },
    RuleRow {
        action: Action::Push,
        api_group: IMAGE_GROUP,
        resources: &[
            "imagestreams",
            "imagestreamtags",
            "imagestreamimports",
            "imagestreammappings",
            "imagestreams/layers",
        ],
        verbs: &["create", "update", "patch"],
    },
    RuleRow {
        action: Action::Delete,
        api_group: IMAGE_GROUP,
        resources: &["imagestreams", "imagestreamtags"],
        verbs: &["delete"],
    },
    // Deleting a namespace is asked in that namespace, as Kubernetes' RBAC does it.
    RuleRow {
        action: Action::Delete,
        api_group: "",
        resources: &["namespaces"],
        verbs: &["delete"],
    },
    RuleRow {
        action: Action::ManageAccess,
        api_group: RBAC_GROUP,
        resources: &["rolebindings"],
        verbs: &["get", "list", "create", "delete"],
    },
    RuleRow {
        action: Action::ManageAccess,
        api_group: "",
        resources: &["serviceaccounts", "secrets"],
        verbs: &["get", "list", "create", "delete"],
    },
    // A namespace's quotas: read by its members, changed by cluster administrators only.
    RuleRow {
        action: Action::Pull,
        api_group: "",
        resources: &["resourcequotas", "limitranges"],
        verbs: &["get", "list"],
    },
    RuleRow {
        action: Action::ManageQuotas,
        api_group: "",
        resources: &["resourcequotas", "limitranges"],
        verbs: &["create", "update", "patch", "delete"],
    },
];

/// The resources a role on one image stream gives rules on, with the stream's name as
/// `resourceNames`.
pub const STREAM_RESOURCES: [&str; 2] = ["imagestreams", "imagestreams/layers"];

/// One rule of a rules review: these verbs on these resources (of these names only, when
/// `resourceNames` is set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
}

impl ResourceRule {
    /// Whether the rule allows `verb` on `resource` of `group` (named `name`, when the rule
    /// names some); `*` stands for every verb, group or resource.
    pub fn allows(&self, verb: &str, group: &str, resource: &str, name: Option<&str>) -> bool {
        let has = |list: &[String], wanted: &str| list.iter().any(|v| v == "*" || v == wanted);
        has(&self.verbs, verb)
            && has(&self.api_groups, group)
            && has(&self.resources, resource)
            && (self.resource_names.is_empty()
                || name.is_some_and(|name| self.resource_names.iter().any(|n| n == name)))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonResourceRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesReviewSpec {
    #[serde(default)]
    pub namespace: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesReviewStatus {
    #[serde(default)]
    pub resource_rules: Vec<ResourceRule>,
    #[serde(default)]
    pub non_resource_rules: Vec<NonResourceRule>,
    #[serde(default)]
    pub incomplete: bool,
}

/// What an access review asks about: a verb on a resource (of a group, in a namespace, of a
/// name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    #[serde(default)]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessReviewSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_attributes: Option<ResourceAttributes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_resource_attributes: Option<NonResourceAttributes>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessReviewStatus {
    #[serde(default)]
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// The rules of a rules review: those of every action the namespace role allows (no
/// `resourceNames`), then, for each action some streams allow beyond it, its rules on
/// [`STREAM_RESOURCES`] with those streams as `resourceNames`. `stream_roles` is
/// [`super::Authorizer::stream_roles`].
pub fn resource_rules(
    namespace_role: Option<Role>,
    stream_roles: &BTreeMap<String, Role>,
) -> Vec<ResourceRule> {
    let namespace_allows = |action: Action| namespace_role.is_some_and(|role| role.allows(action));
    let mut rules: Vec<ResourceRule> = RULES
        .iter()
        .filter(|row| namespace_allows(row.action))
        .map(|row| ResourceRule {
            verbs: strings(row.verbs),
            api_groups: vec![row.api_group.to_owned()],
            resources: strings(row.resources),
            resource_names: Vec::new(),
        })
        .collect();
    for row in RULES.iter().filter(|row| !namespace_allows(row.action)) {
        let resources: Vec<String> = row
            .resources
            .iter()
            .filter(|resource| STREAM_RESOURCES.contains(resource))
            .map(|resource| (*resource).to_owned())
            .collect();
        let streams: Vec<String> = stream_roles
            .iter()
            .filter(|(_, role)| role.allows(row.action))
            .map(|(stream, _)| stream.clone())
            .collect();
        if !resources.is_empty() && !streams.is_empty() {
            rules.push(ResourceRule {
                verbs: strings(row.verbs),
                api_groups: vec![row.api_group.to_owned()],
                resources,
                resource_names: streams,
            });
        }
    }
    rules
}

/// What an access review asks, in Berth's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `create namespaces`: decided by [`super::Authorizer::may_create_namespace`].
    CreateNamespace,
    /// An action on a target: decided by [`super::Authorizer::allows`].
    Act(Action, Target<'a>),
}

/// The image stream a request on `resource` named `name` is about: tags are `stream:tag`,
/// images `stream@digest`; imports and mappings are named after their stream.
fn stream_named<'a>(resource: &str, name: &'a str) -> Option<&'a str> {
    let stream = match resource {
        "imagestreams" | "imagestreamimports" | "imagestreammappings" => name,
        "imagestreamtags" => name.split(':').next().unwrap_or(name),
        "imagestreamimages" => name.split('@').next().unwrap_or(name),
        _ => return None,
    };
    (!stream.is_empty()).then_some(stream)
}

/// Maps an access review's attributes to what Berth decides, by [`RULES`]; the error is the
/// reason a request Berth has no rule for is refused.
pub fn request_of(attributes: &ResourceAttributes) -> Result<Request<'_>, String> {
    let ResourceAttributes {
        namespace,
        verb,
        group,
        resource,
        subresource,
        name,
        ..
    } = attributes;
    let full = if subresource.is_empty() {
        resource.clone()
    } else {
        format!("{resource}/{subresource}")
    };
    if group.is_empty() && full == "namespaces" && verb == "create" {
        return Ok(Request::CreateNamespace);
    }
    let row = RULES
        .iter()
        .find(|row| {
            row.api_group == group
                && row.resources.contains(&full.as_str())
                && row.verbs.contains(&verb.as_str())
        })
        .ok_or_else(|| {
            format!("Berth has no rule for {verb:?} on {full:?} in API group {group:?}")
        })?;
    let target = if full == "namespaces" {
        // A namespace is named by name, or by the namespace it is asked in.
        let namespace = if name.is_empty() { namespace } else { name };
        if namespace.is_empty() {
            return Err(format!(
                "{verb:?} on \"namespaces\" needs a namespace's name"
            ));
        }
        Target::namespace(namespace)
    } else {
        Target {
            namespace: (!namespace.is_empty()).then_some(namespace.as_str()),
            stream: stream_named(resource, name),
        }
    };
    Ok(Request::Act(row.action, target))
}

/// `User "alice"`, as Kubernetes' messages name the caller.
fn who(subject: &Subject) -> String {
    format!("User \"{}\"", subject.display_name())
}

/// Why an action was allowed or refused, from the role the subject holds at the target.
pub fn action_reason(
    subject: &Subject,
    role: Option<Role>,
    action: Action,
    target: Target<'_>,
) -> String {
    let holds = match role {
        Some(role) => format!("holds the {role} role on {target}"),
        None => format!("holds no role on {target}"),
    };
    let allowed = role.is_some_and(|role| role.allows(action));
    format!(
        "{} {holds}; {} needs {}{}",
        who(subject),
        action.as_str(),
        action.least_role(),
        if allowed { "" } else { ": refused" }
    )
}

/// Why creating a namespace was allowed or refused.
pub fn namespace_creation_reason(creation: NamespaceCreation, allowed: bool) -> String {
    let rule = match creation {
        NamespaceCreation::Authenticated => {
            "signed-in users (not service accounts) and cluster administrators may create namespaces"
        }
        NamespaceCreation::ClusterAdmin => "only cluster administrators may create namespaces",
    };
    if allowed {
        rule.to_owned()
    } else {
        format!("{rule}: refused")
    }
}

/// The answer to an access review of `subject`: what [`request_of`] maps it to, decided by
/// the authorizer.
pub fn review_access(
    authorizer: &Authorizer,
    subject: &Subject,
    attributes: &ResourceAttributes,
) -> AccessReviewStatus {
    match request_of(attributes) {
        Err(reason) => AccessReviewStatus {
            allowed: false,
            reason,
        },
        Ok(Request::CreateNamespace) => {
            let allowed = authorizer.may_create_namespace(subject);
            AccessReviewStatus {
                allowed,
                reason: namespace_creation_reason(authorizer.namespace_creation, allowed),
            }
        }
        Ok(Request::Act(action, target)) => AccessReviewStatus {
            allowed: authorizer.allows(subject, action, target),
            reason: action_reason(subject, authorizer.role(subject, target), action, target),
        },
    }
}

/// The rules of `subject` in `namespace`, as a rules review answers them.
pub fn review_rules(
    authorizer: &Authorizer,
    subject: &Subject,
    namespace: &str,
) -> RulesReviewStatus {
    RulesReviewStatus {
        resource_rules: resource_rules(
            authorizer.role(subject, Target::namespace(namespace)),
            &authorizer.stream_roles(subject, namespace),
        ),
        non_resource_rules: Vec::new(),
        incomplete: false,
    }
}

pub(super) type JsonObject = serde_json::Map<String, serde_json::Value>;

/// A review as Kubernetes answers it: the object asked with its status.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Review<S, T> {
    pub(super) kind: &'static str,
    pub(super) api_version: &'static str,
    pub(super) metadata: JsonObject,
    pub(super) spec: S,
    pub(super) status: T,
}

pub(super) fn invalid_field(
    resource: Resource,
    path: &str,
    message: impl Into<String>,
) -> ApiError {
    ApiError::invalid(resource, "", FieldError::new(path, message))
}

/// Takes an object field out of `object`; absent or null is `None`.
pub(super) fn object_field(
    object: &mut JsonObject,
    field: &str,
    path: &str,
    resource: Resource,
) -> ApiResult<Option<JsonObject>> {
    match object.remove(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Object(inner)) => Ok(Some(inner)),
        Some(_) => Err(invalid_field(resource, path, "must be an object")),
    }
}

/// A string field of `object`; absent or null is empty.
pub(super) fn text_field(
    object: &JsonObject,
    field: &str,
    path: &str,
    resource: Resource,
) -> ApiResult<String> {
    match object.get(field) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(invalid_field(resource, path, "must be a string")),
    }
}

/// The metadata and spec of a review's body, whose `kind` and `apiVersion`, when given, must be
/// the review's.
pub(super) fn review_body(
    body: serde_json::Value,
    kind: &str,
    resource: Resource,
) -> ApiResult<(JsonObject, JsonObject)> {
    let serde_json::Value::Object(mut body) = body else {
        return Err(ApiError::BadRequest(format!(
            "the request body is not a {kind} object"
        )));
    };
    for (field, expected) in [("kind", kind), ("apiVersion", API_VERSION)] {
        match body.get(field) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(given)) if given == expected => {}
            Some(given) => {
                return Err(ApiError::BadRequest(format!(
                    "{field} is {given}; this endpoint takes {expected:?}"
                )));
            }
        }
    }
    let metadata = object_field(&mut body, "metadata", "metadata", resource)?.unwrap_or_default();
    let spec = object_field(&mut body, "spec", "spec", resource)?.unwrap_or_default();
    Ok((metadata, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], group: &str, resources: &[&str], names: &[&str]) -> ResourceRule {
        ResourceRule {
            verbs: strings(verbs),
            api_groups: vec![group.to_owned()],
            resources: strings(resources),
            resource_names: strings(names),
        }
    }

    fn attributes(
        namespace: &str,
        verb: &str,
        group: &str,
        resource: &str,
        subresource: &str,
        name: &str,
    ) -> ResourceAttributes {
        ResourceAttributes {
            namespace: namespace.into(),
            verb: verb.into(),
            group: group.into(),
            version: String::new(),
            resource: resource.into(),
            subresource: subresource.into(),
            name: name.into(),
        }
    }

    const PULL: [&str; 3] = ["get", "list", "watch"];
    const PUSH: [&str; 3] = ["create", "update", "patch"];

    #[test]
    fn namespace_roles_give_the_rules_of_their_actions() {
        let none = BTreeMap::new();
        assert!(resource_rules(None, &none).is_empty());
        let viewer = resource_rules(Some(Role::Viewer), &none);
        let read_quotas = rule(
            &["get", "list"],
            "",
            &["resourcequotas", "limitranges"],
            &[],
        );
        assert_eq!(
            viewer,
            [
                rule(
                    &PULL,
                    IMAGE_GROUP,
                    &[
                        "imagestreams",
                        "imagestreamtags",
                        "imagestreamimages",
                        "imagestreams/layers"
                    ],
                    &[]
                ),
                read_quotas.clone()
            ]
        );
        let editor = resource_rules(Some(Role::Editor), &none);
        assert_eq!(editor.len(), 3);
        assert_eq!(editor[0], viewer[0]);
        assert_eq!(
            editor[1],
            rule(
                &PUSH,
                IMAGE_GROUP,
                &[
                    "imagestreams",
                    "imagestreamtags",
                    "imagestreamimports",
                    "imagestreammappings",
                    "imagestreams/layers"
                ],
                &[]
            )
        );
        let admin = resource_rules(Some(Role::Admin), &none);
        // Everything but changing quotas, which is the cluster administrators'.
        assert_eq!(admin.len(), RULES.len() - 1);
        assert!(admin.contains(&read_quotas));
        assert!(admin.contains(&rule(
            &["delete"],
            IMAGE_GROUP,
            &["imagestreams", "imagestreamtags"],
            &[]
        )));
        assert!(admin.contains(&rule(
            &["get", "list", "create", "delete"],
            RBAC_GROUP,
            &["rolebindings"],
            &[]
        )));
        assert!(admin.contains(&rule(
            &["get", "list", "create", "delete"],
            "",
            &["serviceaccounts", "secrets"],
            &[]
        )));
        let cluster_admin = resource_rules(Some(Role::ClusterAdmin), &none);
        assert_eq!(cluster_admin[..admin.len()], admin[..]);
        assert_eq!(
            cluster_admin[admin.len()..],
            [rule(
                &["create", "update", "patch", "delete"],
                "",
                &["resourcequotas", "limitranges"],
                &[]
            )]
        );
        assert!(admin.iter().all(|r| r.resource_names.is_empty()));
    }

    #[test]
    fn stream_roles_add_named_rules_beyond_the_namespace_role() {
        let streams: BTreeMap<String, Role> = [
            ("app".to_owned(), Role::Editor),
            ("db".to_owned(), Role::Admin),
            ("web".to_owned(), Role::Viewer),
        ]
        .into();
        // Only stream bindings: pull on all three, push on two, delete on db; managing access
        // and deleting the namespace have no stream resources.
        let rules = resource_rules(None, &streams);
        let layers = ["imagestreams", "imagestreams/layers"];
        assert_eq!(
            rules,
            [
                rule(&PULL, IMAGE_GROUP, &layers, &["app", "db", "web"]),
                rule(&PUSH, IMAGE_GROUP, &layers, &["app", "db"]),
                rule(&["delete"], IMAGE_GROUP, &["imagestreams"], &["db"]),
            ]
        );
        // A namespace viewer: pull namespace-wide, only the extra actions by name.
        let rules = resource_rules(Some(Role::Viewer), &streams);
        assert_eq!(rules.len(), 4);
        assert!(rules[0].resource_names.is_empty() && rules[1].resource_names.is_empty());
        assert_eq!(rules[2], rule(&PUSH, IMAGE_GROUP, &layers, &["app", "db"]));
        assert_eq!(
            rules[3],
            rule(&["delete"], IMAGE_GROUP, &["imagestreams"], &["db"])
        );
        // A namespace admin: nothing by name.
        assert!(
            resource_rules(Some(Role::Admin), &streams)
                .iter()
                .all(|r| r.resource_names.is_empty())
        );
    }

    #[test]
    fn access_reviews_map_to_actions_and_targets() {
        let create = attributes("", "create", "", "namespaces", "", "");
        assert_eq!(request_of(&create), Ok(Request::CreateNamespace));
        let delete = attributes("", "delete", "", "namespaces", "", "team");
        assert_eq!(
            request_of(&delete),
            Ok(Request::Act(Action::Delete, Target::namespace("team")))
        );
        let delete = attributes("team", "delete", "", "namespaces", "", "");
        assert_eq!(
            request_of(&delete),
            Ok(Request::Act(Action::Delete, Target::namespace("team")))
        );
        assert!(request_of(&attributes("", "delete", "", "namespaces", "", "")).is_err());
        let quota = attributes("team", "update", "", "resourcequotas", "", "registry");
        assert_eq!(
            request_of(&quota),
            Ok(Request::Act(
                Action::ManageQuotas,
                Target::namespace("team")
            ))
        );
        let layers = attributes("team", "get", IMAGE_GROUP, "imagestreams", "layers", "app");
        assert_eq!(
            request_of(&layers),
            Ok(Request::Act(Action::Pull, Target::stream("team", "app")))
        );
        let push = attributes(
            "team",
            "update",
            IMAGE_GROUP,
            "imagestreams",
            "layers",
            "app",
        );
        assert_eq!(
            request_of(&push),
            Ok(Request::Act(Action::Push, Target::stream("team", "app")))
        );
        let tag = attributes(
            "team",
            "delete",
            IMAGE_GROUP,
            "imagestreamtags",
            "",
            "app:v1",
        );
        assert_eq!(
            request_of(&tag),
            Ok(Request::Act(Action::Delete, Target::stream("team", "app")))
        );
        let image = attributes(
            "team",
            "get",
            IMAGE_GROUP,
            "imagestreamimages",
            "",
            "app@sha256:ab",
        );
        assert_eq!(
            request_of(&image),
            Ok(Request::Act(Action::Pull, Target::stream("team", "app")))
        );
        let list = attributes("team", "list", IMAGE_GROUP, "imagestreams", "", "");
        assert_eq!(
            request_of(&list),
            Ok(Request::Act(Action::Pull, Target::namespace("team")))
        );
        let everywhere = attributes("", "list", IMAGE_GROUP, "imagestreams", "", "");
        assert_eq!(
            request_of(&everywhere),
            Ok(Request::Act(Action::Pull, Target::REGISTRY))
        );
        let bindings = attributes("team", "create", RBAC_GROUP, "rolebindings", "", "x");
        assert_eq!(
            request_of(&bindings),
            Ok(Request::Act(
                Action::ManageAccess,
                Target::namespace("team")
            ))
        );
        // Unknown resources, groups, subresources and verbs have no rule.
        for unknown in [
            attributes("team", "get", "", "pods", "", ""),
            attributes("team", "get", "", "imagestreams", "", "app"),
            attributes("team", "get", IMAGE_GROUP, "imagestreams", "secrets", "app"),
            attributes("team", "escalate", RBAC_GROUP, "rolebindings", "", ""),
            attributes("team", "*", IMAGE_GROUP, "imagestreams", "", ""),
        ] {
            let reason = request_of(&unknown).expect_err("no rule");
            assert!(reason.starts_with("Berth has no rule for"), "{reason}");
        }
    }

    #[test]
    fn every_row_of_the_table_answers_its_own_access_reviews() {
        let mut asked_reviews = 0;
        for row in RULES {
            for resource in row.resources {
                let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
                for verb in row.verbs {
                    let asked = attributes("team", verb, row.api_group, resource, subresource, "");
                    assert!(
                        matches!(request_of(&asked), Ok(Request::Act(action, _)) if action == row.action),
                        "{verb} {resource}/{subresource}"
                    );
                    asked_reviews += 1;
                }
            }
        }
        // The table's eight rows hold 54 (verb, resource) pairs: an emptied or shrunk table
        // fails here instead of passing with nothing asked.
        assert_eq!((RULES.len(), asked_reviews), (8, 54));
    }

    #[test]
    fn reasons_name_the_caller_and_the_role() {
        let alice = Subject::User {
            name: "alice".into(),
            groups: vec![],
        };
        assert_eq!(
            action_reason(
                &alice,
                Some(Role::Viewer),
                Action::Push,
                Target::stream("team", "app")
            ),
            "User \"alice\" holds the viewer role on team/app; push needs editor: refused"
        );
        assert_eq!(
            action_reason(
                &Subject::Anonymous,
                None,
                Action::Pull,
                Target::namespace("team")
            ),
            "User \"system:anonymous\" holds no role on namespace team; pull needs viewer: refused"
        );
        assert!(
            !namespace_creation_reason(NamespaceCreation::ClusterAdmin, true).ends_with("refused")
        );
    }
}
