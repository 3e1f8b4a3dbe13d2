//! The authorization matrix, generated: every subject kind x role x binding scope x action x
//! surface, each asserted allowed or denied against a model written here, independently of the
//! server's decision function.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{
    OCI_MANIFEST, TestServer, anonymous, client_with_token, image_manifest, put_manifest,
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
const ACTIONS: [Action; 4] = [
    Action::Pull,
    Action::Push,
    Action::Delete,
    Action::ManageAccess,
];

/// The model: a role allows its actions and those of the roles below it, on the namespace it
/// is bound to or the stream it names; nowhere else.
fn expected(role: Option<&str>, scope: Scope, action: Action) -> bool {
    let rank = |role: &str| match role {
        "viewer" => 1,
        "editor" => 2,
        "admin" => 3,
        _ => 0,
    };
    let needed = match action {
        Action::Pull => 1,
        Action::Push => 2,
        Action::Delete | Action::ManageAccess => 3,
    };
    let applies = matches!(scope, Scope::Namespace | Scope::Stream);
    role.is_some_and(|role| applies && rank(role) >= needed)
}

/// Which actions a surface offers.
fn offers(surface: Surface, action: Action) -> bool {
    match surface {
        Surface::Registry => action != Action::ManageAccess,
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

async fn push(server: &TestServer, repository: &str) {
    let manifest = image_manifest(server, repository, repository).await;
    let response = put_manifest(server, repository, "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn admin_post(server: &TestServer, path: &str, body: Value) -> Value {
    let response = server
        .client()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {body}");
    body
}

/// Whether a request succeeded by its status: refusals are 401 and 403 only.
fn allowed(surface: Surface, action: Action, status: StatusCode) -> bool {
    assert!(
        !status.is_server_error(),
        "{surface:?} {action:?} answered {status}"
    );
    !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
}

async fn attempt(server: &TestServer, case: &Case, surface: Surface, action: Action) -> bool {
    let client = match &case.token {
        Some(token) => client_with_token(token),
        None => anonymous(),
    };
    let ns = &case.namespace;
    let api = format!("/apis/image.openshift.io/v1/namespaces/{ns}");
    match (surface, action) {
        (Surface::Registry, Action::Pull) => {
            let status = client
                .get(server.url(&format!("/v2/{ns}/target/manifests/v1")))
                .send()
                .await
                .unwrap()
                .status();
            allowed(surface, action, status)
        }
        (Surface::Registry, Action::Push) => {
            let status = client
                .post(server.url(&format!("/v2/{ns}/target/blobs/uploads/")))
                .send()
                .await
                .unwrap()
                .status();
            allowed(surface, action, status)
        }
        (Surface::Registry, Action::Delete) => {
            // A tag that does not exist: allowed is 404, refused 401/403; nothing changes.
            let status = client
                .delete(server.url(&format!("/v2/{ns}/target/manifests/absent")))
                .send()
                .await
                .unwrap()
                .status();
            allowed(surface, action, status)
        }
        (Surface::Api, Action::Pull) => {
            let status = client
                .get(server.url(&format!("{api}/imagestreams/target")))
                .send()
                .await
                .unwrap()
                .status();
            allowed(surface, action, status)
        }
        (Surface::Api, Action::Push) => {
            // Decided before the body is checked: allowed is 422 (the body is invalid).
            let status = client
                .put(server.url(&format!("{api}/imagestreamtags/target:new")))
                .json(&json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "target:v1"}, "importPolicy": {"importMode": "Invalid"}}}))
                .send()
                .await
                .unwrap()
                .status();
            allowed(surface, action, status)
        }
        (Surface::Api, Action::Delete) => {
            let status = client
                .delete(server.url(&format!("{api}/imagestreamtags/target:absent")))
                .send()
                .await
                .unwrap()
                .status();
            allowed(surface, action, status)
        }
        (Surface::Api, Action::ManageAccess) => {
            let status = client
                .get(server.url(&format!(
                    "/apis/access.berth.io/v1/namespaces/{ns}/rolebindings?imageStream=target"
                )))
                .send()
                .await
                .unwrap()
                .status();
            allowed(surface, action, status)
        }
        (Surface::Console, Action::Pull) => {
            // The namespace's streams as the console lists them: refused, or listed without
            // the target when only another stream may be seen.
            let response = client
                .get(server.url(&format!(
                    "/console/api/streams?namespace={ns}&filter=&sort=name&offset=0"
                )))
                .send()
                .await
                .unwrap();
            let ok = response.status().is_success();
            let page: Value = response.json().await.unwrap();
            if !ok {
                assert!(page["Forbidden"].is_string(), "{page}");
                return false;
            }
            page["streams"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == "target")
        }
        (Surface::Events, Action::Pull) => {
            let body = client
                .get(server.url(&format!("{api}/imagestreams?watch=true&timeoutSeconds=1")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            body.contains("\"name\":\"target\"")
        }
        _ => unreachable!("surfaces offer only their actions"),
    }
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

    // Each case has its own namespace with two streams, and another namespace for the
    // "elsewhere" binding.
    for case in &mut cases {
        let ns = case.namespace.clone();
        push(&server, &format!("{ns}/target")).await;
        push(&server, &format!("{ns}/other")).await;
        push(&server, &format!("{ns}-x/target")).await;
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
            let want = expected(case.role, case.scope, *action);
            *tally.entry(want).or_default() += 1;
            if got != want {
                failures.push(format!(
                    "{:?} as {:?} bound {:?}: {surface:?} {action:?} was {}, expected {}",
                    case.kind,
                    case.role,
                    case.scope,
                    if got { "allowed" } else { "denied" },
                    if want { "allowed" } else { "denied" }
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
    // The matrix holds both answers in numbers (a matrix of only denials would prove little).
    assert!(tally[&true] > 100 && tally[&false] > 100, "{tally:?}");
}
