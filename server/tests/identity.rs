//! Identity against a hostile tenant: tokens that mint tokens, lifetimes that overflow, who
//! manages users and groups, names, service-account bindings that outlive their account, the
//! first push to a new namespace, login throttling and its audit, and external sign-in through
//! a real OpenID Connect provider. Every test runs the real server with two real users.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_PASSWORD, TestServer, anonymous, client_with_token, console_session};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ACCESS: &str = "/apis/access.berth.io/v1";
const USERS: &str = "/apis/user.openshift.io/v1";

/// The answer's status and JSON body.
async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The field of the first cause of a Kubernetes `Status` of reason `Invalid`.
fn invalid_field(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    body["details"]["causes"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn create_namespace(client: &reqwest::Client, server: &TestServer, name: &str) {
    let response = client
        .post(server.url("/api/v1/namespaces"))
        .json(&json!({"metadata": {"name": name}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "creating {name}");
}

// ---- item 8 and 13: tokens minting tokens, lifetimes -----------------------------------------

#[tokio::test]
async fn only_a_password_or_the_console_makes_personal_tokens_and_lifetimes_are_checked() {
    let server = TestServer::start();
    let alice_token = server.add_user("alice", "alice-password", &[]);
    let alice = client_with_token(&alice_token);
    let tokens = server.url(&format!("{ACCESS}/personaltokens"));

    // A token (here alice's own) cannot make another, with or without an expiry.
    for body in [
        json!({"metadata": {"name": "forever"}}),
        json!({"metadata": {"name": "month"}, "spec": {"expiresInDays": 30}}),
    ] {
        let (status, refused) = answer(alice.post(&tokens).json(&body).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
        assert!(
            refused["message"].as_str().unwrap().contains("password"),
            "{refused}"
        );
    }
    // Nor a token sent as a Basic password.
    let (status, _) = answer(
        anonymous()
            .post(&tokens)
            .basic_auth("alice", Some(&alice_token))
            .json(&json!({"metadata": {"name": "basic"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The password does, within the checked range of lifetimes; outside it, a field error.
    let with_password = |body: Value| {
        anonymous()
            .post(&tokens)
            .basic_auth("alice", Some("alice-password"))
            .json(&body)
            .send()
    };
    for days in [
        0_u64,
        3651,
        100_000_000,
        4_000_000_000,
        u64::from(u32::MAX) + 1,
    ] {
        let (status, body) = answer(
            with_password(json!({"metadata": {"name": "far"}, "spec": {"expiresInDays": days}}))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(invalid_field(status, &body), "spec.expiresInDays", "{days}");
    }
    let (status, made) = answer(
        with_password(json!({"metadata": {"name": "day"}, "spec": {"expiresInDays": 1}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let day_token = made["status"]["token"].as_str().unwrap().to_owned();
    let day_expiry: chrono::DateTime<chrono::Utc> = made["status"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Names: one grammar, a field error otherwise.
    for name in ["a/b", "nul\u{0}byte", "../../etc", "x".repeat(101).as_str()] {
        let (status, body) = answer(
            with_password(json!({"metadata": {"name": name}}))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(invalid_field(status, &body), "metadata.name", "{name:?}");
    }

    // A service-account token made with a token lives no longer than that token, and a
    // TokenRequest's expirationSeconds is checked before any date is computed.
    create_namespace(&alice, &server, "tenant").await;
    let response = alice
        .post(server.url("/api/v1/namespaces/tenant/serviceaccounts"))
        .json(&json!({"metadata": {"name": "builder"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token_request = server.url("/api/v1/namespaces/tenant/serviceaccounts/builder/token");
    for seconds in [1_u64, 10_000_000_000_000, u64::MAX] {
        let (status, body) = answer(
            alice
                .post(&token_request)
                .json(&json!({"spec": {"expirationSeconds": seconds}}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            invalid_field(status, &body),
            "spec.expirationSeconds",
            "{seconds}"
        );
    }
    let (status, made) = answer(
        client_with_token(&day_token)
            .post(&token_request)
            .json(&json!({"spec": {"expirationSeconds": 30 * 86_400}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let expiry: chrono::DateTime<chrono::Utc> = made["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        expiry <= day_expiry,
        "{expiry} outlives its parent's {day_expiry}"
    );
    // Without an expiry asked, a token's child still ends with it.
    let (status, made) = answer(
        client_with_token(&day_token)
            .post(&token_request)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(
        made["status"]["expirationTimestamp"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        day_expiry
    );

    // The console's token form: a session may make tokens, and a far expiry is a form error,
    // not a panic.
    let (browser, csrf) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    for days in ["4294967295", "100000000", "3651"] {
        let response = browser
            .post(server.url("/console/api/create_token"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "far"),
                ("expires_in_days", days),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{days}: {body}");
        assert!(body.get("Invalid").is_some(), "{body}");
    }
    let response = browser
        .post(server.url("/console/api/create_token"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "laptop"),
            ("expires_in_days", "30"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["secret"].as_str().unwrap().starts_with("berth_"));
}

// ---- item 9: users and groups are the cluster administrators' -------------------------------

#[tokio::test]
async fn a_registry_wide_admin_cannot_manage_users_or_groups() {
    let server = TestServer::start();
    let admin = server.client();
    let mallory_token = server.add_user("mallory", "mallory-password", &[]);
    server.add_user("root", "root-password", &["roots"]);
    let mallory = client_with_token(&mallory_token);
    // The administrator binds cluster-admin to a group, and makes mallory a registry-wide admin.
    for (name, role, kind, subject) in [
        ("roots-cluster-admin", "cluster-admin", "Group", "roots"),
        ("mallory-admin", "admin", "User", "mallory"),
    ] {
        let response = admin
            .post(server.url(&format!("{ACCESS}/rolebindings")))
            .json(
                &json!({"metadata": {"name": name}, "roleRef": {"name": role},
                          "subject": {"kind": kind, "name": subject}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    // Mallory may not add herself to the group bound to cluster-admin, nor list users, groups
    // or the audit log.
    let response = mallory
        .put(server.url(&format!("{USERS}/groups/roots")))
        .json(&json!({"users": ["root", "mallory"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    for path in [
        format!("{USERS}/users"),
        format!("{USERS}/groups"),
        format!("{ACCESS}/auditevents"),
    ] {
        let response = mallory.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let groups: Value = admin
        .get(server.url(&format!("{USERS}/groups")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roots = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "roots")
        .unwrap();
    assert_eq!(roots["users"], json!(["root"]));
    // And she is still no cluster administrator: a binding of cluster-admin is refused.
    let response = mallory
        .post(server.url(&format!("{ACCESS}/rolebindings")))
        .json(&json!({"roleRef": {"name": "cluster-admin"},
                      "subject": {"kind": "User", "name": "mallory"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The cluster administrator manages groups, under one grammar of names.
    for name in [".", "..", "..%2F..%2Fetc", "system:masters", "a%00b"] {
        let (status, body) = answer(
            admin
                .put(server.url(&format!("{USERS}/groups/{name}")))
                .json(&json!({"users": ["root"]}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::NOT_FOUND,
            "{name}: {status} {body}"
        );
    }
    let response = admin
        .put(server.url(&format!("{USERS}/groups/devs")))
        .json(&json!({"users": ["root"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = answer(
        admin
            .post(server.url(&format!("{ACCESS}/rolebindings")))
            .json(&json!({"roleRef": {"name": "viewer"},
                          "subject": {"kind": "Group", "name": "../../etc"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(invalid_field(status, &body), "subject.name");
}
