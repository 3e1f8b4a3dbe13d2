//! `oc login`, `oc whoami` and `oc project` against Berth over HTTPS, as the HTTP exchanges `oc`
//! makes (openshift/oc's `pkg/helpers/tokencmd`: the OAuth metadata, the challenging client's
//! Basic challenge with `X-CSRF-Token`, the code with PKCE exchanged without a client secret,
//! or the token in the fragment; then `users/~` and the projects), since no `oc` binary can be
//! had here; and kubectl with the token that flow gave. Two users, each token its own user's;
//! a wrong password is 401 and throttled; an external provider's sign-in is a clear refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::kube::{Https, Kubectl, kubectl_missing, start};
use common::{TestServer, create_namespace, grant_user, push_image};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

const CLIENT: &str = "openshift-challenging-client";

/// A client as `oc` is: it trusts the kubeconfig's CA and follows no redirect (it reads them).
fn oc_client(https: &Https) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&https.ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// What `oc login` learns from `/.well-known/oauth-authorization-server` (read from the API
/// server's address, as `SetDefaultOsinConfig` does).
struct Metadata {
    issuer: String,
    authorize: String,
    token: String,
}

async fn metadata(client: &reqwest::Client, base: &str) -> Metadata {
    let response = client
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["code_challenge_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("S256")),
        "{body}"
    );
    Metadata {
        issuer: body["issuer"].as_str().unwrap().to_owned(),
        authorize: body["authorization_endpoint"].as_str().unwrap().to_owned(),
        token: body["token_endpoint"].as_str().unwrap().to_owned(),
    }
}

/// `oc`'s authorize request: osincli's `GetAuthorizeUrl` (no state), PKCE S256 for the code
/// flow, the redirect URI `{issuer}/oauth/token/implicit`.
fn authorize_url(metadata: &Metadata, response_type: &str, challenge: Option<&str>) -> String {
    let mut query = vec![
        ("response_type", response_type.to_owned()),
        ("client_id", CLIENT.to_owned()),
        (
            "redirect_uri",
            format!("{}/oauth/token/implicit", metadata.issuer),
        ),
    ];
    if let Some(challenge) = challenge {
        query.push(("code_challenge", challenge.to_owned()));
        query.push(("code_challenge_method", "S256".to_owned()));
    }
    format!(
        "{}?{}",
        metadata.authorize,
        serde_urlencoded::to_string(query).unwrap()
    )
}

/// One request of `oc`'s loop: a GET with `X-CSRF-Token: 1` and the handler's headers.
async fn ask(
    client: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(url).header("X-CSRF-Token", "1");
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    request.send().await.unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// `oc login -u USER -p PASSWORD` as `RequestToken` runs it: the challenge, the credentials,
/// the code from the redirect, and its exchange (osincli's `GetToken`: the parameters as a
/// form, Basic with the client id and an empty secret). Answers the access token.
async fn oc_login(client: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let metadata = metadata(client, base).await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(&metadata, "code", Some(&challenge));
    let challenged = ask(client, &url, None).await;
    assert_eq!(challenged.status(), StatusCode::UNAUTHORIZED);
    let challenge_header = challenged.headers()["www-authenticate"].to_str().unwrap();
    // oc's basicRegexes: a Basic challenge with a quoted realm.
    assert!(
        challenge_header.starts_with("Basic realm=\""),
        "{challenge_header}"
    );
    let answered = ask(client, &url, Some(&basic(user, password))).await;
    assert_eq!(answered.status(), StatusCode::FOUND, "{user}");
    assert_eq!(answered.headers()["cache-control"], "no-store");
    let redirect = location(&answered);
    let implicit = format!("{}/oauth/token/implicit?", metadata.issuer);
    assert!(redirect.starts_with(&implicit), "{redirect}");
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(redirect.split_once('?').unwrap().1).unwrap();
    assert!(query.iter().all(|(k, _)| k != "state"), "{redirect}");
    let code = &query.iter().find(|(k, _)| k == "code").unwrap().1;
    let exchanged = client
        .post(&metadata.token)
        .basic_auth(CLIENT, Some(""))
        .header("Accept", "application/json")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            (
                "redirect_uri",
                &format!("{}/oauth/token/implicit", metadata.issuer),
            ),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(exchanged.status(), StatusCode::OK);
    let tokens: Value = exchanged.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_i64().unwrap() > 0);
    // A public client: no ID token signed with a key it could not check.
    assert!(tokens.get("id_token").is_none(), "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// `oc whoami`: `GET /apis/user.openshift.io/v1/users/~` with the token.
async fn whoami(client: &reqwest::Client, base: &str, token: &str) -> (StatusCode, Value) {
    get(
        client,
        &format!("{base}/apis/user.openshift.io/v1/users/~"),
        token,
    )
    .await
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> (StatusCode, Value) {
    let response = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn oc_login_whoami_and_projects_with_two_users_and_kubectl() {
    let https = start();
    let server: &TestServer = &https.server;
    let base = server.base.clone();
    let client = oc_client(&https);
    server.add_user("alice", "alice-password", &["developers"]);
    server.add_user("bob", "bob-password", &[]);
    create_namespace(&server.client(), server, "team").await;
    push_image(server, "team/app", "v1", "oc").await;
    grant_user(server, "team", "viewer", "alice").await;

    // The metadata's issuer is the address oc reached.
    let found = metadata(&client, &base).await;
    assert_eq!(found.issuer, base);

    // Without X-CSRF-Token there is no challenge: a browser is never asked for a password.
    let (_, challenge) = pkce();
    let url = authorize_url(&found, "code", Some(&challenge));
    let refused = client.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.headers().get("www-authenticate").is_none());
    assert!(refused.text().await.unwrap().contains("X-CSRF-Token"));
    let refused = client
        .get(&url)
        .header("Authorization", basic("alice", "alice-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    // The code flow needs PKCE (a public client), and the redirect must be oc's.
    let no_pkce = ask(&client, &authorize_url(&found, "code", None), None).await;
    assert_eq!(no_pkce.status(), StatusCode::BAD_REQUEST);
    let elsewhere = url.replace("%2Foauth%2Ftoken%2Fimplicit", "%2Fevil");
    assert_ne!(elsewhere, url);
    let refused = ask(&client, &elsewhere, Some(&basic("alice", "alice-password"))).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    // The challenging client has no login page.
    let form = client
        .post(format!("{base}/oauth/authorize"))
        .form(&[
            ("response_type", "code"),
            ("client_id", CLIENT),
            ("redirect_uri", &format!("{base}/oauth/token/implicit")),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::BAD_REQUEST);

    // oc login, twice: each token is its own user's.
    let alice = oc_login(&client, &base, "alice", "alice-password").await;
    let bob = oc_login(&client, &base, "bob", "bob-password").await;
    assert_ne!(alice, bob);
    let (status, me) = whoami(&client, &base, &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["kind"], "User");
    assert_eq!(me["apiVersion"], "user.openshift.io/v1");
    assert_eq!(me["metadata"]["name"], "alice");
    assert!(me["metadata"]["uid"].is_string(), "{me}");
    assert!(
        me["groups"]
            .as_array()
            .unwrap()
            .contains(&"developers".into())
    );
    assert!(
        me["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().ends_with(":alice")),
        "{me}"
    );
    let (_, me) = whoami(&client, &base, &bob).await;
    assert_eq!(me["metadata"]["name"], "bob");
    assert!(
        !me["groups"]
            .as_array()
            .unwrap()
            .contains(&"developers".into()),
        "{me}"
    );

    // A code is used once, and only with its verifier.
    let (verifier, challenge) = pkce();
    let url = authorize_url(&found, "code", Some(&challenge));
    let answered = ask(&client, &url, Some(&basic("alice", "alice-password"))).await;
    let redirect = location(&answered);
    let code = redirect.split_once("code=").unwrap().1.to_owned();
    let exchange = |verifier: String| {
        let client = client.clone();
        let (token, code, issuer) = (found.token.clone(), code.clone(), found.issuer.clone());
        async move {
            client
                .post(&token)
                .basic_auth(CLIENT, Some(""))
                .form(&[
                    ("grant_type", "authorization_code".to_owned()),
                    ("code", code),
                    ("redirect_uri", format!("{issuer}/oauth/token/implicit")),
                    ("code_verifier", verifier),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let wrong = exchange("not-the-verifier-of-this-code-at-all-no".into()).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    // The refused attempt spent the code.
    let again = exchange(verifier).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");

    // The token flow: the token in the redirect's fragment.
    let url = authorize_url(&found, "token", None);
    let answered = ask(&client, &url, Some(&basic("bob", "bob-password"))).await;
    assert_eq!(answered.status(), StatusCode::FOUND);
    let redirect = location(&answered);
    let fragment = redirect
        .strip_prefix(&format!("{base}/oauth/token/implicit#"))
        .unwrap_or_else(|| panic!("{redirect}"));
    let fragment: Vec<(String, String)> = serde_urlencoded::from_str(fragment).unwrap();
    let value = |key: &str| fragment.iter().find(|(k, _)| k == key).unwrap().1.clone();
    assert_eq!(value("token_type"), "Bearer");
    assert!(value("expires_in").parse::<i64>().unwrap() > 0);
    let (_, me) = whoami(&client, &base, &value("access_token")).await;
    assert_eq!(me["metadata"]["name"], "bob");
    // Where the redirect points is a page, and the token request page is the console's.
    let page = client
        .get(format!("{base}/oauth/token/implicit"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let request = client
        .get(format!("{base}/oauth/token/request"))
        .send()
        .await
        .unwrap();
    assert_eq!(request.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&request), "/tokens");

    // oc project / oc projects: the namespaces each may see, as Projects.
    let projects = format!("{base}/apis/project.openshift.io/v1/projects");
    let (status, list) = get(&client, &projects, &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["kind"], "ProjectList");
    assert_eq!(list["apiVersion"], "project.openshift.io/v1");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team"]);
    assert_eq!(list["items"][0]["kind"], "Project");
    let (_, list) = get(&client, &projects, &bob).await;
    assert_eq!(list["items"], serde_json::json!([]));
    let (status, project) = get(&client, &format!("{projects}/team"), &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(project["kind"], "Project");
    assert_eq!(project["status"]["phase"], "Active");
    let (status, refused) = get(&client, &format!("{projects}/team"), &bob).await;
    assert!(
        matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{status} {refused}"
    );
    assert_eq!(refused["kind"], "Status");
    // Discovery declares the group oc asks first.
    let (_, group) = get(
        &client,
        &format!("{base}/apis/project.openshift.io/v1"),
        &alice,
    )
    .await;
    assert_eq!(group["resources"][0]["name"], "projects");

    // What else `oc login` asks: the server's version (whether to name the console), the
    // message of the day (a 404 `Status` is "none"), and a HEAD of the issuer (which CA).
    let (status, version) = get(&client, &format!("{base}/version"), &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert!(version["minor"].is_string(), "{version}");
    let (status, motd) = get(
        &client,
        &format!("{base}/api/v1/namespaces/openshift/configmaps/motd"),
        &alice,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(motd["kind"], "Status");
    let head = client.head(&found.issuer).send().await.unwrap();
    assert!(head.status().is_success(), "{}", head.status());

    // kubectl with the token oc login wrote into the kubeconfig.
    if !kubectl_missing() {
        let kubectl = Kubectl::new(&https, "alice", &alice, "team");
        let streams = kubectl.ok(&["get", "is"]);
        assert!(streams.contains("app"), "{streams}");
        let projects = kubectl.ok(&["get", "projects", "-o", "name"]);
        assert_eq!(projects.trim(), "project.project.openshift.io/team");
        let kubectl = Kubectl::new(&https, "bob", &bob, "team");
        let refused = kubectl.fails(&["get", "is"]);
        assert!(
            refused.contains("Forbidden") || refused.contains("forbidden"),
            "{refused}"
        );
    }

    // A wrong password: 401 with the challenge again (oc tries once, then reports it); then
    // throttled, with Retry-After.
    let url = authorize_url(&found, "token", None);
    let wrong = ask(&client, &url, Some(&basic("alice", "guess"))).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().contains_key("www-authenticate"));
    let mut attempts = 1;
    let throttled = loop {
        attempts += 1;
        let response = ask(&client, &url, Some(&basic("alice", "guess"))).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS || attempts == 40 {
            break response;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    };
    assert!(attempts > 10, "throttled after {attempts} attempts");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn oc_login_with_a_password_is_refused_when_people_sign_in_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("berth.toml");
    // The provider need not answer: the refusal comes before any sign-in.
    std::fs::write(
        &config,
        "[auth.oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"berth\"\nclient_secret = \"berthtestsecret\"\n",
    )
    .unwrap();
    let server = TestServer::start_with(&["--config", config.to_str().unwrap()]);
    let client = common::anonymous();
    let found = metadata(&client, &server.base).await;
    let (_, challenge) = pkce();
    let url = authorize_url(&found, "code", Some(&challenge));
    for authorization in [None, Some(basic("admin", common::ADMIN_PASSWORD))] {
        let refused = ask(&client, &url, authorization.as_deref()).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        // No challenge: oc shows the body as the reason.
        assert!(refused.headers().get("www-authenticate").is_none());
        let reason = refused.text().await.unwrap();
        assert!(reason.contains("http://127.0.0.1:9"), "{reason}");
        assert!(
            reason.contains(&format!("{}/tokens", server.base)),
            "{reason}"
        );
        assert!(reason.contains("oc login --token"), "{reason}");
    }
}
