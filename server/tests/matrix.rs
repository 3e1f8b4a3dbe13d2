//! The authorization matrix, generated: every subject kind x role x binding scope x action x
//! surface, each asserted allowed or denied against a model written here, independently of the
//! server's decision function.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{
    OCI_MANIFEST, TestServer, anonymous, client_with_token, expect_status, image_manifest,
    put_manifest,
};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    User,
    GroupMember,
    ServiceAccount,
    Anonymous,
    AllAuthenticated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    Namespace,
    Stream,
    OtherStream,
    OtherNamespace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Action {
    Pull,
    Push,
    Delete,
    ManageAccess,
    /// Reading the namespace's `ResourceQuota`s.
    ReadQuotas,
    /// Changing them: no namespace role allows it (cluster administrators only).
    ChangeQuotas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Surface {
    Registry,
    Api,
    Console,
    Events,
}

const KINDS: [Kind; 5] = [
    Kind::User,
    Kind::GroupMember,
    Kind::ServiceAccount,
    Kind::Anonymous,
    Kind::AllAuthenticated,
];
const ROLES: [Option<&str>; 4] = [None, Some("viewer"), Some("editor"), Some("admin")];
const SCOPES: [Scope; 4] = [
    Scope::Namespace,
    Scope::Stream,
    Scope::OtherStream,
    Scope::OtherNamespace,
];
const ACTIONS: [Action; 6] = [
    Action::Pull,
    Action::Push,
    Action::Delete,
    Action::ManageAccess,
    Action::ReadQuotas,
    Action::ChangeQuotas,
];

/// The model: a role allows its actions and those of the roles below it, on the namespace it
/// is bound to or the stream it names; nowhere else. Quotas belong to the namespace: a role
/// on one stream does not read them, and no namespace role changes them.
fn expected(role: Option<&str>, scope: Scope, action: Action) -> bool {
    let rank = |role: &str| match role {
        "viewer" => 1,
        "editor" => 2,
        "admin" => 3,
        _ => 0,
    };
    let needed = match action {
        Action::Pull | Action::ReadQuotas => 1,
        Action::Push => 2,
        Action::Delete | Action::ManageAccess => 3,
        Action::ChangeQuotas => return false,
    };
    let applies = match action {
        Action::ReadQuotas => scope == Scope::Namespace,
        _ => matches!(scope, Scope::Namespace | Scope::Stream),
    };
    role.is_some_and(|role| applies && rank(role) >= needed)
}

/// Which actions a surface offers.
fn offers(surface: Surface, action: Action) -> bool {
    let quotas = matches!(action, Action::ReadQuotas | Action::ChangeQuotas);
    match surface {
        Surface::Registry => action != Action::ManageAccess && !quotas,
        Surface::Api => true,
        Surface::Console | Surface::Events => action == Action::Pull,
    }
}

struct Case {
    kind: Kind,
    role: Option<&'static str>,
    scope: Scope,
    namespace: String,
    /// The caller's token; `None` for the anonymous caller.
    token: Option<String>,
}

/// The tag the registry's delete removes, the one the API's delete removes, and the spec tag
/// the API's push updates: each case's target stream has all three, so an allowed action
/// acts on something that exists.
const REGISTRY_DELETED: &str = "registry-deleted";
const API_DELETED: &str = "api-deleted";
const API_RETAGGED: &str = "api-retagged";

/// The quota each case's namespace has, and the body of a change to it (the same limit, so
/// that an allowed change would leave it as it was).
fn quota() -> Value {
    json!({"metadata": {"name": "registry"}, "spec": {"hard": {"openshift.io/imagestreams": 10}}})
}

/// The body of `oc tag target:v1 target:api-retagged`.
fn retag() -> Value {
    json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "target:v1"}}})
}

/// Pushes one image to `repository` as `v1` and under `more` tags.
async fn push(server: &TestServer, repository: &str, more: &[&str]) {
    let manifest = image_manifest(server, repository, repository).await;
    for tag in std::iter::once("v1").chain(more.iter().copied()) {
        let response = put_manifest(server, repository, tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{repository}:{tag}");
    }
}

async fn admin_post(server: &TestServer, path: &str, body: Value) -> Value {
    let response = server.post(path).json(&body).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {body}");
    body
}

/// What a request answered, as far as the matrix judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    /// On the surfaces that list streams: whether the target stream was listed.
    listed: Option<bool>,
}

/// Whether a surface answers with a list of the namespace's streams (filtered by what the
/// caller may see) rather than with one object.
fn lists(surface: Surface) -> bool {
    matches!(surface, Surface::Console | Surface::Events)
}

/// The status an allowed action answers on each surface; the requests in [`attempt`] act on
/// objects that exist, so anything else (a 404 or 422 included) is a failure.
fn allowed_status(surface: Surface, action: Action) -> StatusCode {
    match (surface, action) {
        (Surface::Registry, Action::Pull) => StatusCode::OK,
        // An upload session is opened; a manifest deletion is accepted.
        (Surface::Registry, Action::Push | Action::Delete) => StatusCode::ACCEPTED,
        (Surface::Api | Surface::Console | Surface::Events, _) => StatusCode::OK,
        (Surface::Registry, _) => unreachable!("not offered"),
    }
}

/// The status a refused action answers: the registry challenges a caller without credentials
/// (401, so that clients sign in) and refuses everyone else (403); the API and the console
/// refuse every caller with 403, `system:anonymous` included, as Kubernetes does.
fn refused_status(kind: Kind, surface: Surface) -> StatusCode {
    match (surface, kind) {
        (Surface::Registry, Kind::Anonymous) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    }
}

/// The model's answer for one case on one surface.
fn expected_answer(case: &Case, surface: Surface, action: Action) -> Answer {
    let listed = lists(surface).then_some(true);
    if expected(case.role, case.scope, action) {
        return Answer {
            status: allowed_status(surface, action),
            listed,
        };
    }
    // A role on another stream of the namespace lets the caller list the namespace's
    // streams: the list answers, without the target.
    if lists(surface) && case.role.is_some() && case.scope == Scope::OtherStream {
        return Answer {
            status: StatusCode::OK,
            listed: Some(false),
        };
    }
    // A watch of a namespace's streams is refused as their list is (a Kubernetes API server
    // answers both 403), not answered with an empty stream.
    Answer {
        status: refused_status(case.kind, surface),
        listed: None,
    }
}

/// Sends the request that does `action` on `surface` as the case's caller, on the case's
/// target stream.
async fn attempt(server: &TestServer, case: &Case, surface: Surface, action: Action) -> Answer {
    let client = match &case.token {
        Some(token) => client_with_token(token),
        None => anonymous(),
    };
    let ns = &case.namespace;
    let api = format!("/apis/image.openshift.io/v1/namespaces/{ns}");
    let request = match (surface, action) {
        (Surface::Registry, Action::Pull) => {
            client.get(server.url(&format!("/v2/{ns}/target/manifests/v1")))
        }
        (Surface::Registry, Action::Push) => {
            client.post(server.url(&format!("/v2/{ns}/target/blobs/uploads/")))
        }
        (Surface::Registry, Action::Delete) => {
            client.delete(server.url(&format!("/v2/{ns}/target/manifests/{REGISTRY_DELETED}")))
        }
        (Surface::Api, Action::Pull) => {
            client.get(server.url(&format!("{api}/imagestreams/target")))
        }
        (Surface::Api, Action::Push) => client
            .put(server.url(&format!("{api}/imagestreamtags/target:{API_RETAGGED}")))
            .json(&retag()),
        (Surface::Api, Action::Delete) => {
            client.delete(server.url(&format!("{api}/imagestreamtags/target:{API_DELETED}")))
        }
        (Surface::Api, Action::ManageAccess) => client.get(server.url(&format!(
            "/apis/access.berth.io/v1/namespaces/{ns}/rolebindings?imageStream=target"
        ))),
        (Surface::Api, Action::ReadQuotas) => {
            client.get(server.url(&format!("/api/v1/namespaces/{ns}/resourcequotas/registry")))
        }
        (Surface::Api, Action::ChangeQuotas) => client
            .put(server.url(&format!("/api/v1/namespaces/{ns}/resourcequotas/registry")))
            .json(&quota()),
        // The namespace's streams as the console lists them.
        (Surface::Console, Action::Pull) => client.get(server.url(&format!(
            "/console/api/streams?namespace={ns}&filter=&sort=name&offset=0"
        ))),
        (Surface::Events, Action::Pull) => {
            client.get(server.url(&format!("{api}/imagestreams?watch=true&timeoutSeconds=1")))
        }
        _ => unreachable!("surfaces offer only their actions"),
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    let listed = match surface {
        _ if !lists(surface) || !status.is_success() => None,
        Surface::Console => {
            let page: Value = serde_json::from_str(&body).unwrap();
            Some(
                page["streams"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["name"] == "target"),
            )
        }
        _ => Some(body.contains("\"name\":\"target\"")),
    };
    if surface == Surface::Console && !status.is_success() {
        let page: Value = serde_json::from_str(&body).unwrap();
        assert!(page["Forbidden"].is_string(), "{page}");
    }
    Answer { status, listed }
}

#[tokio::test]
async fn every_allow_and_every_deny() {
    let server = TestServer::start();
    let user_token = server.add_user("matrix-user", "matrix-password", &[]);
    let member_token = server.add_user("matrix-member", "matrix-password", &["matrix-group"]);
    let plain_token = server.add_user("matrix-plain", "matrix-password", &[]);

    let mut cases = Vec::new();
    for kind in KINDS {
        for role in ROLES {
            for scope in SCOPES {
                let i = cases.len();
                let namespace = format!("m{i}");
                cases.push(Case {
                    kind,
                    role,
                    scope,
                    namespace,
                    token: None,
                });
            }
        }
    }

    // Each case has its own namespace with two streams (the target with the tags its actions
    // act on), and another namespace for the "elsewhere" binding.
    for case in &mut cases {
        let ns = case.namespace.clone();
        push(
            &server,
            &format!("{ns}/target"),
            &[REGISTRY_DELETED, API_DELETED],
        )
        .await;
        push(&server, &format!("{ns}/other"), &[]).await;
        push(&server, &format!("{ns}-x/target"), &[]).await;
        expect_status(server.put(&format!(
                "/apis/image.openshift.io/v1/namespaces/{ns}/imagestreamtags/target:{API_RETAGGED}"
            ))
            .json(&retag()), StatusCode::CREATED).await;
        admin_post(
            &server,
            &format!("/api/v1/namespaces/{ns}/resourcequotas"),
            quota(),
        )
        .await;
        let subject = match case.kind {
            Kind::User => json!({"kind": "User", "name": "matrix-user"}),
            Kind::GroupMember => json!({"kind": "Group", "name": "matrix-group"}),
            Kind::ServiceAccount => {
                admin_post(
                    &server,
                    &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                    json!({"metadata": {"name": "robot"}}),
                )
                .await;
                let token = admin_post(
                    &server,
                    &format!("/api/v1/namespaces/{ns}/serviceaccounts/robot/token"),
                    json!({}),
                )
                .await;
                case.token = Some(token["status"]["token"].as_str().unwrap().to_owned());
                json!({"kind": "ServiceAccount", "name": "robot", "namespace": ns})
            }
            Kind::Anonymous => json!({"kind": "Group", "name": "system:unauthenticated"}),
            Kind::AllAuthenticated => json!({"kind": "Group", "name": "system:authenticated"}),
        };
        case.token = match case.kind {
            Kind::User => Some(user_token.clone()),
            Kind::GroupMember => Some(member_token.clone()),
            Kind::AllAuthenticated => Some(plain_token.clone()),
            Kind::Anonymous => None,
            Kind::ServiceAccount => case.token.take(),
        };
        let Some(role) = case.role else { continue };
        let (binding_namespace, stream) = match case.scope {
            Scope::Namespace => (ns.clone(), None),
            Scope::Stream => (ns.clone(), Some("target")),
            Scope::OtherStream => (ns.clone(), Some("other")),
            Scope::OtherNamespace => (format!("{ns}-x"), None),
        };
        let mut body = json!({"roleRef": {"name": role}, "subject": subject});
        if let Some(stream) = stream {
            body["imageStream"] = json!(stream);
        }
        admin_post(
            &server,
            &format!("/apis/access.berth.io/v1/namespaces/{binding_namespace}/rolebindings"),
            body,
        )
        .await;
    }

    // Every (case, surface, action) the surfaces offer, asserted.
    let surfaces = [
        Surface::Registry,
        Surface::Api,
        Surface::Console,
        Surface::Events,
    ];
    let mut checks = Vec::new();
    for case in &cases {
        for surface in surfaces {
            for action in ACTIONS.into_iter().filter(|a| offers(surface, *a)) {
                checks.push((case, surface, action));
            }
        }
    }
    let mut failures = Vec::new();
    let mut tally: HashMap<bool, usize> = HashMap::new();
    for chunk in checks.chunks(64) {
        let results = join_all(
            chunk
                .iter()
                .map(|(case, surface, action)| attempt(&server, case, *surface, *action)),
        )
        .await;
        for ((case, surface, action), got) in chunk.iter().zip(results) {
            let want = expected_answer(case, *surface, *action);
            *tally
                .entry(expected(case.role, case.scope, *action))
                .or_default() += 1;
            if got != want {
                failures.push(format!(
                    "{:?} as {:?} bound {:?}: {surface:?} {action:?} answered {got:?}, expected {want:?}",
                    case.kind, case.role, case.scope,
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} checks wrong:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n")
    );
    // An allowed delete removed its tag; a refused one changed nothing.
    for case in &cases {
        let ns = &case.namespace;
        let want = if expected(case.role, case.scope, Action::Delete) {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        for tag in [REGISTRY_DELETED, API_DELETED] {
            let path = format!("/v2/{ns}/target/manifests/{tag}");
            let got = server.get(&path).send().await.unwrap();
            assert_eq!(got.status(), want, "{path}");
        }
    }
    // The matrix holds both answers in numbers (a matrix of only denials would prove little).
    assert!(tally[&true] > 100 && tally[&false] > 100, "{tally:?}");
}
