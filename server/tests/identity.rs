//! Identity against a hostile tenant: tokens that mint tokens, lifetimes that overflow, who
//! manages users and groups, names, service-account bindings that outlive their account, the
//! first push to a new namespace, login throttling and its audit, and external sign-in through
//! a real OpenID Connect provider. Every test runs the real server with two real users.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    ADMIN_PASSWORD, TestServer, anonymous, bind, client_with_token, console_session,
    create_namespace, expect_json, expect_kube_status, expect_status, json_of, push_image_as,
    start_upload_as, status_with_token,
};
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

/// Sends `request` and expects a Kubernetes `Status` of reason `Invalid`; answers the field
/// of its first cause.
async fn invalid_field(request: reqwest::RequestBuilder) -> String {
    let refusal = expect_kube_status(request, StatusCode::UNPROCESSABLE_ENTITY, "Invalid").await;
    refusal["details"]["causes"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
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
        let refused = expect_kube_status(
            alice.post(&tokens).json(&body),
            StatusCode::FORBIDDEN,
            "Forbidden",
        )
        .await;
        assert!(
            refused["message"].as_str().unwrap().contains("password"),
            "{refused}"
        );
    }
    // Nor a token sent as a Basic password.
    expect_kube_status(
        anonymous()
            .post(&tokens)
            .basic_auth("alice", Some(&alice_token))
            .json(&json!({"metadata": {"name": "basic"}})),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;

    // The password does, within the checked range of lifetimes; outside it, a field error.
    let with_password = |body: Value| {
        anonymous()
            .post(&tokens)
            .basic_auth("alice", Some("alice-password"))
            .json(&body)
    };
    for days in [
        0_u64,
        3651,
        100_000_000,
        4_000_000_000,
        u64::from(u32::MAX) + 1,
    ] {
        let far =
            with_password(json!({"metadata": {"name": "far"}, "spec": {"expiresInDays": days}}));
        assert_eq!(invalid_field(far).await, "spec.expiresInDays", "{days}");
    }
    let made = expect_json(
        with_password(json!({"metadata": {"name": "day"}, "spec": {"expiresInDays": 1}})),
        StatusCode::CREATED,
    )
    .await;
    let day_token = made["status"]["token"].as_str().unwrap().to_owned();
    let day_expiry: chrono::DateTime<chrono::Utc> = made["status"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Names: one grammar, a field error otherwise.
    for name in ["a/b", "nul\u{0}byte", "../../etc", "x".repeat(101).as_str()] {
        let named = with_password(json!({"metadata": {"name": name}}));
        assert_eq!(invalid_field(named).await, "metadata.name", "{name:?}");
    }

    // A service-account token made with a token lives no longer than that token, and a
    // TokenRequest's expirationSeconds is checked before any date is computed.
    create_namespace(&alice, &server, "tenant").await;
    expect_status(
        alice
            .post(server.url("/api/v1/namespaces/tenant/serviceaccounts"))
            .json(&json!({"metadata": {"name": "builder"}})),
        StatusCode::CREATED,
    )
    .await;
    let token_request = server.url("/api/v1/namespaces/tenant/serviceaccounts/builder/token");
    for seconds in [1_u64, 10_000_000_000_000, u64::MAX] {
        let asked = alice
            .post(&token_request)
            .json(&json!({"spec": {"expirationSeconds": seconds}}));
        assert_eq!(
            invalid_field(asked).await,
            "spec.expirationSeconds",
            "{seconds}"
        );
    }
    let made = expect_json(
        client_with_token(&day_token)
            .post(&token_request)
            .json(&json!({"spec": {"expirationSeconds": 30 * 86_400}})),
        StatusCode::CREATED,
    )
    .await;
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
    let made = expect_json(
        client_with_token(&day_token)
            .post(&token_request)
            .json(&json!({})),
        StatusCode::CREATED,
    )
    .await;
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
    let create_token = async |name: &str, days: &str| {
        let form = [
            ("csrf", csrf.as_str()),
            ("name", name),
            ("expires_in_days", days),
        ];
        let response = browser
            .post(server.url("/console/api/create_token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        answer(response).await
    };
    for days in ["4294967295", "100000000", "3651"] {
        let (status, body) = create_token("far", days).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{days}: {body}");
        assert!(body.get("Invalid").is_some(), "{body}");
    }
    let (status, body) = create_token("laptop", "30").await;
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
        expect_status(
            admin
                .post(server.url(&format!("{ACCESS}/rolebindings")))
                .json(
                    &json!({"metadata": {"name": name}, "roleRef": {"name": role},
                          "subject": {"kind": kind, "name": subject}}),
                ),
            StatusCode::CREATED,
        )
        .await;
    }

    // Mallory may not add herself to the group bound to cluster-admin, nor list users, groups
    // or the audit log.
    expect_kube_status(
        mallory
            .put(server.url(&format!("{USERS}/groups/roots")))
            .json(&json!({"users": ["root", "mallory"]})),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    for path in [
        format!("{USERS}/users"),
        format!("{USERS}/groups"),
        format!("{ACCESS}/auditevents"),
    ] {
        expect_kube_status(
            mallory.get(server.url(&path)),
            StatusCode::FORBIDDEN,
            "Forbidden",
        )
        .await;
    }
    let groups = json_of(admin.get(server.url(&format!("{USERS}/groups")))).await;
    let roots = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "roots")
        .unwrap();
    assert_eq!(roots["users"], json!(["root"]));
    // And she is still no cluster administrator: a binding of cluster-admin is refused.
    expect_kube_status(
        mallory
            .post(server.url(&format!("{ACCESS}/rolebindings")))
            .json(&json!({"roleRef": {"name": "cluster-admin"},
                          "subject": {"kind": "User", "name": "mallory"}})),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;

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
    expect_status(
        admin
            .put(server.url(&format!("{USERS}/groups/devs")))
            .json(&json!({"users": ["root"]})),
        StatusCode::OK,
    )
    .await;
    let binding = admin
        .post(server.url(&format!("{ACCESS}/rolebindings")))
        .json(&json!({"roleRef": {"name": "viewer"},
                      "subject": {"kind": "Group", "name": "../../etc"}}));
    assert_eq!(invalid_field(binding).await, "subject.name");
}

// ---- item 4: service-account bindings go with the account; a new namespace starts afresh ----

/// A TokenRequest for a service account, made by `client`.
async fn service_account_token(
    client: &reqwest::Client,
    server: &TestServer,
    namespace: &str,
    name: &str,
) -> String {
    expect_status(
        client
            .post(server.url(&format!("/api/v1/namespaces/{namespace}/serviceaccounts")))
            .json(&json!({"metadata": {"name": name}})),
        StatusCode::CREATED,
    )
    .await;
    let made = expect_json(
        client
            .post(server.url(&format!(
                "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
            )))
            .json(&json!({})),
        StatusCode::CREATED,
    )
    .await;
    made["status"]["token"].as_str().unwrap().to_owned()
}

/// Everything a stream of events says within `seconds` (or until it ends).
async fn read_for(response: reqwest::Response, seconds: u64) -> String {
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test]
async fn service_account_bindings_and_events_do_not_pass_to_whoever_recreates_them() {
    let server = TestServer::start();
    let alice = server.user("alice");
    let bob = server.user("bob");
    let mallory = server.user("mallory");

    // Alice's namespace "team" has an image and a builder account; bob lets that account pull
    // from his namespace "vault".
    assert_eq!(
        push_image_as(&alice, &server, "team/app", "v1", "team-secret").await,
        StatusCode::CREATED
    );
    assert_eq!(
        push_image_as(&bob, &server, "vault/db", "v1", "vault-secret").await,
        StatusCode::CREATED
    );
    let builder = service_account_token(&alice, &server, "team", "builder").await;
    let account = json!({"kind": "ServiceAccount", "name": "builder", "namespace": "team"});
    assert_eq!(
        bind(&bob, &server, "vault", "viewer", account.clone(), None).await,
        StatusCode::CREATED
    );
    let tags = server.url("/v2/vault/db/tags/list");
    assert_eq!(status_with_token(&builder, &tags).await, StatusCode::OK);

    // Deleting the account deletes bob's binding to it.
    expect_status(
        alice.delete(server.url("/api/v1/namespaces/team/serviceaccounts/builder")),
        StatusCode::OK,
    )
    .await;
    let bindings =
        json_of(bob.get(server.url(&format!("{ACCESS}/namespaces/vault/rolebindings")))).await;
    assert!(
        bindings["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["subject"]["kind"] != "ServiceAccount"),
        "{bindings}"
    );
    let again = service_account_token(&alice, &server, "team", "builder").await;
    assert_eq!(
        status_with_token(&again, &tags).await,
        StatusCode::FORBIDDEN
    );

    // Bound again, with the group of all of team's accounts too, then the whole namespace
    // deleted: both bindings go with it. (The group of a namespace nobody made cannot be bound.)
    assert_eq!(
        bind(&bob, &server, "vault", "viewer", account.clone(), None).await,
        StatusCode::CREATED
    );
    let team_accounts = json!({"kind": "Group", "name": "system:serviceaccounts:team"});
    assert_eq!(
        bind(&bob, &server, "vault", "viewer", team_accounts, None).await,
        StatusCode::CREATED
    );
    let nobodys = json!({"kind": "Group", "name": "system:serviceaccounts:nobody"});
    assert_eq!(
        bind(&bob, &server, "vault", "viewer", nobodys, None).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    expect_status(
        alice.delete(server.url("/api/v1/namespaces/team")),
        StatusCode::OK,
    )
    .await;

    // Mallory makes "team" and its "builder" again: no access to bob's images, and nothing
    // of alice's namespace in her watches or her console feed.
    create_namespace(&mallory, &server, "team").await;
    let impostor = service_account_token(&mallory, &server, "team", "builder").await;
    assert_eq!(
        status_with_token(&impostor, &tags).await,
        StatusCode::FORBIDDEN
    );
    let watch = expect_status(mallory
        .get(server.url(
            "/apis/image.openshift.io/v1/namespaces/team/imagestreams?watch=true&resourceVersion=1&timeoutSeconds=2",
        )), StatusCode::OK).await;
    let watched = read_for(watch, 5).await;
    let feed = expect_status(
        mallory.get(server.url("/console/api/events?after=0&namespace=team")),
        StatusCode::OK,
    )
    .await;
    // Something of her own, so that the feed has something to say.
    assert_eq!(
        push_image_as(&mallory, &server, "team/own", "v1", "mine").await,
        StatusCode::CREATED
    );
    let fed = read_for(feed, 3).await;
    assert!(fed.contains("\"name\":\"own\""), "{fed}");
    for seen in [&watched, &fed] {
        assert!(!seen.contains("\"app\""), "alice's stream replayed: {seen}");
        assert!(!seen.contains("team-secret"), "{seen}");
    }
}

// ---- item 11: a namespace made first by someone else ----------------------------------------

#[tokio::test]
async fn a_push_token_for_a_namespace_not_yet_made_grants_nothing_once_another_makes_it() {
    let server = TestServer::start();
    let alice = server.user("alice");
    server.add_user("bob", "bob-password", &[]);

    // Bob asks for a push token to "fresh", which nobody has made: granted, for now.
    let granted = expect_json(
        anonymous()
            .get(server.url("/auth/token?service=berth&scope=repository:fresh/app:push,pull"))
            .basic_auth("bob", Some("bob-password")),
        StatusCode::OK,
    )
    .await;
    let registry_token = granted["token"].as_str().unwrap().to_owned();
    let bob = client_with_token(&registry_token);
    assert_eq!(
        start_upload_as(&bob, &server, "fresh/app").await.status(),
        StatusCode::ACCEPTED
    );

    // Alice makes "fresh" first. Bob's token no longer lets him in: not to start an upload,
    // not to push a manifest, not to read.
    assert_eq!(
        push_image_as(&alice, &server, "fresh/app", "v1", "alice's").await,
        StatusCode::CREATED
    );
    let refused = |status| matches!(status, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED);
    let upload = start_upload_as(&bob, &server, "fresh/app").await.status();
    assert!(refused(upload), "{upload}");
    assert_ne!(
        push_image_as(&bob, &server, "fresh/app", "v1", "bob's").await,
        StatusCode::CREATED
    );
    let tags = status_with_token(&registry_token, &server.url("/v2/fresh/app/tags/list")).await;
    assert!(refused(tags), "{tags}");
}

#[tokio::test]
async fn of_two_first_pushes_to_a_new_namespace_one_makes_it() {
    let server = TestServer::start();
    let alice = server.user("alice");
    let bob = server.user("bob");
    let namespaces: Vec<String> = (0..8).map(|i| format!("race{i}")).collect();
    // Both race for every namespace, their manifests pushed at once.
    let pushes = namespaces.iter().flat_map(|namespace| {
        [("alice", &alice), ("bob", &bob)].map(|(who, client)| {
            let repository = format!("{namespace}/app");
            let server = &server;
            async move {
                (
                    who,
                    push_image_as(
                        client,
                        server,
                        &repository,
                        "v1",
                        &format!("{who} {repository}"),
                    )
                    .await,
                )
            }
        })
    });
    let results = futures_util::future::join_all(pushes).await;
    for (namespace, pair) in namespaces.iter().zip(results.chunks(2)) {
        let bindings =
            json_of(server.get(&format!("{ACCESS}/namespaces/{namespace}/rolebindings"))).await;
        let admins: Vec<&str> = bindings["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["roleRef"]["name"] == "admin")
            .map(|b| b["subject"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(admins.len(), 1, "{namespace}: {admins:?} after {pair:?}");
        for (who, status) in pair {
            if *who == admins[0] {
                assert_eq!(*status, StatusCode::CREATED, "{namespace}: {pair:?}");
            } else {
                assert_ne!(*status, StatusCode::CREATED, "{namespace}: {pair:?}");
            }
        }
    }
}

// ---- item 3: external sign-in maps identities, not names -------------------------------------

/// The npm `oidc-provider` the browser tests use (`end2end/oidc/provider.mjs`: any name and
/// password sign in; the name is the subject and the preferred user name), on loopback.
struct OidcProvider {
    child: std::process::Child,
    issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_provider(port: u16, redirect_uri: &str) -> OidcProvider {
    use std::io::BufRead;
    let end2end = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end");
    assert!(
        end2end.join("node_modules/oidc-provider").is_dir(),
        "the npm packages of end2end/ are missing: run scripts/setup"
    );
    let mut child = std::process::Command::new("node")
        .arg("oidc/provider.mjs")
        .current_dir(&end2end)
        .env("OIDC_PORT", port.to_string())
        .env("OIDC_REDIRECT_URI", redirect_uri)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting node");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(ready.contains("listening"), "oidc-provider: {ready}");
    std::thread::spawn(move || for _ in lines {});
    OidcProvider {
        child,
        issuer: format!("http://127.0.0.1:{port}"),
    }
}

/// Berth with the provider on `port` as its console's sign-in, mapping by `method`.
fn server_with_provider(port: u16, method: &str) -> (TestServer, OidcProvider) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("berth.toml");
    std::fs::write(
        &config,
        format!(
            "[auth.oidc]\nissuer = \"http://127.0.0.1:{port}\"\nclient_id = \"berth\"\nclient_secret = \"berthtestsecret\"\nmapping_method = \"{method}\"\nscopes = [\"profile\", \"groups\"]\n"
        ),
    )
    .unwrap();
    let server = TestServer::start_with(&["--config", config.to_str().unwrap()]);
    let provider = start_provider(port, &server.url("/console/callback"));
    // The configuration is read at start.
    drop(dir);
    (server, provider)
}

/// Signs in at the provider as `user` (its login and consent pages, as a browser fills them)
/// starting from the console; answers Berth's callback.
async fn sign_in_externally(
    server: &TestServer,
    browser: &reqwest::Client,
    user: &str,
) -> reqwest::Response {
    let callback = server.url("/console/callback");
    let mut response = browser
        .get(server.url("/console/login?then=/"))
        .send()
        .await
        .unwrap();
    for _ in 0..20 {
        if response.status().is_redirection() {
            let next = response.url().join(&common::location(&response)).unwrap();
            if next.as_str().starts_with(&callback) {
                return browser.get(next).send().await.unwrap();
            }
            response = browser.get(next).send().await.unwrap();
            continue;
        }
        let page = response.url().clone();
        let status = response.status();
        let html = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{page}: {html}");
        let action = html
            .split("<form")
            .nth(1)
            .and_then(|form| form.split("action=\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no form at {page}: {html}"));
        let mut fields: Vec<(String, String)> = common::form_fields(&html)
            .into_iter()
            .filter(|(name, _)| name != "login" && name != "password")
            .collect();
        if html.contains("name=\"login\"") {
            fields.push(("login".into(), user.into()));
            fields.push(("password".into(), "any password".into()));
        }
        response = browser
            .post(page.join(action).unwrap())
            .form(&fields)
            .send()
            .await
            .unwrap();
    }
    panic!("signing in at the provider did not come back to Berth");
}

async fn session_user(server: &TestServer, browser: &reqwest::Client) -> Value {
    let session = json_of(browser.get(server.url("/console/api/session"))).await;
    session["user"].clone()
}

async fn namespace_names(server: &TestServer, browser: &reqwest::Client) -> Vec<String> {
    let list = json_of(browser.get(server.url("/api/v1/namespaces"))).await;
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn signing_in_elsewhere_as_admin_is_not_the_local_admin() {
    let port = free_port();
    let (server, provider) = server_with_provider(port, "claim");
    let admin = server.client();
    assert_eq!(
        push_image_as(&admin, &server, "private/app", "v1", "the admin's").await,
        StatusCode::CREATED
    );

    // "admin" at the provider: refused (the name is a local user's), no session, nothing seen.
    let intruder = common::browser();
    let refused = sign_in_externally(&server, &intruder, "admin").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("belongs to another"));
    assert!(session_user(&server, &intruder).await.is_null());
    assert!(
        !namespace_names(&server, &intruder)
            .await
            .contains(&"private".to_owned())
    );
    expect_status(
        intruder.get(server.url("/v2/private/app/tags/list")),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Someone new claims their name: a user of the provider, with its groups claim, and the
    // same user at every sign-in (found by the identity).
    let carol = common::browser();
    let signed_in = sign_in_externally(&server, &carol, "carol").await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(session_user(&server, &carol).await, "carol");
    assert!(
        !namespace_names(&server, &carol)
            .await
            .contains(&"private".to_owned())
    );
    let again = common::browser();
    sign_in_externally(&server, &again, "carol").await;
    assert_eq!(session_user(&server, &again).await, "carol");
    let users = json_of(admin.get(server.url(&format!("{USERS}/users")))).await;
    let carol_user = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["metadata"]["name"] == "carol")
        .unwrap();
    assert_eq!(
        carol_user["identities"],
        json!([format!("oidc:{}:carol", provider.issuer)])
    );
    assert_eq!(carol_user["groups"], json!(["oidc-devs"]));
    let admin_user = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["metadata"]["name"] == "admin")
        .unwrap();
    assert_eq!(admin_user["identities"], json!(["local:admin"]));
    assert_eq!(admin_user["groups"], json!([]));
}

#[tokio::test]
async fn lookup_signs_in_only_identities_an_administrator_linked() {
    let port = free_port();
    let (server, provider) = server_with_provider(port, "lookup");
    let admin = server.client();
    server.add_user("dave", "dave-password", &[]);

    let stranger = common::browser();
    let refused = sign_in_externally(&server, &stranger, "erin").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("not linked"));
    let refused = sign_in_externally(&server, &stranger, "admin").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(session_user(&server, &stranger).await.is_null());

    // Linking takes a cluster administrator; then dave's identity signs in as dave.
    let link = json!({"providerName": format!("oidc:{}", provider.issuer),
                      "providerUserName": "dave", "user": {"name": "dave"}});
    let dave_token = common::token_for(&server.base, "dave", "dave-password");
    expect_kube_status(
        client_with_token(&dave_token)
            .post(server.url(&format!("{USERS}/identities")))
            .json(&link),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    expect_status(
        admin
            .post(server.url(&format!("{USERS}/identities")))
            .json(&link),
        StatusCode::CREATED,
    )
    .await;
    expect_kube_status(
        admin
            .post(server.url(&format!("{USERS}/identities")))
            .json(&json!({"providerName": format!("oidc:{}", provider.issuer),
                          "providerUserName": "dave", "user": {"name": "admin"}})),
        StatusCode::CONFLICT,
        "AlreadyExists",
    )
    .await;
    let dave = common::browser();
    let signed_in = sign_in_externally(&server, &dave, "dave").await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(session_user(&server, &dave).await, "dave");
}

// ---- items 15, 16 and 6: throttling that locks nobody out, an audit that does not grow -------

/// A client whose connections come from `address` (any of 127.0.0.0/8).
fn from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(address))
        .build()
        .unwrap()
}

async fn registry_status(
    client: &reqwest::Client,
    server: &TestServer,
    user: &str,
    password: &str,
) -> StatusCode {
    client
        .get(server.url("/v2/"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn wrong_passwords_from_one_address_lock_nobody_out_and_successes_are_never_counted() {
    let server = TestServer::start();
    let guesser = from([127, 0, 0, 2]);
    // Ten failures a minute are allowed (each attempt takes a while, in which the budget
    // refills a little): refused within a few more.
    let mut statuses = Vec::new();
    while statuses.last() != Some(&StatusCode::TOO_MANY_REQUESTS) && statuses.len() < 40 {
        let guess = format!("guess {}", statuses.len());
        statuses.push(registry_status(&guesser, &server, "admin", &guess).await);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(statuses.len() > 10, "{statuses:?}");
    // The administrator, elsewhere, signs in.
    let owner = from([127, 0, 0, 3]);
    assert_eq!(
        registry_status(&owner, &server, "admin", ADMIN_PASSWORD).await,
        StatusCode::OK
    );

    // Eight clients with the right password at once, each many times, from one address: none
    // refused (successes are not counted; the server's cache of verified passwords is no part
    // of this, as every client starts at once).
    server.add_user("ci", "ci-password", &[]);
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let client = from([127, 0, 0, 4]);
            let server = &server;
            async move {
                let mut refused = 0;
                for _ in 0..25 {
                    if registry_status(&client, server, "ci", "ci-password").await != StatusCode::OK
                    {
                        refused += 1;
                    }
                }
                refused
            }
        })
        .collect();
    let refused: u32 = futures_util::future::join_all(clients)
        .await
        .into_iter()
        .sum();
    assert_eq!(refused, 0);
}

/// The bytes the database's data takes: SQLite's pages (read through a connection, so the
/// write-ahead log's committed pages count once however many times they were written) or
/// PostgreSQL's database size.
async fn database_bytes(server: &TestServer) -> u64 {
    use sqlx::Connection as _;
    let bytes: i64 = match server.storage() {
        common::Storage::Embedded => {
            let url = format!(
                "sqlite://{}?mode=ro",
                server.data_dir().join("berth.db").display()
            );
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            )
            .fetch_one(&mut connection)
            .await
            .unwrap()
        }
        common::Storage::Postgres { database_url }
        | common::Storage::PostgresS3 { database_url, .. } => {
            let mut connection = sqlx::PgConnection::connect(database_url).await.unwrap();
            sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&mut connection)
                .await
                .unwrap()
        }
    };
    bytes as u64
}

#[tokio::test]
async fn huge_user_names_neither_grow_the_database_nor_reach_the_audit_log_in_full() {
    let server = TestServer::start();
    let admin = server.client();
    let before = database_bytes(&server).await;
    let attacker = from([127, 0, 0, 5]);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..300 {
        let name = format!("{i:04}{}", "x".repeat(100 * 1024));
        let status = registry_status(&attacker, &server, &name, "password").await;
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
    }
    assert!(
        statuses.keys().all(|code| [401, 429].contains(code)),
        "{statuses:?}"
    );
    // 300 names of 100 KB were 30 MB of audit; now each is a short prefix, and refusals by
    // the address's throttle are recorded once a minute.
    let grown = database_bytes(&server).await.saturating_sub(before);
    assert!(grown < 1024 * 1024, "the database grew by {grown} bytes");
    let audit = json_of(admin.get(server.url(&format!("{ACCESS}/auditevents?limit=1000")))).await;
    let failures: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "failure")
        .collect();
    assert!(!failures.is_empty());
    assert!(failures.len() < 100, "{} failures recorded", failures.len());
    assert!(
        failures
            .iter()
            .all(|e| e["actor"].as_str().unwrap().len() < 100),
        "a whole name reached the audit log"
    );
    // The administrator is not locked out by any of it.
    assert_eq!(
        registry_status(&from([127, 0, 0, 6]), &server, "admin", ADMIN_PASSWORD).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_registry_token_ends_with_the_token_that_asked_for_it() {
    let server = TestServer::start_with_config("[auth]\nregistry_token_seconds = 31536000\n", &[]);
    server.add_user("alice", "alice-password", &[]);
    let made = expect_json(
        anonymous()
            .post(server.url(&format!("{ACCESS}/personaltokens")))
            .basic_auth("alice", Some("alice-password"))
            .json(&json!({"metadata": {"name": "day"}, "spec": {"expiresInDays": 1}})),
        StatusCode::CREATED,
    )
    .await;
    let day_token = made["status"]["token"].as_str().unwrap().to_owned();
    let url = server.url("/auth/token?service=berth&scope=repository:alice/app:pull");
    for request in [
        client_with_token(&day_token).get(&url),
        anonymous().get(&url).basic_auth("alice", Some(&day_token)),
        anonymous().post(server.url("/auth/token")).form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", &day_token),
        ]),
    ] {
        let (status, granted) = answer(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{granted}");
        let lifetime = granted["expires_in"].as_u64().unwrap();
        assert!(lifetime <= 86_400, "a registry token of {lifetime} s");
    }
    // With the password, the configured lifetime.
    let (_, granted) = answer(
        anonymous()
            .get(&url)
            .basic_auth("alice", Some("alice-password"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(granted["expires_in"], 31_536_000);
}
