//! Signing in to the console through the embedded OAuth server, and what protects it: PKCE,
//! state, single-use codes, sessions and their CSRF token, throttling; an external provider's
//! discovery under the egress policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    ADMIN_PASSWORD, TestServer, browser, expect_json, expect_status, json_of, location, sign_in,
    submit_sign_in_form,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn a_console_session_with_its_csrf_token() {
    let server = TestServer::start();
    let browser = browser();
    let anonymous = json_of(browser.get(server.url("/console/api/session"))).await;
    assert!(anonymous["user"].is_null());

    let back = sign_in(&server, &browser, "admin", ADMIN_PASSWORD).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let callback = location(&back);
    assert!(callback.starts_with(&format!("{}/console/callback?code=", server.base)));
    let done = expect_status(browser.get(&callback), StatusCode::SEE_OTHER).await;
    assert_eq!(location(&done), "/");
    let cookie = done.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let session = json_of(browser.get(server.url("/console/api/session"))).await;
    assert_eq!(session["user"], "admin");
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();

    // The session reads the API; a change without the CSRF token is refused, with it accepted.
    expect_status(
        browser.get(server.url("/api/v1/namespaces")),
        StatusCode::OK,
    )
    .await;
    let status = expect_json(
        browser
            .post(server.url("/api/v1/namespaces"))
            .json(&json!({"metadata": {"name": "from-console"}})),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        status["message"].as_str().unwrap().contains("CSRF"),
        "{status}"
    );
    expect_status(
        browser
            .post(server.url("/api/v1/namespaces"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"metadata": {"name": "from-console"}})),
        StatusCode::CREATED,
    )
    .await;

    // The session survives a restart (it lives in the metadata database).
    let server = {
        let base = server.base.clone();
        let restarted = server.crash_and_restart();
        assert_ne!(restarted.base, base);
        restarted
    };
    // A new port is a new cookie origin for reqwest's jar, so carry the cookie by hand.
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();
    let session = json_of(
        reqwest::Client::new()
            .get(server.url("/console/api/session"))
            .header("cookie", &cookie_pair),
    )
    .await;
    assert_eq!(session["user"], "admin");

    // Sign-out needs the token too, and ends the session.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    expect_status(
        plain
            .post(server.url("/console/logout"))
            .header("cookie", &cookie_pair)
            .form(&[("csrf_token", "wrong")]),
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_status(
        plain
            .post(server.url("/console/logout"))
            .header("cookie", &cookie_pair)
            .form(&[("csrf_token", csrf.as_str())]),
        StatusCode::SEE_OTHER,
    )
    .await;
    let session = json_of(
        plain
            .get(server.url("/console/api/session"))
            .header("cookie", &cookie_pair),
    )
    .await;
    assert!(session["user"].is_null());
}

#[tokio::test]
async fn wrong_passwords_wrong_state_and_throttling() {
    let server = TestServer::start();
    let browser = browser();
    let refused = sign_in(&server, &browser, "admin", "not the password").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Invalid user name or password")
    );

    // A callback whose state is not this session's.
    let good = sign_in(&server, &browser, "admin", ADMIN_PASSWORD).await;
    let callback = location(&good);
    let tampered = callback.replace("state=", "state=x");
    let response = expect_status(browser.get(&tampered), StatusCode::BAD_REQUEST).await;
    assert!(response.text().await.unwrap().contains("wrong state"));
    // And a callback with no sign-in started.
    expect_status(browser.get(&callback), StatusCode::BAD_REQUEST).await;

    // A form this server did not make.
    let response = expect_status(
        browser.post(server.url("/oauth/authorize")).form(&[
            ("response_type", "code"),
            ("client_id", "berth-console"),
            ("redirect_uri", &format!("{}/console/callback", server.base)),
            ("state", "s"),
            ("code_challenge", "c"),
            ("code_challenge_method", "S256"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ]),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(response.text().await.unwrap().contains("CSRF"));

    // Requests the server must not act on.
    for query in [
        "response_type=code&client_id=nobody&redirect_uri=http://x&state=s&code_challenge=c&code_challenge_method=S256",
        "response_type=code&client_id=berth-console&redirect_uri=http://evil.example/cb&state=s&code_challenge=c&code_challenge_method=S256",
        "response_type=code&client_id=berth-console&state=s",
    ] {
        let response = browser
            .get(server.url(&format!("/oauth/authorize?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }

    // Throttled after ten failures a minute from this address, the right password included
    // (another address is not: see identity.rs).
    let mut last = StatusCode::OK;
    for _ in 0..40 {
        last = sign_in(&server, &browser, "admin", "guess").await.status();
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        sign_in(&server, &browser, "admin", ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn the_token_endpoint_checks_pkce_and_uses_a_code_once() {
    let server = TestServer::start_with_config(
        "[[auth.clients]]\nid = \"cli\"\nsecret = \"clisecret\"\nredirect_uri = \"http://127.0.0.1:1/cb\"\n",
        &[],
    );
    let metadata: Value = reqwest::get(server.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], server.base);
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );

    let verifier = "a-verifier-of-enough-length-to-be-valid-0123456789";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let code = |browser: reqwest::Client| {
        let server_url = server.url("");
        let challenge = challenge.clone();
        async move {
            let query = serde_urlencoded::to_string([
                ("response_type", "code"),
                ("client_id", "cli"),
                ("redirect_uri", "http://127.0.0.1:1/cb"),
                ("state", "st"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("nonce", "n"),
            ])
            .unwrap();
            let back = submit_sign_in_form(
                &browser,
                &format!("{server_url}/oauth/authorize?{query}"),
                &format!("{server_url}/oauth/authorize"),
                "admin",
                ADMIN_PASSWORD,
            )
            .await;
            let target = location(&back);
            assert!(target.contains("state=st"), "{target}");
            target
                .split("code=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_owned()
        }
    };
    let exchange = |code: String, verifier: &'static str| {
        let url = server.url("/oauth/token");
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth("cli", Some("clisecret"))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", "http://127.0.0.1:1/cb"),
                    ("code_verifier", verifier),
                ])
                .send()
                .await
                .unwrap()
        }
    };

    // A wrong verifier is refused, and spends the code.
    let first = code(browser()).await;
    let wrong = exchange(
        first.clone(),
        "not-the-verifier-but-also-long-enough-0123456789",
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let error: Value = wrong.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");
    assert!(
        error["error_description"]
            .as_str()
            .unwrap()
            .contains("PKCE")
    );
    assert_eq!(
        exchange(first, verifier).await.status(),
        StatusCode::BAD_REQUEST
    );

    // The right verifier: an access token that works, and an ID token for the client.
    let second = code(browser()).await;
    let granted = exchange(second.clone(), verifier).await;
    assert_eq!(granted.status(), StatusCode::OK);
    let tokens: Value = granted.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let me = json_of(
        common::client_with_token(access).get(server.url("/apis/user.openshift.io/v1/users/~")),
    )
    .await;
    assert_eq!(me["metadata"]["name"], "admin");
    // An access token issued to another client makes no token of its own (issue 12, item 8).
    expect_status(
        common::client_with_token(access)
            .post(server.url("/apis/access.berth.io/v1/personaltokens"))
            .json(&json!({"metadata": {"name": "forever"}})),
        StatusCode::FORBIDDEN,
    )
    .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims: Value = {
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(id_token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["aud"], "cli");
    assert_eq!(claims["nonce"], "n");
    assert_eq!(claims["iss"], server.base);
    // A replayed code is refused.
    let replayed = exchange(second, verifier).await;
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
    // A wrong client secret is refused.
    let third = code(browser()).await;
    expect_status(
        reqwest::Client::new()
            .post(server.url("/oauth/token"))
            .basic_auth("cli", Some("wrong"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", third.as_str()),
                ("redirect_uri", "http://127.0.0.1:1/cb"),
                ("code_verifier", verifier),
            ]),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

/// An OpenID Connect provider's discovery document at `issuer`, its keys at `jwks`.
fn discovery(issuer: &str, jwks: &str) -> common::scripted::Reply {
    common::scripted::Reply::Content {
        content_type: "application/json".into(),
        body: serde_json::to_vec(&json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": jwks,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }))
        .unwrap(),
    }
}

#[tokio::test]
async fn an_external_provider_is_trusted_at_its_issuer_but_not_for_what_it_names_elsewhere() {
    use common::scripted::{Reply, Scripted};
    let keys = Reply::Content {
        content_type: "application/json".into(),
        body: br#"{"keys":[]}"#.to_vec(),
    };
    // 127.0.0.2 plays an internal service; no allow-list is configured.
    let internal = Scripted::start("127.0.0.2").await;
    internal.reply("/jwks", keys.clone());
    for (provider_names_internal, expected) in [
        (true, StatusCode::BAD_GATEWAY),
        (false, StatusCode::SEE_OTHER),
    ] {
        let provider = Scripted::start("127.0.0.1").await;
        let issuer = provider.base.clone();
        let jwks = if provider_names_internal {
            format!("{}/jwks", internal.base)
        } else {
            provider.reply("/jwks", keys.clone());
            format!("{issuer}/jwks")
        };
        provider.reply(
            "/.well-known/openid-configuration",
            discovery(&issuer, &jwks),
        );
        let server = TestServer::start_with(&[
            "--oidc-issuer",
            &issuer,
            "--oidc-client-id",
            "berth",
            "--oidc-client-secret",
            "secret",
        ]);
        let login = browser()
            .get(server.url("/console/login?then=/"))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), expected, "{jwks}");
        if provider_names_internal {
            let page = login.text().await.unwrap();
            assert!(
                page.contains("the address 127.0.0.2 (loopback) is not allowed by the egress policy ([egress] allow)"),
                "{page}"
            );
        } else {
            // The issuer's origin is loopback too: configured, so trusted.
            assert!(location(&login).starts_with(&format!("{issuer}/authorize?")));
        }
    }
    assert!(internal.seen().is_empty(), "{:?}", internal.seen());
}
