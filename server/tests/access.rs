//! Identity and access against the running server: the Docker token flow, tokens of every
//! kind, bindings and their limits, anonymous access, namespace creation, the mount rule, the
//! access API and the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    OCI_MANIFEST, TestServer, anonymous, client_with_token, error_code, expect_kube_status, grant,
    image_manifest, put_manifest, sha256,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ACCESS: &str = "/apis/access.berth.io/v1";

async fn push(server: &TestServer, repository: &str, tag: &str) -> String {
    let manifest = image_manifest(server, repository, &format!("{repository}:{tag}")).await;
    let response = put_manifest(server, repository, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    sha256(&manifest)
}

fn header(response: &reqwest::Response, name: &str) -> String {
    common::header(response, name)
}

#[tokio::test]
async fn the_docker_token_flow() {
    let server = TestServer::start();
    push(&server, "team/app", "v1").await;

    // No credentials: a challenge naming the realm, the service and the scope needed.
    let response = anonymous().get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&response, "www-authenticate");
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{}/auth/token\"", server.base)),
        "{challenge}"
    );
    assert!(challenge.contains("service=\"berth\""));
    let response = anonymous()
        .get(server.url("/v2/team/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&response, "www-authenticate").contains("scope=\"repository:team/app:pull\""));
    assert_eq!(error_code(response).await, "UNAUTHORIZED");

    // A viewer asks for pull and push and gets pull only.
    let viewer_token = server.add_user("vera", "vera-password", &[]);
    grant(
        &server,
        "team",
        "viewer",
        json!({"kind": "User", "name": "vera"}),
        None,
    )
    .await;
    let response = anonymous()
        .get(server.url("/auth/token?service=berth&scope=repository:team/app:pull,push"))
        .basic_auth("vera", Some("vera-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    let jwt = token["token"].as_str().unwrap().to_owned();
    assert_eq!(token["access_token"], token["token"]);
    assert!(token["expires_in"].as_u64().unwrap() > 0);
    let claims: Value = {
        use base64::Engine;
        let payload = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["access"][0]["actions"], json!(["pull"]));

    let with_jwt = client_with_token(&jwt);
    let pulled = with_jwt
        .get(server.url("/v2/team/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    // The token does not carry push, and vera may not push at all: denied.
    let pushed = with_jwt
        .post(server.url("/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(pushed).await, "DENIED");
    // The same with her personal token straight on /v2/.
    let pushed = client_with_token(&viewer_token)
        .post(server.url("/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), StatusCode::FORBIDDEN);

    // The token endpoint accepts a token as the password (podman login -u any -p TOKEN).
    let response = anonymous()
        .get(server.url("/auth/token?service=berth&scope=repository:team/app:pull"))
        .basic_auth("anything", Some(&viewer_token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The password grant (containerd).
    let response = anonymous()
        .post(server.url("/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "vera"),
            ("password", "vera-password"),
            ("scope", "repository:team/app:pull"),
            ("service", "berth"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.json::<Value>().await.unwrap()["access_token"].is_string());

    // Bad credentials, and a forged token.
    let response = anonymous()
        .get(server.url("/auth/token?service=berth"))
        .basic_auth("vera", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let forged = format!("{}.{}", &jwt[..jwt.rfind('.').unwrap()], "c2lnbmF0dXJl");
    let response = client_with_token(&forged)
        .get(server.url("/v2/team/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_expire_and_are_revoked_and_logins_are_throttled() {
    let server = TestServer::start();
    let token = server.add_user("tom", "tom-password", &[]);
    let tom = client_with_token(&token);
    let me: Value = tom
        .get(server.url("/apis/user.openshift.io/v1/users/~"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["metadata"]["name"], "tom");

    // A second token (made with the password: a token makes none), listed, then revoked:
    // refused from then on.
    let created: Value = anonymous()
        .post(server.url(&format!("{ACCESS}/personaltokens")))
        .basic_auth("tom", Some("tom-password"))
        .json(&json!({"metadata": {"name": "ci"}, "spec": {"expiresInDays": 30}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = created["status"]["token"].as_str().unwrap().to_owned();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    assert!(created["status"]["expiresAt"].is_string());
    let listed: Value = tom
        .get(server.url(&format!("{ACCESS}/personaltokens")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items.iter().all(|t| t["status"]["token"].is_null()),
        "secrets are shown once"
    );
    let whoami = |token: String| {
        let url = server.url("/apis/user.openshift.io/v1/users/~");
        async move {
            client_with_token(&token)
                .get(url)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(whoami(second.clone()).await, StatusCode::OK);
    let revoked = tom
        .delete(server.url(&format!("{ACCESS}/personaltokens/{uid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(whoami(second.clone()).await, StatusCode::UNAUTHORIZED);
    let response = client_with_token(&second)
        .get(server.url("/v2/_catalog"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Expired: a token of an expiry in the past cannot be made through the API, so the
    // command-line tool makes one of zero days and time passes.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "token",
            "create",
            "--user",
            "tom",
            "--expires-in-days",
            "0",
            "--data-dir",
        ])
        .arg(server.data_dir())
        .output()
        .unwrap();
    assert!(output.status.success());
    let expired = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    // Time passes on purpose: expiry is kept to the second, so a second later the token that
    // expired "now" is past it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(whoami(expired).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        whoami("berth_not-a-token".into()).await,
        StatusCode::UNAUTHORIZED
    );

    // Ten wrong passwords a minute from an address are allowed; then attempts are throttled
    // (each takes a while, in which the budget refills a little: within a few more).
    let mut attempts = 0;
    let throttled = loop {
        attempts += 1;
        let response = anonymous()
            .get(server.url("/auth/token?service=berth"))
            .basic_auth("tom", Some("guess"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS || attempts == 40 {
            break response;
        }
    };
    assert!(attempts > 10, "throttled after {attempts} attempts");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn anonymous_pull_namespace_creation_catalog_and_mount() {
    let server = TestServer::start();
    push(&server, "public/app", "v1").await;
    push(&server, "secret/app", "v1").await;
    grant(
        &server,
        "public",
        "viewer",
        json!({"kind": "Group", "name": "system:unauthenticated"}),
        None,
    )
    .await;
    let response = anonymous()
        .get(server.url("/v2/public/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = anonymous()
        .get(server.url("/v2/secret/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Alice creates her own namespace by pushing, and becomes its admin; she may not push
    // to another's.
    let alice = client_with_token(&server.add_user("alice", "alice-password", &[]));
    let blob = alice
        .post(server.url(&format!(
            "/v2/alice-ns/app/blobs/uploads/?digest={}",
            sha256(b"{}")
        )))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), StatusCode::CREATED);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": [],
    }))
    .unwrap();
    let pushed = alice
        .put(server.url("/v2/alice-ns/app/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let permissions: Value = alice
        .get(server.url(&format!("{ACCESS}/namespaces/alice-ns/permissions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(permissions["role"], "admin");
    let refused = alice
        .post(server.url("/v2/secret/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // The catalog lists only what the caller may pull (what anonymous callers may, she may).
    let catalog: Value = alice
        .get(server.url("/v2/_catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        catalog["repositories"],
        json!(["alice-ns/app", "public/app"])
    );
    let catalog: Value = server
        .client()
        .get(server.url("/v2/_catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        catalog["repositories"],
        json!(["alice-ns/app", "public/app", "secret/app"])
    );

    // Mounting from a stream she cannot pull: an ordinary upload session, nothing revealed.
    let secret_manifest: Value = server
        .client()
        .get(server.url("/v2/secret/app/manifests/v1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let layer = secret_manifest["layers"][0]["digest"].as_str().unwrap();
    let mount = alice
        .post(server.url(&format!(
            "/v2/alice-ns/app/blobs/uploads/?mount={layer}&from=secret/app"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(mount.status(), StatusCode::ACCEPTED);
    let mounted = alice
        .head(server.url(&format!("/v2/alice-ns/app/blobs/{layer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(mounted.status(), StatusCode::NOT_FOUND);
    // From a stream she can pull, the mount happens.
    let public_manifest: Value = anonymous()
        .get(server.url("/v2/public/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let layer = public_manifest["layers"][0]["digest"].as_str().unwrap();
    let mount = alice
        .post(server.url(&format!(
            "/v2/alice-ns/app/blobs/uploads/?mount={layer}&from=public/app"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(mount.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn bindings_service_accounts_and_the_access_api() {
    let server = TestServer::start();
    push(&server, "proj/web", "v1").await;
    push(&server, "proj/db", "v1").await;
    let ed = client_with_token(&server.add_user("ed", "ed-password", &["devs"]));
    let dora = client_with_token(&server.add_user("dora", "dora-password", &[]));

    // A group binding on one stream: ed (in devs) may push web, not db.
    grant(
        &server,
        "proj",
        "editor",
        json!({"kind": "Group", "name": "devs"}),
        Some("web"),
    )
    .await;
    let web = ed
        .post(server.url("/v2/proj/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(web.status(), StatusCode::ACCEPTED);
    let db = ed
        .post(server.url("/v2/proj/db/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(db.status(), StatusCode::FORBIDDEN);
    // The API agrees: web visible, db forbidden, the list holds web only.
    let streams: Value = ed
        .get(server.url("/apis/image.openshift.io/v1/namespaces/proj/imagestreams"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = streams["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
    let status = expect_kube_status(
        ed.get(server.url("/apis/image.openshift.io/v1/namespaces/proj/imagestreams/db")),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("User \"ed\" cannot get"),
        "{status}"
    );
    // Dora sees nothing of proj.
    expect_kube_status(
        dora.get(server.url("/apis/image.openshift.io/v1/namespaces/proj/imagestreams")),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    let namespaces: Value = dora
        .get(server.url("/api/v1/namespaces"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(namespaces["items"], json!([]));

    // Make dora a namespace admin: she may bind viewers, not escalate to cluster-admin, and
    // nobody below admin may bind at all.
    grant(
        &server,
        "proj",
        "admin",
        json!({"kind": "User", "name": "dora"}),
        None,
    )
    .await;
    expect_kube_status(
        ed.post(server.url(&format!("{ACCESS}/namespaces/proj/rolebindings")))
            .json(&json!({"roleRef": {"name": "viewer"}, "subject": {"kind": "User", "name": "dora"}})),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    expect_kube_status(
        dora.post(server.url(&format!("{ACCESS}/rolebindings")))
            .json(&json!({"roleRef": {"name": "cluster-admin"}, "subject": {"kind": "User", "name": "dora"}})),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;

    // A service account with a token, made by the namespace admin, pushing as an editor.
    let created = dora
        .post(server.url("/api/v1/namespaces/proj/serviceaccounts"))
        .json(&json!({"metadata": {"name": "builder"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let token: Value = dora
        .post(server.url("/api/v1/namespaces/proj/serviceaccounts/builder/token"))
        .json(&json!({"spec": {"expirationSeconds": 3600}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["kind"], "TokenRequest");
    let builder = client_with_token(token["status"]["token"].as_str().unwrap());
    let response = builder
        .post(server.url("/v2/proj/db/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = dora
        .post(server.url(&format!("{ACCESS}/namespaces/proj/rolebindings")))
        .json(&json!({"roleRef": {"name": "editor"}, "subject": {"kind": "ServiceAccount", "name": "builder"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = builder
        .post(server.url("/v2/proj/db/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let me: Value = builder
        .get(server.url("/apis/user.openshift.io/v1/users/~"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["metadata"]["name"], "system:serviceaccount:proj:builder");

    // Who can push proj/web, and what may ed do there.
    let who: Value = dora
        .get(server.url(&format!(
            "{ACCESS}/namespaces/proj/whocan?action=push&imageStream=web"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subjects: Vec<String> = who["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "Group:devs",
        "User:dora",
        "User:admin",
        "ServiceAccount:proj:builder",
    ] {
        assert!(
            subjects.contains(&expected.to_owned()),
            "{expected} missing from {subjects:?}"
        );
    }
    let what: Value = dora
        .get(server.url(&format!(
            "{ACCESS}/namespaces/proj/permissions?imageStream=web&subject=User:ed"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(what["role"], "editor");
    assert_eq!(what["actions"], json!(["pull", "push"]));

    // Removing the group binding takes ed's push away.
    let bindings: Value = dora
        .get(server.url(&format!("{ACCESS}/namespaces/proj/rolebindings")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = bindings["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["subject"]["name"] == "devs")
        .unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = dora
        .delete(server.url(&format!("{ACCESS}/namespaces/proj/rolebindings/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let web = ed
        .post(server.url("/v2/proj/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(web.status(), StatusCode::FORBIDDEN);

    // The audit log has the logins, the failed one, tokens, bindings, deletes and the rest.
    let deleted = server
        .client()
        .delete(server.url("/v2/proj/db/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    let _ = anonymous()
        .get(server.url("/auth/token?service=berth"))
        .basic_auth("ed", Some("not-his-password"))
        .send()
        .await
        .unwrap();
    expect_kube_status(
        dora.get(server.url(&format!("{ACCESS}/auditevents"))),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    let audit: Value = server
        .client()
        .get(server.url(&format!("{ACCESS}/auditevents?limit=500")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["items"].as_array().unwrap();
    let seen = |action: &str, outcome: &str| {
        entries
            .iter()
            .any(|e| e["action"] == action && e["outcome"] == outcome)
    };
    for (action, outcome) in [
        ("login-password", "success"),
        ("login-password", "failure"),
        ("token-create", "success"),
        ("binding-create", "success"),
        ("binding-delete", "success"),
        ("serviceaccount-create", "success"),
        ("user-create", "success"),
        ("manifest-delete", "success"),
    ] {
        let actions: Vec<String> = entries
            .iter()
            .map(|e| format!("{} {}", e["action"], e["outcome"]))
            .collect();
        assert!(
            seen(action, outcome),
            "no {action} {outcome} in the audit log: {actions:?}"
        );
    }
}

#[tokio::test]
async fn watches_and_the_event_stream_show_only_what_the_watcher_may_see() {
    use futures_util::StreamExt;
    let server = TestServer::start();
    push(&server, "seen/app", "v1").await;
    push(&server, "hidden/app", "v1").await;
    let viewer = client_with_token(&server.add_user("wendy", "wendy-password", &[]));
    grant(
        &server,
        "seen",
        "viewer",
        json!({"kind": "User", "name": "wendy"}),
        None,
    )
    .await;

    let response = viewer
        .get(server.url("/apis/image.openshift.io/v1/imagestreams?watch=true&resourceVersion=1&timeoutSeconds=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    push(&server, "hidden/app", "v2").await;
    push(&server, "seen/app", "v2").await;
    let body = response.bytes_stream().collect::<Vec<_>>().await;
    let text: String = body
        .into_iter()
        .map(|c| String::from_utf8_lossy(&c.unwrap()).into_owned())
        .collect();
    assert!(text.contains("\"namespace\":\"seen\""), "{text}");
    assert!(!text.contains("\"namespace\":\"hidden\""), "{text}");

    let feed = viewer
        .get(server.url("/console/api/events?after=0"))
        .send()
        .await
        .unwrap();
    let mut stream = feed.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"name\":\"app\",\"reason\":\"push\",\"tag\":\"v2\"") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("\"namespace\":\"seen\""), "{seen}");
    assert!(!seen.contains("\"namespace\":\"hidden\""), "{seen}");
}

#[tokio::test]
async fn users_seeded_from_an_htpasswd_file_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("users.htpasswd");
    let hash = bcrypt::hash("hank-password", 4).unwrap();
    std::fs::write(&htpasswd, format!("# seeded\nhank:{hash}\n")).unwrap();
    let server = TestServer::start_with(&["--htpasswd-file", htpasswd.to_str().unwrap()]);
    let token = common::token_for(&server.base, "hank", "hank-password");
    let me: Value = client_with_token(&token)
        .get(server.url("/apis/user.openshift.io/v1/users/~"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["metadata"]["name"], "hank");
    // The bcrypt hash was replaced by an argon2 one at the first login: it still works.
    common::token_for(&server.base, "hank", "hank-password");
    let users: Value = server
        .client()
        .get(server.url("/apis/user.openshift.io/v1/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hank = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["metadata"]["name"] == "hank")
        .unwrap();
    assert_eq!(hank["identities"][0], "htpasswd:hank");
}

// ---- Kubernetes' access reviews -------------------------------------------------------------

const REVIEWS: &str = "/apis/authorization.k8s.io/v1";

/// The caller's rules in a namespace, from a SelfSubjectRulesReview.
async fn rules_review(server: &TestServer, client: &reqwest::Client, namespace: &str) -> Value {
    let response = client
        .post(server.url(&format!("{REVIEWS}/selfsubjectrulesreviews")))
        .json(&json!({
            "kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": {"namespace": namespace},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let review: Value = response.json().await.unwrap();
    assert_eq!(review["kind"], "SelfSubjectRulesReview");
    assert_eq!(review["spec"]["namespace"], namespace);
    assert_eq!(review["status"]["incomplete"], false);
    assert_eq!(review["status"]["nonResourceRules"], json!([]));
    review
}

/// The rules of a review as `verbs resources [names]` lines, for comparing.
fn rule_lines(review: &Value) -> Vec<String> {
    let join = |value: &Value| {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| i.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    review["status"]["resourceRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            format!(
                "{} {}:{} [{}]",
                join(&rule["verbs"]),
                join(&rule["apiGroups"]),
                join(&rule["resources"]),
                join(&rule["resourceNames"])
            )
        })
        .collect()
}

const PULL_RULE: &str = "get,list,watch image.openshift.io:imagestreams,imagestreamtags,imagestreamimages,imagestreams/layers []";
const PUSH_RULE: &str = "create,update,patch image.openshift.io:imagestreams,imagestreamtags,imagestreamimports,imagestreammappings,imagestreams/layers []";

/// A SelfSubjectAccessReview of `attributes`: (allowed, reason).
async fn access_review(
    server: &TestServer,
    client: &reqwest::Client,
    attributes: Value,
) -> (bool, String) {
    let response = client
        .post(server.url(&format!("{REVIEWS}/selfsubjectaccessreviews")))
        .json(&json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": {"resourceAttributes": attributes},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let review: Value = response.json().await.unwrap();
    assert_eq!(review["kind"], "SelfSubjectAccessReview");
    assert_eq!(
        review["spec"]["resourceAttributes"]["verb"],
        attributes["verb"]
    );
    (
        review["status"]["allowed"].as_bool().unwrap(),
        review["status"]["reason"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn rules_reviews_list_what_each_role_may_do_in_a_namespace() {
    let server = TestServer::start();
    push(&server, "team/app", "v1").await;
    push(&server, "team/db", "v1").await;
    let vera = client_with_token(&server.add_user("vera", "vera-password", &[]));
    let ed = client_with_token(&server.add_user("ed", "ed-password", &[]));
    let ada = client_with_token(&server.add_user("ada", "ada-password", &[]));
    let sam = client_with_token(&server.add_user("sam", "sam-password", &[]));
    for (role, user) in [("viewer", "vera"), ("editor", "ed"), ("admin", "ada")] {
        grant(
            &server,
            "team",
            role,
            json!({"kind": "User", "name": user}),
            None,
        )
        .await;
    }
    // Sam is an editor of app only, and vera an admin of db besides her namespace role.
    grant(
        &server,
        "team",
        "editor",
        json!({"kind": "User", "name": "sam"}),
        Some("app"),
    )
    .await;
    grant(
        &server,
        "team",
        "admin",
        json!({"kind": "User", "name": "vera"}),
        Some("db"),
    )
    .await;

    let viewer = rules_review(&server, &vera, "team").await;
    let viewer_lines = rule_lines(&viewer);
    assert_eq!(viewer_lines[0], PULL_RULE);
    assert_eq!(
        viewer_lines[1..],
        [
            "create,update,patch image.openshift.io:imagestreams,imagestreams/layers [db]",
            "delete image.openshift.io:imagestreams [db]",
        ]
    );
    // Pull only where she holds nothing by name.
    let elsewhere = server.add_user("val", "val-password", &[]);
    grant(
        &server,
        "team",
        "viewer",
        json!({"kind": "User", "name": "val"}),
        None,
    )
    .await;
    let plain_viewer = rules_review(&server, &client_with_token(&elsewhere), "team").await;
    assert_eq!(rule_lines(&plain_viewer), [PULL_RULE]);
    assert!(plain_viewer["status"]["resourceRules"][0]["resourceNames"].is_null());

    let editor = rules_review(&server, &ed, "team").await;
    assert_eq!(rule_lines(&editor), [PULL_RULE, PUSH_RULE]);

    let admin = rule_lines(&rules_review(&server, &ada, "team").await);
    assert_eq!(admin[..2], [PULL_RULE, PUSH_RULE]);
    for expected in [
        "delete image.openshift.io:imagestreams,imagestreamtags []",
        "delete :namespaces []",
        "get,list,create,delete rbac.authorization.k8s.io:rolebindings []",
        "get,list,create,delete :serviceaccounts,secrets []",
    ] {
        assert!(
            admin.contains(&expected.to_owned()),
            "{expected} in {admin:?}"
        );
    }
    // The cluster administrator: the same as a namespace admin, anywhere.
    let root = rule_lines(&rules_review(&server, &server.client(), "anywhere").await);
    assert_eq!(root, admin);

    // Stream-level bindings only: rules on the streams by name.
    let streams = rules_review(&server, &sam, "team").await;
    assert_eq!(
        rule_lines(&streams),
        [
            "get,list,watch image.openshift.io:imagestreams,imagestreams/layers [app]",
            "create,update,patch image.openshift.io:imagestreams,imagestreams/layers [app]",
        ]
    );
    // Nothing elsewhere; anonymous callers get what anonymous may (no 401).
    assert_eq!(
        rule_lines(&rules_review(&server, &sam, "other").await),
        Vec::<String>::new()
    );
    assert_eq!(
        rule_lines(&rules_review(&server, &anonymous(), "team").await),
        Vec::<String>::new()
    );
    grant(
        &server,
        "team",
        "viewer",
        json!({"kind": "Group", "name": "system:unauthenticated"}),
        None,
    )
    .await;
    assert_eq!(
        rule_lines(&rules_review(&server, &anonymous(), "team").await),
        [PULL_RULE]
    );

    // Bad bodies: the field is named.
    let url = server.url(&format!("{REVIEWS}/selfsubjectrulesreviews"));
    for (body, field) in [
        (json!({"spec": {}}), "spec.namespace"),
        (
            json!({"spec": {"namespace": "Not A Namespace"}}),
            "spec.namespace",
        ),
        (json!({"spec": {"namespace": 3}}), "spec.namespace"),
        (json!({"spec": "team"}), "spec"),
    ] {
        let status = expect_kube_status(
            ed.post(&url).json(&body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
        )
        .await;
        assert_eq!(status["details"]["causes"][0]["field"], field, "{status}");
        assert!(status["message"].as_str().unwrap().contains(field));
    }
    let status = expect_kube_status(
        ed.post(&url)
            .json(&json!({"kind": "SelfSubjectAccessReview", "spec": {"namespace": "team"}})),
        StatusCode::BAD_REQUEST,
        "BadRequest",
    )
    .await;
    assert!(
        status["message"].as_str().unwrap().starts_with("kind "),
        "{status}"
    );
    expect_kube_status(
        ed.post(&url)
            .header("content-type", "application/json")
            .body("{not json"),
        StatusCode::BAD_REQUEST,
        "BadRequest",
    )
    .await;
}

#[tokio::test]
async fn access_reviews_decide_namespace_creation_and_pushes() {
    let server = TestServer::start();
    push(&server, "team/app", "v1").await;
    push(&server, "team/db", "v1").await;
    let sam = client_with_token(&server.add_user("sam", "sam-password", &[]));
    let vera = client_with_token(&server.add_user("vera", "vera-password", &[]));
    let ada = client_with_token(&server.add_user("ada", "ada-password", &[]));
    grant(
        &server,
        "team",
        "editor",
        json!({"kind": "User", "name": "sam"}),
        Some("app"),
    )
    .await;
    grant(
        &server,
        "team",
        "viewer",
        json!({"kind": "User", "name": "vera"}),
        None,
    )
    .await;
    grant(
        &server,
        "team",
        "admin",
        json!({"kind": "User", "name": "ada"}),
        None,
    )
    .await;

    // Creating namespaces: signed-in users may (the default), anonymous callers may not.
    let create = json!({"verb": "create", "group": "", "resource": "namespaces"});
    let (allowed, reason) = access_review(&server, &sam, create.clone()).await;
    assert!(allowed, "{reason}");
    let (allowed, reason) = access_review(&server, &anonymous(), create).await;
    assert!(!allowed);
    assert!(reason.ends_with("refused"), "{reason}");

    // Pushing (OpenShift's `update imagestreams/layers`): sam on app, not on db; vera on
    // neither, though she may pull.
    let layers = |verb: &str, name: &str| {
        json!({
            "namespace": "team", "verb": verb, "group": "image.openshift.io",
            "resource": "imagestreams", "subresource": "layers", "name": name,
        })
    };
    let (allowed, reason) = access_review(&server, &sam, layers("update", "app")).await;
    assert!(allowed, "{reason}");
    assert!(reason.contains("editor role on team/app"), "{reason}");
    let (allowed, reason) = access_review(&server, &sam, layers("update", "db")).await;
    assert!(!allowed);
    assert_eq!(
        reason,
        "User \"sam\" holds no role on team/db; push needs editor: refused"
    );
    let (allowed, _) = access_review(&server, &vera, layers("update", "app")).await;
    assert!(!allowed);
    let (allowed, _) = access_review(&server, &vera, layers("get", "app")).await;
    assert!(allowed);
    let (allowed, _) = access_review(&server, &anonymous(), layers("get", "app")).await;
    assert!(!allowed);

    // Deleting the namespace: its admin may, a viewer may not.
    let delete = json!({"verb": "delete", "group": "", "resource": "namespaces", "name": "team"});
    assert!(access_review(&server, &ada, delete.clone()).await.0);
    assert!(!access_review(&server, &vera, delete).await.0);
    // Tags name their stream.
    let tag = json!({
        "namespace": "team", "verb": "update", "group": "image.openshift.io",
        "resource": "imagestreamtags", "name": "app:v2",
    });
    assert!(access_review(&server, &sam, tag).await.0);

    // Unknown resources: refused, with the reason.
    let (allowed, reason) = access_review(
        &server,
        &ada,
        json!({"namespace": "team", "verb": "get", "group": "", "resource": "pods"}),
    )
    .await;
    assert!(!allowed);
    assert!(reason.contains("\"pods\""), "{reason}");

    // Bad bodies name the field.
    let url = server.url(&format!("{REVIEWS}/selfsubjectaccessreviews"));
    for (body, field) in [
        (json!({"spec": {}}), "spec.resourceAttributes"),
        (
            json!({"spec": {"resourceAttributes": {"resource": "imagestreams"}}}),
            "spec.resourceAttributes.verb",
        ),
        (
            json!({"spec": {"resourceAttributes": {"verb": "get", "name": 7}}}),
            "spec.resourceAttributes.name",
        ),
    ] {
        let status = expect_kube_status(
            sam.post(&url).json(&body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
        )
        .await;
        assert_eq!(status["details"]["causes"][0]["field"], field, "{status}");
    }
}
