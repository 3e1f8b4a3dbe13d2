//! Identity and access against the running server: the Docker token flow, tokens of every
//! kind, bindings and their limits, anonymous access, namespace creation, the mount rule, the
//! access API and the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    OCI_MANIFEST, TestServer, anonymous, bind, client_with_token, error_code, expect_json,
    expect_kube_status, expect_status, grant, grant_user, grant_user_on, header, item_names,
    json_of, push_image, sha256, start_upload_as, status_with_token, whoami,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ACCESS: &str = "/apis/access.berth.io/v1";

/// Pushes an image of its own to `repository:tag`.
async fn push(server: &TestServer, repository: &str, tag: &str) {
    push_image(server, repository, tag, &format!("{repository}:{tag}")).await;
}

#[tokio::test]
async fn the_docker_token_flow() {
    let server = TestServer::start();
    push(&server, "team/app", "v1").await;

    // No credentials: a challenge naming the realm, the service and the scope needed.
    let response = expect_status(
        anonymous().get(server.url("/v2/")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let challenge = header(&response, "www-authenticate");
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{}/auth/token\"", server.base)),
        "{challenge}"
    );
    assert!(challenge.contains("service=\"berth\""));
    let response = expect_status(
        anonymous().get(server.url("/v2/team/app/manifests/v1")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(header(&response, "www-authenticate").contains("scope=\"repository:team/app:pull\""));
    assert_eq!(error_code(response).await, "UNAUTHORIZED");

    // A viewer asks for pull and push and gets pull only.
    let viewer_token = server.add_user("vera", "vera-password", &[]);
    grant_user(&server, "team", "viewer", "vera").await;
    let token = expect_json(
        anonymous()
            .get(server.url("/auth/token?service=berth&scope=repository:team/app:pull,push"))
            .basic_auth("vera", Some("vera-password")),
        StatusCode::OK,
    )
    .await;
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
    expect_status(
        with_jwt.get(server.url("/v2/team/app/manifests/v1")),
        StatusCode::OK,
    )
    .await;
    // The token does not carry push, and vera may not push at all: denied.
    let pushed = start_upload_as(&with_jwt, &server, "team/app").await;
    assert_eq!(pushed.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(pushed).await, "DENIED");
    // The same with her personal token straight on /v2/.
    assert_eq!(
        start_upload_as(&client_with_token(&viewer_token), &server, "team/app")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // A valid token without push, whose holder may push: 403 `insufficient_scope` with the
    // scope to ask for (RFC 6750 3.1), on which clients such as Python's oras ask again.
    let pull_only = expect_json(
        anonymous()
            .get(server.url("/auth/token?service=berth&scope=repository:team/app:pull"))
            .basic_auth("admin", Some(common::ADMIN_PASSWORD)),
        StatusCode::OK,
    )
    .await;
    let refused = start_upload_as(
        &client_with_token(pull_only["token"].as_str().unwrap()),
        &server,
        "team/app",
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = header(&refused, "www-authenticate");
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert!(
        challenge.contains("scope=\"repository:team/app:pull,push\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert_eq!(error_code(refused).await, "DENIED");
    // Vera's refusal above is a plain denial: no new token would help her.
    let denied = start_upload_as(&with_jwt, &server, "team/app").await;
    assert!(denied.headers().get("www-authenticate").is_none());

    // The token endpoint accepts a token as the password (podman login -u any -p TOKEN).
    expect_status(
        anonymous()
            .get(server.url("/auth/token?service=berth&scope=repository:team/app:pull"))
            .basic_auth("anything", Some(&viewer_token)),
        StatusCode::OK,
    )
    .await;
    // The password grant (containerd).
    let granted = expect_json(
        anonymous().post(server.url("/auth/token")).form(&[
            ("grant_type", "password"),
            ("username", "vera"),
            ("password", "vera-password"),
            ("scope", "repository:team/app:pull"),
            ("service", "berth"),
        ]),
        StatusCode::OK,
    )
    .await;
    assert!(granted["access_token"].is_string());

    // Bad credentials, and a forged token.
    expect_status(
        anonymous()
            .get(server.url("/auth/token?service=berth"))
            .basic_auth("vera", Some("wrong")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let forged = format!("{}.{}", &jwt[..jwt.rfind('.').unwrap()], "c2lnbmF0dXJl");
    expect_status(
        client_with_token(&forged).get(server.url("/v2/team/app/manifests/v1")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn tokens_expire_and_are_revoked_and_logins_are_throttled() {
    let server = TestServer::start();
    let token = server.add_user("tom", "tom-password", &[]);
    let tom = client_with_token(&token);
    let me = whoami(&tom, &server).await;
    assert_eq!(me["metadata"]["name"], "tom");

    // A second token (made with the password: a token makes none), listed, then revoked:
    // refused from then on.
    let created = json_of(
        anonymous()
            .post(server.url(&format!("{ACCESS}/personaltokens")))
            .basic_auth("tom", Some("tom-password"))
            .json(&json!({"metadata": {"name": "ci"}, "spec": {"expiresInDays": 30}})),
    )
    .await;
    let second = created["status"]["token"].as_str().unwrap().to_owned();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    assert!(created["status"]["expiresAt"].is_string());
    let listed = json_of(tom.get(server.url(&format!("{ACCESS}/personaltokens")))).await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items.iter().all(|t| t["status"]["token"].is_null()),
        "secrets are shown once"
    );
    let me = server.url("/apis/user.openshift.io/v1/users/~");
    assert_eq!(status_with_token(&second, &me).await, StatusCode::OK);
    expect_status(
        tom.delete(server.url(&format!("{ACCESS}/personaltokens/{uid}"))),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        status_with_token(&second, &me).await,
        StatusCode::UNAUTHORIZED
    );
    expect_status(
        client_with_token(&second).get(server.url("/v2/_catalog")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // Expired: a token of an expiry in the past cannot be made through the API, so the
    // command-line tool makes one of zero days and time passes.
    let output = server
        .command(&["token", "create", "--user", "tom", "--expires-in-days", "0"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let expired = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    // Time passes on purpose: expiry is kept to the second, so a second later the token that
    // expired "now" is past it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        status_with_token(&expired, &me).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_with_token("berth_not-a-token", &me).await,
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
    expect_status(
        anonymous().get(server.url("/v2/public/app/manifests/v1")),
        StatusCode::OK,
    )
    .await;
    expect_status(
        anonymous().get(server.url("/v2/secret/app/manifests/v1")),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Alice creates her own namespace by pushing, and becomes its admin; she may not push
    // to another's.
    let alice = server.user("alice");
    expect_status(
        alice
            .post(server.url(&format!(
                "/v2/alice-ns/app/blobs/uploads/?digest={}",
                sha256(b"{}")
            )))
            .body("{}"),
        StatusCode::CREATED,
    )
    .await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": [],
    }))
    .unwrap();
    expect_status(
        alice
            .put(server.url("/v2/alice-ns/app/manifests/v1"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone()),
        StatusCode::CREATED,
    )
    .await;
    let permissions =
        json_of(alice.get(server.url(&format!("{ACCESS}/namespaces/alice-ns/permissions")))).await;
    assert_eq!(permissions["role"], "admin");
    assert_eq!(
        start_upload_as(&alice, &server, "secret/app")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // The catalog lists only what the caller may pull (what anonymous callers may, she may).
    let catalog = json_of(alice.get(server.url("/v2/_catalog"))).await;
    assert_eq!(
        catalog["repositories"],
        json!(["alice-ns/app", "public/app"])
    );
    let catalog = json_of(server.get("/v2/_catalog")).await;
    assert_eq!(
        catalog["repositories"],
        json!(["alice-ns/app", "public/app", "secret/app"])
    );

    // Mounting from a stream she cannot pull: an ordinary upload session, nothing revealed.
    let secret_manifest = json_of(server.get("/v2/secret/app/manifests/v1")).await;
    let layer = secret_manifest["layers"][0]["digest"].as_str().unwrap();
    expect_status(
        alice.post(server.url(&format!(
            "/v2/alice-ns/app/blobs/uploads/?mount={layer}&from=secret/app"
        ))),
        StatusCode::ACCEPTED,
    )
    .await;
    expect_status(
        alice.head(server.url(&format!("/v2/alice-ns/app/blobs/{layer}"))),
        StatusCode::NOT_FOUND,
    )
    .await;
    // From a stream she can pull, the mount happens.
    let public_manifest = json_of(
        anonymous()
            .get(server.url("/v2/public/app/manifests/v1"))
            .header("accept", OCI_MANIFEST),
    )
    .await;
    let layer = public_manifest["layers"][0]["digest"].as_str().unwrap();
    expect_status(
        alice.post(server.url(&format!(
            "/v2/alice-ns/app/blobs/uploads/?mount={layer}&from=public/app"
        ))),
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn bindings_service_accounts_and_the_access_api() {
    let server = TestServer::start();
    push(&server, "proj/web", "v1").await;
    push(&server, "proj/db", "v1").await;
    let ed = client_with_token(&server.add_user("ed", "ed-password", &["devs"]));
    let dora = server.user("dora");

    // A group binding on one stream: ed (in devs) may push web, not db.
    grant(
        &server,
        "proj",
        "editor",
        json!({"kind": "Group", "name": "devs"}),
        Some("web"),
    )
    .await;
    assert_eq!(
        start_upload_as(&ed, &server, "proj/web").await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        start_upload_as(&ed, &server, "proj/db").await.status(),
        StatusCode::FORBIDDEN
    );
    // The API agrees: web visible, db forbidden, the list holds web only.
    let streams =
        json_of(ed.get(server.url("/apis/image.openshift.io/v1/namespaces/proj/imagestreams")))
            .await;
    assert_eq!(item_names(&streams), ["web"]);
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
    let namespaces = json_of(dora.get(server.url("/api/v1/namespaces"))).await;
    assert_eq!(namespaces["items"], json!([]));

    // Make dora a namespace admin: she may bind viewers, not escalate to cluster-admin, and
    // nobody below admin may bind at all.
    grant_user(&server, "proj", "admin", "dora").await;
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
    expect_status(
        dora.post(server.url("/api/v1/namespaces/proj/serviceaccounts"))
            .json(&json!({"metadata": {"name": "builder"}})),
        StatusCode::CREATED,
    )
    .await;
    let token = json_of(
        dora.post(server.url("/api/v1/namespaces/proj/serviceaccounts/builder/token"))
            .json(&json!({"spec": {"expirationSeconds": 3600}})),
    )
    .await;
    assert_eq!(token["kind"], "TokenRequest");
    let builder = client_with_token(token["status"]["token"].as_str().unwrap());
    assert_eq!(
        start_upload_as(&builder, &server, "proj/db").await.status(),
        StatusCode::FORBIDDEN
    );
    let builder_account = json!({"kind": "ServiceAccount", "name": "builder"});
    assert_eq!(
        bind(&dora, &server, "proj", "editor", builder_account, None).await,
        StatusCode::CREATED
    );
    assert_eq!(
        start_upload_as(&builder, &server, "proj/db").await.status(),
        StatusCode::ACCEPTED
    );
    let me = whoami(&builder, &server).await;
    assert_eq!(me["metadata"]["name"], "system:serviceaccount:proj:builder");

    // Who can push proj/web, and what may ed do there.
    let who = json_of(dora.get(server.url(&format!(
        "{ACCESS}/namespaces/proj/whocan?action=push&imageStream=web"
    ))))
    .await;
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
    let what = json_of(dora.get(server.url(&format!(
        "{ACCESS}/namespaces/proj/permissions?imageStream=web&subject=User:ed"
    ))))
    .await;
    assert_eq!(what["role"], "editor");
    assert_eq!(what["actions"], json!(["pull", "push"]));

    // Removing the group binding takes ed's push away.
    let bindings =
        json_of(dora.get(server.url(&format!("{ACCESS}/namespaces/proj/rolebindings")))).await;
    let name = bindings["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["subject"]["name"] == "devs")
        .unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_status(
        dora.delete(server.url(&format!("{ACCESS}/namespaces/proj/rolebindings/{name}"))),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        start_upload_as(&ed, &server, "proj/web").await.status(),
        StatusCode::FORBIDDEN
    );

    // The audit log has the logins, the failed one, tokens, bindings, deletes and the rest.
    expect_status(
        server.delete("/v2/proj/db/manifests/v1"),
        StatusCode::ACCEPTED,
    )
    .await;
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
    let audit = json_of(server.get(&format!("{ACCESS}/auditevents?limit=500"))).await;
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
    let viewer = server.user("wendy");
    grant_user(&server, "seen", "viewer", "wendy").await;

    let watch =
        "/apis/image.openshift.io/v1/imagestreams?watch=true&resourceVersion=1&timeoutSeconds=3";
    let response = expect_status(viewer.get(server.url(watch)), StatusCode::OK).await;
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
    let me = whoami(&client_with_token(&token), &server).await;
    assert_eq!(me["metadata"]["name"], "hank");
    // The bcrypt hash was replaced by an argon2 one at the first login: it still works.
    common::token_for(&server.base, "hank", "hank-password");
    let users = json_of(server.get("/apis/user.openshift.io/v1/users")).await;
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

/// Posts a review of `kind` (`SelfSubjectRulesReview`, `SelfSubjectAccessReview`) with `spec` as
/// `client`, which must be created; answers it.
async fn review(server: &TestServer, client: &reqwest::Client, kind: &str, spec: Value) -> Value {
    let resource = format!("{}s", kind.to_lowercase());
    let review = expect_json(
        client
            .post(server.url(&format!("{REVIEWS}/{resource}")))
            .json(&json!({"kind": kind, "apiVersion": "authorization.k8s.io/v1", "spec": spec})),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(review["kind"], kind);
    review
}

/// The caller's rules in a namespace, from a SelfSubjectRulesReview.
async fn rules_review(server: &TestServer, client: &reqwest::Client, namespace: &str) -> Value {
    let spec = json!({"namespace": namespace});
    let review = review(server, client, "SelfSubjectRulesReview", spec).await;
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
/// A namespace's quotas: read by every role in it; changed by cluster administrators only.
const READ_QUOTAS_RULE: &str = "get,list :resourcequotas,limitranges []";
const CHANGE_QUOTAS_RULE: &str = "create,update,patch,delete :resourcequotas,limitranges []";

/// A SelfSubjectAccessReview of `attributes`: (allowed, reason).
async fn access_review(
    server: &TestServer,
    client: &reqwest::Client,
    attributes: Value,
) -> (bool, String) {
    let spec = json!({"resourceAttributes": attributes});
    let review = review(server, client, "SelfSubjectAccessReview", spec).await;
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
    let vera = server.user("vera");
    let ed = server.user("ed");
    let ada = server.user("ada");
    let sam = server.user("sam");
    for (role, user) in [("viewer", "vera"), ("editor", "ed"), ("admin", "ada")] {
        grant_user(&server, "team", role, user).await;
    }
    // Sam is an editor of app only, and vera an admin of db besides her namespace role.
    grant_user_on(&server, "team", "app", "editor", "sam").await;
    grant_user_on(&server, "team", "db", "admin", "vera").await;

    let viewer = rules_review(&server, &vera, "team").await;
    let viewer_lines = rule_lines(&viewer);
    assert_eq!(viewer_lines[..2], [PULL_RULE, READ_QUOTAS_RULE]);
    assert_eq!(
        viewer_lines[2..],
        [
            "create,update,patch image.openshift.io:imagestreams,imagestreams/layers [db]",
            "delete image.openshift.io:imagestreams [db]",
        ]
    );
    // Pull only where she holds nothing by name.
    let elsewhere = server.add_user("val", "val-password", &[]);
    grant_user(&server, "team", "viewer", "val").await;
    let plain_viewer = rules_review(&server, &client_with_token(&elsewhere), "team").await;
    assert_eq!(rule_lines(&plain_viewer), [PULL_RULE, READ_QUOTAS_RULE]);
    assert!(plain_viewer["status"]["resourceRules"][0]["resourceNames"].is_null());

    let editor = rules_review(&server, &ed, "team").await;
    assert_eq!(
        rule_lines(&editor),
        [PULL_RULE, PUSH_RULE, READ_QUOTAS_RULE]
    );

    let admin = rule_lines(&rules_review(&server, &ada, "team").await);
    assert_eq!(admin[..2], [PULL_RULE, PUSH_RULE]);
    for expected in [
        "delete image.openshift.io:imagestreams,imagestreamtags []",
        "delete :namespaces []",
        "get,list,create,delete rbac.authorization.k8s.io:rolebindings []",
        "get,list,create,delete :serviceaccounts,secrets []",
        READ_QUOTAS_RULE,
    ] {
        assert!(
            admin.contains(&expected.to_owned()),
            "{expected} in {admin:?}"
        );
    }
    assert!(!admin.contains(&CHANGE_QUOTAS_RULE.to_owned()), "{admin:?}");
    // The cluster administrator: what a namespace admin may, anywhere, and changing quotas.
    let root = rule_lines(&rules_review(&server, &server.client(), "anywhere").await);
    assert_eq!(root[..admin.len()], admin[..]);
    assert_eq!(root[admin.len()..], [CHANGE_QUOTAS_RULE]);

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
        [PULL_RULE, READ_QUOTAS_RULE]
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
    let sam = server.user("sam");
    let vera = server.user("vera");
    let ada = server.user("ada");
    grant_user_on(&server, "team", "app", "editor", "sam").await;
    grant_user(&server, "team", "viewer", "vera").await;
    grant_user(&server, "team", "admin", "ada").await;

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
