//! API discovery, as Kubernetes clients read it before anything else: `/version`, `/api`,
//! `/api/v1`, `/apis`, `/apis/{group}` and `/apis/{group}/{version}`, in the legacy shapes and,
//! on `/api` and `/apis` when the client asks for it, as one aggregated
//! `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`. Everything is generated from one table,
//! [`RESOURCES`]: each resource type Berth serves with its kind, scope, verbs, short names,
//! categories, subresources and the columns of its `Table` ([`super::table`]). Discovery names
//! types only, never objects, so it is the same for every caller and needs no credentials.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde::Serialize;

use super::http::{accepts_json_as, method_not_allowed};
use super::resource::*;
use super::table::{
    Column, IMAGE_COLUMNS, IMAGE_STREAM_COLUMNS, IMAGE_STREAM_IMAGE_COLUMNS,
    IMAGE_STREAM_TAG_COLUMNS, NAMESPACE_COLUMNS, SECRET_COLUMNS, SERVICE_ACCOUNT_COLUMNS,
};

/// The Kubernetes version Berth's API follows (what its shapes and discovery are modelled on).
const KUBERNETES_MAJOR: &str = "1";
const KUBERNETES_MINOR: &str = "32";

/// The media type of aggregated discovery, asked for in `Accept` and answered in `Content-Type`.
pub const AGGREGATED_DISCOVERY: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

const READ: &[&str] = &["get", "list"];
const WATCHED: &[&str] = &["create", "delete", "get", "list", "watch"];
const MANAGED: &[&str] = &["create", "delete", "get", "list"];
const PATCHED: &[&str] = &["create", "delete", "get", "list", "patch", "update"];
const CREATE: &[&str] = &["create"];

/// A resource type one of Berth's APIs serves, as discovery declares it.
#[derive(Debug, Clone, Copy)]
pub struct ApiResource {
    pub resource: Resource,
    pub version: &'static str,
    pub kind: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The columns of its `Table`; none gives the default `Name` and `Created At`.
    pub columns: &'static [Column],
}

/// A subresource (`serviceaccounts/token`) with the kind it answers with.
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

impl ApiResource {
    const fn new(resource: Resource, kind: &'static str, singular: &'static str) -> Self {
        ApiResource {
            resource,
            version: "v1",
            kind,
            singular,
            namespaced: true,
            verbs: READ,
            short_names: &[],
            categories: &[],
            subresources: &[],
            columns: &[],
        }
    }

    const fn cluster(mut self) -> Self {
        self.namespaced = false;
        self
    }

    const fn verbs(mut self, verbs: &'static [&'static str]) -> Self {
        self.verbs = verbs;
        self
    }

    const fn short(mut self, short_names: &'static [&'static str]) -> Self {
        self.short_names = short_names;
        self
    }

    const fn columns(mut self, columns: &'static [Column]) -> Self {
        self.columns = columns;
        self
    }

    /// `v1` for the core group, else `group/v1`.
    pub fn api_version(&self) -> String {
        group_version(self.resource.group, self.version)
    }

    fn api_resource(&self) -> meta::APIResource {
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let optional = |list: &[&str]| (!list.is_empty()).then(|| strings(list));
        meta::APIResource {
            name: self.resource.plural.to_owned(),
            singular_name: self.singular.to_owned(),
            namespaced: self.namespaced,
            kind: self.kind.to_owned(),
            verbs: strings(self.verbs),
            short_names: optional(self.short_names),
            categories: optional(self.categories),
            ..Default::default()
        }
    }

    /// The resource and its subresources (`serviceaccounts/token`) as an `APIResourceList` has
    /// them.
    fn legacy(&self) -> impl Iterator<Item = meta::APIResource> + '_ {
        std::iter::once(self.api_resource()).chain(self.subresources.iter().map(|sub| {
            meta::APIResource {
                name: format!("{}/{}", self.resource.plural, sub.name),
                singular_name: String::new(),
                namespaced: self.namespaced,
                group: (sub.group != self.resource.group).then(|| sub.group.to_owned()),
                version: (sub.version != self.version).then(|| sub.version.to_owned()),
                kind: sub.kind.to_owned(),
                verbs: sub.verbs.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            }
        }))
    }

    fn aggregated(&self) -> ResourceDiscovery {
        ResourceDiscovery {
            resource: self.resource.plural,
            response_kind: GroupVersionKind {
                group: self.resource.group,
                version: self.version,
                kind: self.kind,
            },
            scope: if self.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            },
            singular_resource: self.singular,
            verbs: self.verbs,
            short_names: self.short_names,
            categories: self.categories,
            subresources: self
                .subresources
                .iter()
                .map(|sub| SubresourceDiscovery {
                    subresource: sub.name,
                    response_kind: GroupVersionKind {
                        group: sub.group,
                        version: sub.version,
                        kind: sub.kind,
                    },
                    verbs: sub.verbs,
                })
                .collect(),
        }
    }
}

/// Every resource type Berth serves, grouped by API group (the core group first), in the order
/// discovery lists them.
pub const RESOURCES: &[ApiResource] = &[
    // The core group, `/api/v1`.
    ApiResource::new(NAMESPACES, "Namespace", "namespace")
        .cluster()
        .verbs(WATCHED)
        .short(&["ns"])
        .columns(NAMESPACE_COLUMNS),
    ApiResource::new(SECRETS, "Secret", "secret")
        .verbs(MANAGED)
        .columns(SECRET_COLUMNS),
    ApiResource {
        subresources: &[Subresource {
            name: "token",
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: CREATE,
        }],
        ..ApiResource::new(SERVICE_ACCOUNTS, "ServiceAccount", "serviceaccount")
            .verbs(MANAGED)
            .short(&["sa"])
            .columns(SERVICE_ACCOUNT_COLUMNS)
    },
    ApiResource::new(RESOURCE_QUOTAS, "ResourceQuota", "resourcequota")
        .verbs(PATCHED)
        .short(&["quota"]),
    ApiResource::new(LIMIT_RANGES, "LimitRange", "limitrange")
        .verbs(PATCHED)
        .short(&["limits"]),
    // OpenShift's image API: names, short names and categories as OpenShift declares them.
    ApiResource {
        categories: &["all"],
        ..ApiResource::new(IMAGE_STREAMS, "ImageStream", "imagestream")
            .verbs(&[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ])
            .short(&["is"])
            .columns(IMAGE_STREAM_COLUMNS)
    },
    ApiResource::new(IMAGE_STREAM_TAGS, "ImageStreamTag", "imagestreamtag")
        .verbs(PATCHED)
        .short(&["istag"])
        .columns(IMAGE_STREAM_TAG_COLUMNS),
    ApiResource::new(IMAGE_STREAM_IMAGES, "ImageStreamImage", "imagestreamimage")
        .verbs(&["get"])
        .short(&["isimage"])
        .columns(IMAGE_STREAM_IMAGE_COLUMNS),
    ApiResource::new(
        IMAGE_STREAM_MAPPINGS,
        "ImageStreamMapping",
        "imagestreammapping",
    )
    .verbs(CREATE),
    ApiResource::new(
        IMAGE_STREAM_IMPORTS,
        "ImageStreamImport",
        "imagestreamimport",
    )
    .verbs(CREATE),
    ApiResource::new(IMAGES, "Image", "image")
        .cluster()
        .columns(IMAGE_COLUMNS),
    // OpenShift's projects: the namespaces the caller may see, read only.
    ApiResource::new(PROJECTS, "Project", "project").cluster(),
    // OpenShift's user API (a get of `users/~` only, who am I: not declared).
    ApiResource::new(USERS, "User", "user")
        .cluster()
        .verbs(&["list"]),
    ApiResource::new(GROUPS, "Group", "group")
        .cluster()
        .verbs(&["list", "update"]),
    ApiResource::new(IDENTITIES, "Identity", "identity")
        .cluster()
        .verbs(&["create", "list"]),
    // Kubernetes' reviews, which `kubectl auth can-i` asks.
    ApiResource::new(
        ACCESS_REVIEWS,
        "SelfSubjectAccessReview",
        "selfsubjectaccessreview",
    )
    .cluster()
    .verbs(CREATE),
    ApiResource::new(
        RULES_REVIEWS,
        "SelfSubjectRulesReview",
        "selfsubjectrulesreview",
    )
    .cluster()
    .verbs(CREATE),
    // Berth's access API. Registry-wide role bindings are at `/apis/access.berth.io/v1/
    // rolebindings`; discovery has one scope per resource, the namespaces'.
    ApiResource::new(ROLE_BINDINGS, "RoleBinding", "rolebinding")
        .verbs(&["create", "delete", "list"]),
    ApiResource::new(WHO_CAN, "WhoCan", "whocan").verbs(&["list"]),
    ApiResource::new(PERMISSIONS, "Permissions", "permissions").verbs(&["list"]),
    ApiResource::new(AUDIT_EVENTS, "AuditEvent", "auditevent")
        .cluster()
        .verbs(&["list"]),
    ApiResource::new(PERSONAL_TOKENS, "PersonalToken", "personaltoken")
        .cluster()
        .verbs(&["create", "delete", "list"]),
    // Berth's own resources. Prunes are created at the cluster scope too, for every namespace.
    ApiResource {
        subresources: &[
            Subresource {
                name: "deliveries",
                group: "berth.io",
                version: "v1",
                kind: "WebhookDeliveryList",
                verbs: &["get"],
            },
            // A test event, and a new signing secret.
            Subresource {
                name: "ping",
                group: "berth.io",
                version: "v1",
                kind: "WebhookDelivery",
                verbs: CREATE,
            },
            Subresource {
                name: "secret",
                group: "berth.io",
                version: "v1",
                kind: "Webhook",
                verbs: CREATE,
            },
        ],
        ..ApiResource::new(WEBHOOKS, "Webhook", "webhook").verbs(PATCHED)
    },
    ApiResource::new(IMAGE_PRUNES, "ImagePrune", "imageprune").verbs(CREATE),
    ApiResource::new(IMAGE_PRUNERS, "ImagePruner", "imagepruner")
        .cluster()
        .verbs(&["get", "patch", "update"]),
    ApiResource {
        subresources: &[Subresource {
            name: "run",
            group: "berth.io",
            version: "v1",
            kind: "RetentionRun",
            verbs: CREATE,
        }],
        ..ApiResource::new(RETENTION_POLICIES, "RetentionPolicy", "retentionpolicy").verbs(PATCHED)
    },
    ApiResource::new(IMMUTABLE_TAG_RULES, "ImmutableTagRule", "immutabletagrule").verbs(PATCHED),
];

/// The resource whose objects (or lists, `ImageStreamList`) have `kind`.
pub fn by_kind(kind: &str) -> Option<&'static ApiResource> {
    let kind = kind.strip_suffix("List").unwrap_or(kind);
    RESOURCES.iter().find(|r| r.kind == kind)
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// The API groups other than the core one, each once, in the table's order.
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for resource in RESOURCES {
        let group = resource.resource.group;
        if !group.is_empty() && !groups.contains(&group) {
            groups.push(group);
        }
    }
    groups
}

fn resources_of(group: &'static str) -> impl Iterator<Item = &'static ApiResource> {
    RESOURCES.iter().filter(move |r| r.resource.group == group)
}

fn legacy_group(group: &str) -> meta::APIGroup {
    let version = meta::GroupVersionForDiscovery {
        group_version: group_version(group, "v1"),
        version: "v1".into(),
    };
    meta::APIGroup {
        name: group.to_owned(),
        preferred_version: Some(version.clone()),
        versions: vec![version],
        server_address_by_client_cidrs: None,
    }
}

fn resource_list(group: &'static str) -> meta::APIResourceList {
    meta::APIResourceList {
        group_version: group_version(group, "v1"),
        resources: resources_of(group).flat_map(ApiResource::legacy).collect(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupVersionKind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubresourceDiscovery {
    subresource: &'static str,
    response_kind: GroupVersionKind,
    verbs: &'static [&'static str],
}

/// `apidiscovery.k8s.io/v2` `APIResourceDiscovery`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDiscovery {
    resource: &'static str,
    response_kind: GroupVersionKind,
    scope: &'static str,
    singular_resource: &'static str,
    verbs: &'static [&'static str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    short_names: &'static [&'static str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    categories: &'static [&'static str],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subresources: Vec<SubresourceDiscovery>,
}

#[derive(Serialize)]
struct VersionDiscovery {
    version: &'static str,
    resources: Vec<ResourceDiscovery>,
    freshness: &'static str,
}

#[derive(Serialize, Default)]
struct DiscoveryMeta {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'static str,
}

#[derive(Serialize)]
struct GroupDiscovery {
    metadata: DiscoveryMeta,
    versions: Vec<VersionDiscovery>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupDiscoveryList {
    kind: &'static str,
    api_version: &'static str,
    metadata: DiscoveryMeta,
    items: Vec<GroupDiscovery>,
}

fn aggregated(groups: impl IntoIterator<Item = &'static str>) -> GroupDiscoveryList {
    GroupDiscoveryList {
        kind: "APIGroupDiscoveryList",
        api_version: "apidiscovery.k8s.io/v2",
        metadata: DiscoveryMeta::default(),
        items: groups
            .into_iter()
            .map(|group| GroupDiscovery {
                metadata: DiscoveryMeta { name: group },
                versions: vec![VersionDiscovery {
                    version: "v1",
                    resources: resources_of(group).map(ApiResource::aggregated).collect(),
                    freshness: "Current",
                }],
            })
            .collect(),
    }
}

/// Whether `Accept` asks for aggregated discovery (`v2`; `v2beta1` alone gets the legacy form,
/// which clients also read).
fn wants_aggregated(headers: &HeaderMap) -> bool {
    accepts_json_as(
        headers,
        &["g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"],
    )
}

/// A discovery answer: aggregated when asked for, else the legacy document; either way it
/// varies with `Accept`, so caches keep them apart.
fn answer<T: Serialize>(
    headers: &HeaderMap,
    legacy: impl FnOnce() -> T,
    groups: Vec<&'static str>,
) -> Response {
    let mut response = if wants_aggregated(headers) {
        let mut response = axum::Json(aggregated(groups)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(AGGREGATED_DISCOVERY),
        );
        response
    } else {
        axum::Json(legacy()).into_response()
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

async fn version() -> Response {
    axum::Json(k8s_openapi::apimachinery::pkg::version::Info {
        major: KUBERNETES_MAJOR.into(),
        minor: KUBERNETES_MINOR.into(),
        git_version: format!(
            "v{KUBERNETES_MAJOR}.{KUBERNETES_MINOR}.0+berth-{}",
            env!("CARGO_PKG_VERSION")
        ),
        git_commit: String::new(),
        git_tree_state: String::new(),
        build_date: String::new(),
        go_version: String::new(),
        compiler: "rustc".into(),
        platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        ..Default::default()
    })
    .into_response()
}

async fn core_versions(headers: HeaderMap) -> Response {
    answer(
        &headers,
        || meta::APIVersions {
            versions: vec!["v1".into()],
            server_address_by_client_cidrs: Vec::new(),
        },
        vec![""],
    )
}

async fn group_list(headers: HeaderMap) -> Response {
    answer(
        &headers,
        || meta::APIGroupList {
            groups: groups().into_iter().map(legacy_group).collect(),
        },
        groups(),
    )
}

/// Discovery's routes: `/version`, `/api`, `/api/v1`, `/apis`, and each group's two documents.
pub fn router() -> Router {
    let mut router = Router::new()
        .route("/version", get(version))
        .route("/api", get(core_versions))
        .route(
            "/api/v1",
            get(|| async { axum::Json(resource_list("")).into_response() }),
        )
        .route("/apis", get(group_list));
    for group in groups() {
        router = router
            .route(
                &format!("/apis/{group}"),
                get(move || async move { axum::Json(legacy_group(group)).into_response() }),
            )
            .route(
                &format!("/apis/{group}/v1"),
                get(move || async move { axum::Json(resource_list(group)).into_response() }),
            );
    }
    router.method_not_allowed_fallback(method_not_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_plural_is_declared_once() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(a.kind != b.kind, "{} twice", a.kind);
                assert!(a.resource != b.resource, "{} twice", a.resource);
                for short in a.short_names {
                    assert!(!b.short_names.contains(short), "{short} twice");
                }
            }
        }
    }

    #[test]
    fn the_image_api_declares_openshifts_short_names() {
        let streams = by_kind("ImageStreamList").expect("image streams");
        assert_eq!(streams.short_names, ["is"]);
        assert_eq!(streams.categories, ["all"]);
        assert_eq!(
            by_kind("ImageStreamTag").map(|r| r.short_names),
            Some(&["istag"][..])
        );
        assert_eq!(
            by_kind("ImageStreamImage").map(|r| r.short_names),
            Some(&["isimage"][..])
        );
    }

    #[test]
    fn aggregated_discovery_is_asked_for_by_its_media_type() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
            ),
        );
        assert!(wants_aggregated(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, */*"),
        );
        assert!(!wants_aggregated(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
            ),
        );
        assert!(!wants_aggregated(&headers));
    }

    #[test]
    fn subresources_are_listed_beside_their_resource_in_the_legacy_form() {
        let core = resource_list("");
        let token = core
            .resources
            .iter()
            .find(|r| r.name == "serviceaccounts/token")
            .expect("the token subresource");
        assert_eq!(token.group.as_deref(), Some("authentication.k8s.io"));
        assert_eq!(token.verbs, ["create"]);
        let json = serde_json::to_value(aggregated(vec!["image.openshift.io"])).expect("json");
        let first = &json["items"][0]["versions"][0]["resources"][0];
        assert_eq!(first["resource"], "imagestreams");
        assert_eq!(first["scope"], "Namespaced");
        assert_eq!(first["responseKind"]["kind"], "ImageStream");
    }
}
