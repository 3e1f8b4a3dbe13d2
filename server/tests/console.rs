//! The console's server functions over HTTP, as its pages call them: what they show after a
//! push, and that their changes take a signed-in session, its CSRF token, and the same
//! authorization as the APIs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    ADMIN_PASSWORD, TestServer, client_with_token, console_session, expect_status, json_of,
    push_image, tag_form, wait_until,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A read: the server function's answer, which must have succeeded.
async fn read(client: &reqwest::Client, server: &TestServer, path: &str) -> Value {
    let response = client.get(server.url(path)).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// A read that must fail: the console's error, as JSON, with its HTTP status.
async fn refused_read(client: &reqwest::Client, server: &TestServer, path: &str) -> Value {
    let response = client.get(server.url(path)).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let expected = match body
        .as_object()
        .and_then(|o| o.keys().next())
        .map(String::as_str)
    {
        Some("NotFound") => StatusCode::NOT_FOUND,
        Some("Forbidden") => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    assert_eq!(status, expected, "{path}: {body}");
    body
}

/// A change (a form POST, as the console's forms send them): `Ok` with the answer, or `Err`
/// with the console's error.
async fn change(
    client: &reqwest::Client,
    server: &TestServer,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<Value, Value> {
    let response = client
        .post(server.url(&format!("/console/api/{endpoint}")))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let expected = match &body {
        Value::String(error) if error == "SignInRequired" => StatusCode::UNAUTHORIZED,
        Value::String(error) if error == "Csrf" => StatusCode::FORBIDDEN,
        Value::Object(error) if error.contains_key("Forbidden") => StatusCode::FORBIDDEN,
        Value::Object(error) if error.contains_key("Invalid") => StatusCode::BAD_REQUEST,
        Value::Object(error) if error.contains_key("NotFound") => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    };
    assert_eq!(status, expected, "{endpoint}: {body}");
    if status.is_success() {
        Ok(body)
    } else {
        Err(body)
    }
}

/// `oc tag app:v1 app:prod` in namespace `shop`.
fn tag(csrf: &str) -> [(&'static str, &str); 5] {
    tag_form(csrf, "shop", "app", "prod", "app:v1")
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_console_shows_pushes_and_changes_as_the_apis_decide() {
    let server = TestServer::start();
    let v1 = push_image(&server, "shop/app", "v1", "one").await;
    let v2 = push_image(&server, "shop/app", "v2", "two").await;
    push_image(&server, "shop/web", "latest", "web").await;
    let admin = server.client();

    // Namespaces, with their streams and bytes.
    let list = read(&admin, &server, "/console/api/namespaces").await;
    assert_eq!(list["can_create"], true);
    let shop = list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "shop")
        .unwrap()
        .clone();
    assert_eq!(shop["streams"], 2);
    assert!(shop["size"].as_u64().unwrap() > 0, "{shop}");
    assert_eq!(shop["can_delete"], true);

    // A page of streams: filtered, sorted, with what the caller may do there.
    let page = read(
        &admin,
        &server,
        "/console/api/streams?namespace=shop&filter=&sort=name&offset=0",
    )
    .await;
    assert_eq!(names(&page, "streams"), ["app", "web"]);
    assert_eq!(page["total"], 2);
    assert_eq!(page["streams"][0]["tags"], 2);
    assert!(page["streams"][0]["updated"].is_string());
    assert_eq!(page["permissions"]["manage_access"], true);
    let page = read(
        &admin,
        &server,
        "/console/api/streams?namespace=shop&filter=we&sort=updated&offset=0",
    )
    .await;
    assert_eq!(names(&page, "streams"), ["web"]);
    let missing = refused_read(
        &admin,
        &server,
        "/console/api/streams?namespace=absent&filter=&sort=name&offset=0",
    )
    .await;
    assert!(missing["NotFound"].is_string(), "{missing}");

    // A stream: its tags with their images, and the history.
    let stream = read(
        &admin,
        &server,
        "/console/api/stream?namespace=shop&stream=app",
    )
    .await;
    assert!(
        stream["pull_repository"]
            .as_str()
            .unwrap()
            .ends_with("/shop/app"),
        "{stream}"
    );
    assert_eq!(names(&stream, "tags"), ["v1", "v2"]);
    assert_eq!(stream["tags"][0]["digest"], v1);
    assert_eq!(stream["tags"][0]["platforms"], json!(["linux/amd64"]));
    assert!(stream["tags"][0]["size"].as_u64().unwrap() > 0);
    assert_eq!(stream["tags"][1]["history"][0]["image"], v2);
    assert_eq!(stream["history"].as_array().unwrap().len(), 2);
    assert_eq!(stream["history"][0]["image"], v2, "newest first");

    // An image: its layers, run configuration, tags and raw documents.
    let image = read(
        &admin,
        &server,
        &format!("/console/api/image?namespace=shop&stream=app&digest={v1}"),
    )
    .await;
    assert_eq!(image["tags"], json!(["v1"]));
    assert_eq!(image["layers"].as_array().unwrap().len(), 1);
    assert_eq!(image["config"]["env"], json!(["SEED=one"]));
    assert_eq!(image["os"], "linux");
    assert!(
        image["raw_manifest"]
            .as_str()
            .unwrap()
            .contains("\"schemaVersion\": 2")
    );
    assert!(image["raw_config"].as_str().unwrap().contains("SEED=one"));

    // A viewer reads what it is bound to, and may change nothing.
    let viewer_token = server.add_user("viewer", "viewer-password", &[]);
    expect_status(admin
        .post(server.url("/apis/access.berth.io/v1/namespaces/shop/rolebindings"))
        .json(
            &json!({"roleRef": {"name": "viewer"}, "subject": {"kind": "User", "name": "viewer"}}),
        ), StatusCode::CREATED).await;
    let viewer = client_with_token(&viewer_token);
    let stream = read(
        &viewer,
        &server,
        "/console/api/stream?namespace=shop&stream=app",
    )
    .await;
    assert_eq!(
        stream["permissions"],
        json!({"pull": true, "push": false, "delete": false, "manage_access": false, "manage_secrets": false})
    );
    let refused = refused_read(&viewer, &server, "/console/api/access?namespace=shop").await;
    assert!(refused["Forbidden"].is_string(), "{refused}");
    // Changes take a session: a token alone is not one.
    assert_eq!(
        change(&viewer, &server, "tag", &tag("")).await,
        Err(json!("SignInRequired"))
    );

    // In a session, the CSRF token first, then the decision.
    let (viewer_browser, viewer_csrf) = console_session(&server, "viewer", "viewer-password").await;
    assert_eq!(
        change(&viewer_browser, &server, "tag", &tag("wrong")).await,
        Err(json!("Csrf"))
    );
    let refused = change(&viewer_browser, &server, "tag", &tag(&viewer_csrf))
        .await
        .unwrap_err();
    assert!(refused["Forbidden"].is_string(), "{refused}");

    // An administrator's session tags, rolls back and untags.
    let (browser, csrf) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    change(&browser, &server, "tag", &tag(&csrf)).await.unwrap();
    let rollback = tag_form(csrf.as_str(), "shop", "app", "v2", v1.as_str());
    change(&browser, &server, "tag", &rollback).await.unwrap();
    let stream = read(
        &browser,
        &server,
        "/console/api/stream?namespace=shop&stream=app",
    )
    .await;
    assert_eq!(names(&stream, "tags"), ["prod", "v1", "v2"]);
    assert_eq!(stream["tags"][0]["digest"], v1);
    // Like `oc tag` without `--alias`, tagging from a tag pins the image it names now.
    assert_eq!(
        stream["tags"][0]["from"],
        format!("ImageStreamImage app@{v1}")
    );
    let v2_history: Vec<&str> = stream["tags"][2]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        v2_history,
        [v1.as_str(), v2.as_str()],
        "the rollback is history"
    );
    let bad = change(
        &browser,
        &server,
        "tag",
        &tag_form(csrf.as_str(), "shop", "app", "x", "nothing"),
    )
    .await
    .unwrap_err();
    assert!(
        bad["NotFound"]
            .as_str()
            .unwrap_or("")
            .contains("app:nothing"),
        "{bad}"
    );
    let empty = change(
        &browser,
        &server,
        "tag",
        &tag_form(csrf.as_str(), "shop", "app", "x", " "),
    )
    .await
    .unwrap_err();
    assert!(empty["Invalid"].is_string(), "{empty}");
    change(
        &browser,
        &server,
        "untag",
        &[
            ("csrf", csrf.as_str()),
            ("namespace", "shop"),
            ("stream", "app"),
            ("tag", "prod"),
        ],
    )
    .await
    .unwrap();

    // Access: the bindings and who can pull, for those who manage it.
    let access = read(&browser, &server, "/console/api/access?namespace=shop").await;
    let bindings = access["bindings"].as_array().unwrap();
    assert!(
        bindings
            .iter()
            .any(|b| b["subject_name"] == "viewer" && b["role"] == "viewer"),
        "{access}"
    );
    assert!(
        access["who_can_pull"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["subject"] == "User:viewer"),
        "{access}"
    );
    assert!(
        !access["who_can_push"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["subject"] == "User:viewer")
    );

    // A user bound nowhere sees no namespace, and is refused a namespace's streams.
    let stranger = server.user("stranger");
    let list = read(&stranger, &server, "/console/api/namespaces").await;
    assert!(!names(&list, "namespaces").contains(&"shop".to_owned()));
    let refused = refused_read(
        &stranger,
        &server,
        "/console/api/streams?namespace=shop&filter=&sort=name&offset=0",
    )
    .await;
    assert!(refused["Forbidden"].is_string(), "{refused}");
}

/// The console's form adding a pull secret to `vault`.
fn pull_secret<'a>(
    csrf: &'a str,
    name: &'a str,
    registry: &'a str,
    password: &'a str,
) -> [(&'static str, &'a str); 6] {
    [
        ("csrf", csrf),
        ("namespace", "vault"),
        ("name", name),
        ("registry", registry),
        ("username", "robot+ci"),
        ("password", password),
    ]
}

#[tokio::test]
async fn pull_secrets_are_added_listed_without_their_credentials_and_deleted() {
    use base64::Engine as _;
    let server = TestServer::start();
    push_image(&server, "vault/app", "v1", "one").await;
    let (browser, csrf) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    let password = "pa55-w0rd-never-shown";
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("robot+ci:{password}"));
    let no_credentials = |answer: &Value| {
        let text = answer.to_string();
        for material in [password, auth.as_str(), "robot+ci", "auths"] {
            assert!(!text.contains(material), "{material:?} in {text}");
        }
    };

    let created = change(
        &browser,
        &server,
        "create_pull_secret",
        &pull_secret(&csrf, "quay", "https://Quay.io", password),
    )
    .await
    .unwrap();
    assert_eq!(created["name"], "quay");
    assert_eq!(created["registries"], json!(["quay.io"]));
    assert!(
        !created["created"].as_str().unwrap().is_empty(),
        "{created}"
    );
    no_credentials(&created);
    change(
        &browser,
        &server,
        "create_pull_secret",
        &pull_secret(&csrf, "local", "127.0.0.1:5000", password),
    )
    .await
    .unwrap();

    let list = read(
        &browser,
        &server,
        "/console/api/pull_secrets?namespace=vault",
    )
    .await;
    assert_eq!(
        list,
        json!([
            {"name": "local", "registries": ["127.0.0.1:5000"], "created": list[0]["created"]},
            {"name": "quay", "registries": ["quay.io"], "created": created["created"]},
        ])
    );
    no_credentials(&list);
    // The same secret in the API, which imports use.
    let api = json_of(server.get("/api/v1/namespaces/vault/secrets/quay")).await;
    assert_eq!(api["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(
        api["metadata"]["annotations"]["berth.io/registries"],
        "quay.io"
    );

    // The form's mistakes, said with the field; the same name twice; no CSRF token.
    let bad = change(
        &browser,
        &server,
        "create_pull_secret",
        &pull_secret(&csrf, "bad", "not a host", password),
    )
    .await
    .unwrap_err();
    assert!(
        bad["Invalid"].as_str().unwrap().contains("registry: "),
        "{bad}"
    );
    let again = change(
        &browser,
        &server,
        "create_pull_secret",
        &pull_secret(&csrf, "quay", "quay.io", password),
    )
    .await
    .unwrap_err();
    assert!(
        again["Invalid"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{again}"
    );
    assert_eq!(
        change(
            &browser,
            &server,
            "create_pull_secret",
            &pull_secret("wrong", "other", "quay.io", password),
        )
        .await,
        Err(json!("Csrf"))
    );

    // An editor of the namespace is no admin of it: refused to list, add or delete, before
    // the form is read.
    server.add_user("ed", "ed-password", &[]);
    expect_status(
        server
            .post("/apis/access.berth.io/v1/namespaces/vault/rolebindings")
            .json(
                &json!({"roleRef": {"name": "editor"}, "subject": {"kind": "User", "name": "ed"}}),
            ),
        StatusCode::CREATED,
    )
    .await;
    let (editor, editor_csrf) = console_session(&server, "ed", "ed-password").await;
    let refused = refused_read(
        &editor,
        &server,
        "/console/api/pull_secrets?namespace=vault",
    )
    .await;
    assert!(refused["Forbidden"].is_string(), "{refused}");
    for registry in ["quay.io", "not a host"] {
        let refused = change(
            &editor,
            &server,
            "create_pull_secret",
            &pull_secret(&editor_csrf, "mine", registry, password),
        )
        .await
        .unwrap_err();
        assert!(refused["Forbidden"].is_string(), "{refused}");
    }
    let delete = |csrf| [("csrf", csrf), ("namespace", "vault"), ("name", "quay")];
    let refused = change(
        &editor,
        &server,
        "delete_pull_secret",
        &delete(&editor_csrf),
    )
    .await
    .unwrap_err();
    assert!(refused["Forbidden"].is_string(), "{refused}");

    // The admin deletes; a second delete finds nothing.
    change(&browser, &server, "delete_pull_secret", &delete(&csrf))
        .await
        .unwrap();
    let gone = change(&browser, &server, "delete_pull_secret", &delete(&csrf))
        .await
        .unwrap_err();
    assert!(gone["NotFound"].is_string(), "{gone}");
    let list = read(
        &browser,
        &server,
        "/console/api/pull_secrets?namespace=vault",
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "local");
}

/// The webhooks page's Redeliver button on delivery `id` of webhook `hooked/ci`.
async fn redeliver(
    client: &reqwest::Client,
    server: &TestServer,
    csrf: &str,
    id: &str,
) -> Result<Value, Value> {
    let form = [
        ("csrf", csrf),
        ("namespace", "hooked"),
        ("name", "ci"),
        ("id", id),
    ];
    change(client, server, "redeliver_webhook", &form).await
}

#[tokio::test]
async fn a_webhook_delivery_is_sent_again_from_the_console() {
    use std::sync::{Arc, Mutex};

    // A receiver that takes everything: (X-Berth-Delivery, body) of each request.
    type Log = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let received = Log::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let id = headers["x-berth-delivery"].to_str().unwrap().to_owned();
                    kept.lock().unwrap().push((id, body.to_vec()));
                    StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let wait_for = |count: usize| {
        let received = received.clone();
        async move {
            wait_until(&format!("{count} requests at the receiver"), async || {
                let received = received.lock().unwrap().clone();
                if received.len() >= count {
                    Ok(received)
                } else {
                    Err(format!("{} requests", received.len()))
                }
            })
            .await
        }
    };

    let server = TestServer::start_with(common::ALLOW_LOOPBACK);
    expect_status(
        server
            .post("/api/v1/namespaces")
            .json(&json!({"metadata": {"name": "hooked"}})),
        StatusCode::CREATED,
    )
    .await;
    let (browser, csrf) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    change(
        &browser,
        &server,
        "create_webhook",
        &[
            ("csrf", csrf.as_str()),
            ("namespace", "hooked"),
            ("name", "ci"),
            ("url", url.as_str()),
            ("events", "push"),
            ("format", "distribution"),
        ],
    )
    .await
    .unwrap();
    push_image(&server, "hooked/app", "v1", "one").await;
    let first = wait_for(1).await;

    let rows = wait_until(
        "the console to list the delivery as delivered",
        async || {
            let rows = read(&browser, &server, "/console/api/webhooks?namespace=hooked").await;
            if rows[0]["deliveries"][0]["state"] == "delivered" {
                Ok(rows)
            } else {
                Err(rows.to_string())
            }
        },
    )
    .await;
    let delivered = &rows[0]["deliveries"][0];
    assert_eq!(delivered["redelivery_of"], Value::Null);
    let id = delivered["id"].as_str().unwrap().to_owned();
    assert_eq!(first[0].0, id);
    // Without the session's token, an unknown delivery, and an editor: refused.
    assert_eq!(
        redeliver(&browser, &server, "wrong", &id).await,
        Err(json!("Csrf"))
    );
    let unknown = redeliver(&browser, &server, &csrf, "424242")
        .await
        .unwrap_err();
    assert!(unknown["NotFound"].is_string(), "{unknown}");
    server.add_user("ed", "ed-password", &[]);
    expect_status(
        server
            .post("/apis/access.berth.io/v1/namespaces/hooked/rolebindings")
            .json(
                &json!({"roleRef": {"name": "editor"}, "subject": {"kind": "User", "name": "ed"}}),
            ),
        StatusCode::CREATED,
    )
    .await;
    let (editor, editor_csrf) = console_session(&server, "ed", "ed-password").await;
    let refused = redeliver(&editor, &server, &editor_csrf, &id)
        .await
        .unwrap_err();
    assert!(refused["Forbidden"].is_string(), "{refused}");
    assert_eq!(received.lock().unwrap().len(), 1);

    // The admin sends it again: a new delivery, the same body.
    let made = redeliver(&browser, &server, &csrf, &id).await.unwrap();
    assert_eq!(made["redelivery_of"], id.as_str());
    assert_eq!(made["event"], "push");
    assert_ne!(made["id"], id.as_str());
    let both = wait_for(2).await;
    assert_eq!(both[1].0, made["id"].as_str().unwrap());
    assert_eq!(both[1].1, both[0].1);
    let rows = read(&browser, &server, "/console/api/webhooks?namespace=hooked").await;
    let ids: Vec<&str> = rows[0]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [made["id"].as_str().unwrap(), id.as_str()],
        "newest first"
    );
}
