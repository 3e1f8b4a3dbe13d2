//! The console's server functions over HTTP, as its pages call them: what they show after a
//! push, and that their changes take a signed-in session, its CSRF token, and the same
//! authorization as the APIs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    ADMIN_PASSWORD, OCI_MANIFEST, TestServer, client_with_token, console_session, expect_status,
    grant_user, image_manifest, json_of, push_blob, push_image, put_manifest, sha256, tag_form,
    wait_until,
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
        Value::Object(error) if error.contains_key("AlreadyExists") => StatusCode::CONFLICT,
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
            .contains("\"schemaVersion\":2")
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
        again["AlreadyExists"]
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

#[tokio::test]
async fn webhooks_are_tested_edited_and_disabled_from_the_console_by_their_admins_only() {
    let server = TestServer::start_with(common::ALLOW_LOOPBACK);
    expect_status(
        server
            .post("/api/v1/namespaces")
            .json(&json!({"metadata": {"name": "hooked"}})),
        StatusCode::CREATED,
    )
    .await;
    // Nothing listens there: deliveries are made and fail, which is enough here.
    let url = "http://127.0.0.1:9/hook";
    let (browser, csrf) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    let form = |extra: &[(&'static str, &'static str)], csrf: &str| {
        let mut form: Vec<(&str, String)> = vec![
            ("csrf", csrf.to_owned()),
            ("namespace", "hooked".into()),
            ("name", "ci".into()),
        ];
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        form
    };
    let call = async |client: &reqwest::Client, endpoint: &str, form: Vec<(&str, String)>| {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        change(client, &server, endpoint, &form).await
    };
    call(
        &browser,
        "create_webhook",
        form(
            &[("url", url), ("events", "push"), ("format", "distribution")],
            &csrf,
        ),
    )
    .await
    .unwrap();

    // An editor of the namespace may do none of it, and sees no buttons or forms.
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
    for (endpoint, extra) in [
        ("ping_webhook", &[][..]),
        ("set_webhook_disabled", &[("disabled", "true")][..]),
        ("regenerate_webhook_secret", &[][..]),
        (
            "update_webhook",
            &[
                ("url", "http://127.0.0.1:9/stolen"),
                ("events", ""),
                ("format", "distribution"),
            ][..],
        ),
    ] {
        let refused = call(&editor, endpoint, form(extra, &editor_csrf))
            .await
            .unwrap_err();
        assert!(refused["Forbidden"].is_string(), "{endpoint}: {refused}");
        assert_eq!(
            call(&browser, endpoint, form(extra, "wrong")).await,
            Err(json!("Csrf")),
            "{endpoint}"
        );
    }
    let page = |client: reqwest::Client| {
        let server = &server;
        async move {
            let response = client
                .get(server.url("/ns/hooked/webhooks"))
                .send()
                .await
                .unwrap();
            // The editor's is a 403: the list is refused, the page says why.
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, editor_page) = page(editor.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for live in [
        "Send test event",
        "Add webhook",
        "Regenerate secret",
        "Save changes",
    ] {
        assert!(!editor_page.contains(live), "{live} shown to an editor");
    }
    assert!(
        editor_page.contains("add or change webhooks"),
        "{editor_page}"
    );
    let (status, admin_page) = page(browser.clone()).await;
    assert_eq!(status, StatusCode::OK);
    for live in [
        "Send test event",
        "Add webhook",
        "Regenerate secret",
        "Save changes",
    ] {
        assert!(admin_page.contains(live), "{live} not shown to the admin");
    }

    // The admin: a test event, listed like any delivery with the body sent.
    let ping = call(&browser, "ping_webhook", form(&[], &csrf))
        .await
        .unwrap();
    assert_eq!(ping["event"], "ping");
    let sent: Value = serde_json::from_str(ping["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["webhook"], "ci");
    let rows = read(&browser, &server, "/console/api/webhooks?namespace=hooked").await;
    assert_eq!(rows[0]["deliveries"][0]["id"], ping["id"]);
    assert_eq!(rows[0]["disabled"], false);

    // Edited: the URL and events change, the state is kept.
    call(
        &browser,
        "update_webhook",
        form(
            &[
                ("url", "http://127.0.0.1:9/moved"),
                ("events", "push,delete"),
                ("format", "cloudevents"),
            ],
            &csrf,
        ),
    )
    .await
    .unwrap();
    let refused = call(
        &browser,
        "update_webhook",
        form(
            &[
                ("url", "http://169.254.169.254/"),
                ("events", ""),
                ("format", "distribution"),
            ],
            &csrf,
        ),
    )
    .await
    .unwrap_err();
    assert!(
        refused["Invalid"].as_str().unwrap().contains("egress"),
        "{refused}"
    );
    let rows = read(&browser, &server, "/console/api/webhooks?namespace=hooked").await;
    assert_eq!(rows[0]["url"], "http://127.0.0.1:9/moved");
    assert_eq!(rows[0]["events"], json!(["push", "delete"]));
    assert_eq!(rows[0]["format"], "cloudevents");

    // Disabled: listed so, no test events; enabled again.
    call(
        &browser,
        "set_webhook_disabled",
        form(&[("disabled", "true")], &csrf),
    )
    .await
    .unwrap();
    let rows = read(&browser, &server, "/console/api/webhooks?namespace=hooked").await;
    assert_eq!(rows[0]["disabled"], true);
    assert_eq!(
        rows[0]["url"], "http://127.0.0.1:9/moved",
        "the rest is kept"
    );
    let (_, admin_page) = page(browser.clone()).await;
    assert!(admin_page.contains("disabled: events are not delivered"));
    let refused = call(&browser, "ping_webhook", form(&[], &csrf))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("disabled"), "{refused}");
    call(
        &browser,
        "set_webhook_disabled",
        form(&[("disabled", "false")], &csrf),
    )
    .await
    .unwrap();
    let rows = read(&browser, &server, "/console/api/webhooks?namespace=hooked").await;
    assert_eq!(rows[0]["disabled"], false);

    // A new secret, shown once.
    let secret = call(&browser, "regenerate_webhook_secret", form(&[], &csrf))
        .await
        .unwrap();
    assert_eq!(secret.as_str().unwrap().len(), 64);
    let rows = read(&browser, &server, "/console/api/webhooks?namespace=hooked").await;
    assert!(!rows.to_string().contains(secret.as_str().unwrap()));
}

/// Bytes of a quantity as Berth writes one back: a number, or a whole number of `Ki`, `Mi`,
/// `Gi`.
fn quantity_bytes(quantity: &str) -> u64 {
    for (suffix, unit) in [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)] {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return number.parse::<u64>().unwrap() * unit;
        }
    }
    quantity.parse().unwrap()
}

#[tokio::test]
async fn a_namespaces_usage_is_what_its_quotas_count_for_its_members() {
    let server = TestServer::start();
    let admin = server.client();
    push_image(&server, "shop/app", "v1", "one").await;
    push_image(&server, "shop/app", "v2", "two").await;
    // The same image in a second stream: one image, its layers counted once.
    push_image(&server, "shop/web", "latest", "one").await;
    let path = "/console/api/namespace_usage?namespace=shop";

    // Without quotas: the usage alone.
    let usage = read(&admin, &server, path).await;
    assert_eq!(usage["streams"], 2, "{usage}");
    assert_eq!(usage["images"], 2, "{usage}");
    let bytes = usage["bytes"].as_u64().unwrap();
    assert!(bytes > 0, "{usage}");
    assert_eq!(usage["quotas"], json!([]));
    assert_eq!(usage["limits"], json!([]));

    // With a quota and a limit range: a bar per limit, whose usage is the API's.
    for (resource, body) in [
        (
            "resourcequotas",
            json!({"metadata": {"name": "registry"},
                   "spec": {"hard": {"berth.io/storage": "1Gi", "openshift.io/imagestreams": 5}}}),
        ),
        (
            "limitranges",
            json!({"metadata": {"name": "images"},
            "spec": {"limits": [
                {"type": "openshift.io/Image", "max": {"storage": "100Mi"}},
                {"type": "openshift.io/ImageStream", "max": {"openshift.io/image-tags": 20}},
            ]}}),
        ),
    ] {
        expect_status(
            admin
                .post(server.url(&format!("/api/v1/namespaces/shop/{resource}")))
                .json(&body),
            StatusCode::CREATED,
        )
        .await;
    }
    let usage = read(&admin, &server, path).await;
    let quota =
        json_of(admin.get(server.url("/api/v1/namespaces/shop/resourcequotas/registry"))).await;
    let api_bytes = quantity_bytes(
        quota["status"]["used"]["berth.io/storage"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(usage["bytes"], api_bytes, "{usage} {quota}");
    assert_eq!(usage["bytes"], bytes);
    assert_eq!(
        usage["quotas"],
        json!([
            {"quota": "registry", "resource": "berth.io/storage", "used": api_bytes,
             "hard": 1u64 << 30, "hard_text": "1Gi", "bytes": true},
            {"quota": "registry", "resource": "openshift.io/imagestreams", "used": 2,
             "hard": 5, "hard_text": "5", "bytes": false},
        ])
    );
    assert_eq!(
        quota["status"]["used"]["openshift.io/imagestreams"], "2",
        "{quota}"
    );
    assert_eq!(
        usage["limits"],
        json!([
            {"range": "images", "limit_type": "openshift.io/Image", "resource": "storage",
             "max": 100u64 << 20, "max_text": "100Mi", "bytes": true},
            {"range": "images", "limit_type": "openshift.io/ImageStream",
             "resource": "openshift.io/image-tags", "max": 20, "max_text": "20", "bytes": false},
        ])
    );

    // A member reads it; a user bound nowhere is refused; a namespace that is not, is not found.
    let member = server.user("member");
    grant_user(&server, "shop", "viewer", "member").await;
    let seen = read(&member, &server, path).await;
    assert_eq!(seen, usage);
    let refused = refused_read(&server.user("stranger"), &server, path).await;
    assert!(refused["Forbidden"].is_string(), "{refused}");
    let missing = refused_read(
        &admin,
        &server,
        "/console/api/namespace_usage?namespace=absent",
    )
    .await;
    assert!(missing["NotFound"].is_string(), "{missing}");
}

/// The console's form adding an immutability rule to `team` (a preview with `dry_run`), its
/// fields as the page sends them (`form[name]`).
fn tag_rule_form<'a>(
    csrf: &'a str,
    name: &'a str,
    tags: &'a str,
    dry_run: &'a str,
) -> [(&'static str, &'a str); 8] {
    [
        ("csrf", csrf),
        ("namespace", "team"),
        ("form[name]", name),
        ("form[streams]", ""),
        ("form[exclude_streams]", ""),
        ("form[tags]", tags),
        ("form[exclude_tags]", "*-rc*"),
        ("dry_run", dry_run),
    ]
}

/// The console's form adding a retention policy to `team` that keeps `tags`, always.
fn retention_form<'a>(
    csrf: &'a str,
    name: &'a str,
    keep: &'a str,
    count: &'a str,
) -> [(&'static str, &'a str); 11] {
    [
        ("csrf", csrf),
        ("namespace", "team"),
        ("form[name]", name),
        ("form[streams]", "app"),
        ("form[exclude_streams]", ""),
        ("form[tags]", "v2"),
        ("form[exclude_tags]", ""),
        ("form[keep]", keep),
        ("form[count]", count),
        ("form[untagged]", "false"),
        ("form[schedule]", ""),
    ]
}

/// A run of policy `name` of `team`, as the console's buttons ask for it.
fn run_form<'a>(csrf: &'a str, name: &'a str, confirm: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("csrf", csrf),
        ("namespace", "team"),
        ("name", name),
        ("confirm", confirm),
    ]
}

/// The console's prune form over `team`: keep one revision of each tag, however young.
fn prune_form<'a>(
    csrf: &'a str,
    younger: &'a str,
    confirm: &'a str,
) -> [(&'static str, &'a str); 6] {
    [
        ("csrf", csrf),
        ("options[namespace]", "team"),
        ("options[keep_tag_revisions]", "1"),
        ("options[keep_younger_than]", younger),
        ("options[all]", "true"),
        ("confirm", confirm),
    ]
}

/// The tags of `team/app` as the image stream API has them.
async fn team_app_tags(server: &TestServer) -> Vec<String> {
    let stream =
        json_of(server.get("/apis/image.openshift.io/v1/namespaces/team/imagestreams/app")).await;
    stream["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag["tag"].as_str().unwrap().to_owned())
        .collect()
}

/// The images a prune's answer, as the console shows it, lists.
fn pruned_images(shown: &Value) -> Vec<String> {
    shown["html"]
        .as_str()
        .unwrap()
        .split("data-image=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// `/console/api/compare` of two references (tags or digests; empty for the defaults).
fn compare_path(namespace: &str, from: &str, to: &str) -> String {
    format!("/console/api/compare?namespace={namespace}&stream=app&from={from}&to={to}&platform=")
}

#[tokio::test]
async fn images_are_compared_for_those_who_may_pull_them_only() {
    let server = TestServer::start();
    let first = push_image(&server, "shop/app", "v1", "one").await;
    let second = push_image(&server, "shop/app", "v1", "two").await;
    push_image(&server, "other/app", "v1", "mine").await;
    server.add_user("viewer", "viewer-password", &[]);
    server.add_user("mallory", "mallory-password", &[]);
    grant_user(&server, "shop", "viewer", "viewer").await;
    grant_user(&server, "other", "admin", "mallory").await;
    let (viewer, _) = console_session(&server, "viewer", "viewer-password").await;
    let (mallory, _) = console_session(&server, "mallory", "mallory-password").await;

    // By default the newest image with the one before it: the variable and the layer changed.
    let compared = read(&viewer, &server, &compare_path("shop", "", "")).await;
    assert_eq!(compared["from"], first.as_str(), "{compared}");
    assert_eq!(compared["to"], second.as_str());
    let diff = &compared["diff"];
    assert_eq!(diff["from"]["digest"], first.as_str());
    assert_eq!(diff["to"]["tags"], json!(["v1"]));
    assert_eq!(
        diff["config"],
        json!([{"field": "Env", "key": "SEED", "before": "one", "after": "two"}])
    );
    let places: Vec<&str> = diff["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["place"].as_str().unwrap())
        .collect();
    assert_eq!(places, ["OnlyFrom", "OnlyTo"]);
    assert_eq!(diff["size_delta"], 0);
    assert!(
        compared["choices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["value"] == "v1" && c["is_tag"] == true),
        "{compared}"
    );
    // A tag and a digest, either way round.
    let swapped = read(&viewer, &server, &compare_path("shop", "v1", &first)).await;
    assert_eq!(swapped["diff"]["config"][0]["before"], "two");
    let missing = refused_read(&viewer, &server, &compare_path("shop", "v9", "v1")).await;
    assert!(missing["NotFound"].is_string(), "{missing}");

    // Another tenant learns nothing of the images, by tag or by digest.
    for path in [
        compare_path("shop", "", ""),
        compare_path("shop", &first, &second),
    ] {
        let refused = refused_read(&mallory, &server, &path).await;
        assert!(refused["Forbidden"].is_string(), "{path}: {refused}");
    }
    // Nor by naming them in a stream of her own.
    let refused = refused_read(&mallory, &server, &compare_path("other", &first, "v1")).await;
    assert!(refused["NotFound"].is_string(), "{refused}");
    // Her own stream has one image: nothing to compare it with.
    let own = read(&mallory, &server, &compare_path("other", "", "")).await;
    assert!(own["diff"].is_null(), "{own}");
}

#[tokio::test]
async fn lifecycle_rules_are_the_namespace_admins_and_dry_runs_delete_nothing() {
    // Retention may take what was just pushed here.
    let server = TestServer::start_with_config("[prune]\nretention_grace_seconds = 0\n", &[]);
    let first = push_image(&server, "team/app", "v1", "first").await;
    push_image(&server, "team/app", "v2", "second").await;
    server.add_user("alice", "alice-password", &[]);
    server.add_user("bob", "bob-password", &[]);
    grant_user(&server, "team", "admin", "alice").await;
    grant_user(&server, "team", "viewer", "bob").await;
    let (alice, alice_csrf) = console_session(&server, "alice", "alice-password").await;
    let (bob, bob_csrf) = console_session(&server, "bob", "bob-password").await;

    // The viewer sees the usage, but neither the rules nor a prune, and changes nothing.
    read(&bob, &server, "/console/api/namespace_usage?namespace=team").await;
    for path in [
        "/console/api/tag_rules?namespace=team",
        "/console/api/retention_policies?namespace=team",
        "/console/api/pruner",
    ] {
        let refused = refused_read(&bob, &server, path).await;
        assert!(refused["Forbidden"].is_string(), "{path}: {refused}");
    }
    for (endpoint, form) in [
        (
            "create_tag_rule",
            tag_rule_form(&bob_csrf, "releases", "v*", "false").to_vec(),
        ),
        (
            "create_tag_rule",
            tag_rule_form(&bob_csrf, "releases", "v*", "true").to_vec(),
        ),
        (
            "create_retention_policy",
            retention_form(&bob_csrf, "keep", "always", "").to_vec(),
        ),
        (
            "prune_images",
            prune_form(&bob_csrf, "0s", "false").to_vec(),
        ),
    ] {
        let refused = change(&bob, &server, endpoint, &form).await.unwrap_err();
        assert!(refused["Forbidden"].is_string(), "{endpoint}: {refused}");
    }

    // The admin previews an immutability rule: what it would protect, nothing stored.
    let preview = change(
        &alice,
        &server,
        "create_tag_rule",
        &tag_rule_form(&alice_csrf, "releases", "v2", "true"),
    )
    .await
    .unwrap();
    assert_eq!(preview["matching"], 1, "{preview}");
    assert_eq!(preview["matching_tags"], json!(["app:v2"]));
    let rules = read(&alice, &server, "/console/api/tag_rules?namespace=team").await;
    assert_eq!(rules, json!([]));
    // A bad pattern is said with the form's label, and nothing is stored.
    let bad = change(
        &alice,
        &server,
        "create_tag_rule",
        &tag_rule_form(&alice_csrf, "releases", "v2, {v", "false"),
    )
    .await
    .unwrap_err();
    assert!(
        bad["Invalid"].as_str().unwrap().starts_with("Tags: \"{v\""),
        "{bad}"
    );
    change(
        &alice,
        &server,
        "create_tag_rule",
        &tag_rule_form(&alice_csrf, "releases", "v2", "false"),
    )
    .await
    .unwrap();
    let rules = read(&alice, &server, "/console/api/tag_rules?namespace=team").await;
    assert_eq!(names_of(&rules), ["releases"]);
    assert_eq!(rules[0]["exclude_tags"], json!(["*-rc*"]));
    let stream = read(
        &bob,
        &server,
        "/console/api/stream?namespace=team&stream=app",
    )
    .await;
    assert_eq!(stream["tags"][1]["name"], "v2");
    assert_eq!(stream["tags"][1]["immutable_rule"], "releases");
    assert_eq!(stream["tags"][0]["immutable_rule"], Value::Null);

    // A namespace admin is no cluster admin: no prune here.
    let refused = refused_read(&alice, &server, "/console/api/pruner").await;
    assert!(refused["Forbidden"].is_string(), "{refused}");
    let refused = change(
        &alice,
        &server,
        "prune_images",
        &prune_form(&alice_csrf, "0s", "false"),
    )
    .await
    .unwrap_err();
    assert!(refused["Forbidden"].is_string(), "{refused}");

    // Retention: a policy keeping v2; a count that is not one is said with its label.
    let bad = change(
        &alice,
        &server,
        "create_retention_policy",
        &retention_form(&alice_csrf, "keep-v2", "pushed", "many"),
    )
    .await
    .unwrap_err();
    assert!(
        bad["Invalid"].as_str().unwrap().starts_with("How many: "),
        "{bad}"
    );
    let made = change(
        &alice,
        &server,
        "create_retention_policy",
        &retention_form(&alice_csrf, "keep-v2", "always", ""),
    )
    .await
    .unwrap();
    assert_eq!(made["streams"], "app");
    assert_eq!(made["rules"], json!(["v2, always"]));
    // The dry run says what would go, and nothing goes.
    let dry = change(
        &alice,
        &server,
        "run_retention_policy",
        &run_form(&alice_csrf, "keep-v2", "false"),
    )
    .await
    .unwrap();
    let html = dry["html"].as_str().unwrap();
    assert!(html.contains(r#"data-result="dry-run""#), "{dry}");
    assert_eq!(dry["removable"], true);
    assert_eq!(pruned_images(&dry), [first.as_str()]);
    assert!(html.contains(r#"<span class="tag">v1</span>"#), "{dry}");
    assert!(
        html.contains("Would remove 1 image and 1 history item from 1 stream, freeing "),
        "{dry}"
    );
    assert_eq!(team_app_tags(&server).await, ["v1", "v2"]);
    let manifest = format!("/v2/team/app/manifests/{first}");
    assert_eq!(
        server.get(&manifest).send().await.unwrap().status(),
        StatusCode::OK
    );
    // Confirmed, it goes; the policy shows its last run.
    let run = change(
        &alice,
        &server,
        "run_retention_policy",
        &run_form(&alice_csrf, "keep-v2", "true"),
    )
    .await
    .unwrap();
    assert!(
        run["html"]
            .as_str()
            .unwrap()
            .contains(r#"data-result="done""#),
        "{run}"
    );
    assert_eq!(run["removable"], false);
    assert_eq!(pruned_images(&run), [first.as_str()]);
    assert_eq!(team_app_tags(&server).await, ["v2"]);
    assert_eq!(
        server.get(&manifest).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let policies = read(
        &alice,
        &server,
        "/console/api/retention_policies?namespace=team",
    )
    .await;
    assert_eq!(names_of(&policies), ["keep-v2"]);
    assert_eq!(policies[0]["last_result"]["images"], 1, "{policies}");
    assert!(policies[0]["last_run"].is_string(), "{policies}");

    // Deleted, the rule and the policy are gone.
    for (endpoint, name) in [
        ("delete_retention_policy", "keep-v2"),
        ("delete_tag_rule", "releases"),
    ] {
        change(
            &alice,
            &server,
            endpoint,
            &[
                ("csrf", alice_csrf.as_str()),
                ("namespace", "team"),
                ("name", name),
            ],
        )
        .await
        .unwrap();
    }
    for path in [
        "/console/api/tag_rules?namespace=team",
        "/console/api/retention_policies?namespace=team",
    ] {
        assert_eq!(read(&alice, &server, path).await, json!([]), "{path}");
    }

    // The cluster administrator previews a prune of the namespace, then prunes.
    let replaced = push_image(&server, "team/app", "v2", "third").await;
    let second = team_app_history(&server).await;
    let (admin, admin_csrf) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        read(&admin, &server, "/console/api/pruner").await,
        Value::Null
    );
    let bad = change(
        &admin,
        &server,
        "prune_images",
        &prune_form(&admin_csrf, "soon", "false"),
    )
    .await
    .unwrap_err();
    assert!(
        bad["Invalid"]
            .as_str()
            .unwrap()
            .starts_with("Keep younger than: "),
        "{bad}"
    );
    let preview = change(
        &admin,
        &server,
        "prune_images",
        &prune_form(&admin_csrf, "0s", "false"),
    )
    .await
    .unwrap();
    assert_eq!(preview["removable"], true);
    assert_eq!(pruned_images(&preview), [second.as_str()]);
    assert_eq!(team_app_history(&server).await, second);
    let pruned = change(
        &admin,
        &server,
        "prune_images",
        &prune_form(&admin_csrf, "0s", "true"),
    )
    .await
    .unwrap();
    assert_eq!(pruned_images(&pruned), [second]);
    assert_eq!(team_app_history(&server).await, replaced);
}

/// The oldest image of `team/app:v2`'s history.
async fn team_app_history(server: &TestServer) -> String {
    let tag =
        json_of(server.get("/apis/image.openshift.io/v1/namespaces/team/imagestreams/app")).await;
    let items = tag["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tag| tag["tag"] == "v2")
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .clone();
    items.last().unwrap()["image"].as_str().unwrap().to_owned()
}

fn names_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_image_page_shows_its_documents_as_stored_and_referrers_sized_as_their_own_pages() {
    let server = TestServer::start();
    let (admin, _) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    let subject = image_manifest(&server, "shop/signed", "signed").await;
    let subject_digest = sha256(&subject);
    put_manifest(&server, "shop/signed", "v1", OCI_MANIFEST, &subject).await;
    let empty = push_blob(&server, "shop/signed", b"{}").await;
    let payload = push_blob(&server, "shop/signed", b"signature").await;
    // Spaced as a client may write it: the page shows these bytes, not a copy made again.
    let referrer = format!(
        "{{\n  \"schemaVersion\": 2, \"mediaType\": \"{OCI_MANIFEST}\",\n  \"artifactType\": \"application/vnd.dev.cosign.artifact.sig.v1+json\",\n  \"config\": {{\"mediaType\": \"application/vnd.oci.empty.v1+json\", \"digest\": \"{empty}\", \"size\": 2}},\n  \"layers\": [{{\"mediaType\": \"application/octet-stream\", \"digest\": \"{payload}\", \"size\": 9}}],\n  \"subject\": {{\"mediaType\": \"{OCI_MANIFEST}\", \"digest\": \"{subject_digest}\", \"size\": {}}}\n}}",
        subject.len()
    );
    let referrer_digest = sha256(referrer.as_bytes());
    let response = put_manifest(
        &server,
        "shop/signed",
        &referrer_digest,
        OCI_MANIFEST,
        referrer.as_bytes(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let page = read(
        &admin,
        &server,
        &format!("/console/api/image?namespace=shop&stream=signed&digest={subject_digest}"),
    )
    .await;
    assert_eq!(
        page["raw_manifest"].as_str().unwrap().as_bytes(),
        subject.as_slice()
    );
    let listed = &page["referrers"][0];
    assert_eq!(listed["digest"], referrer_digest);
    let own = read(
        &admin,
        &server,
        &format!("/console/api/image?namespace=shop&stream=signed&digest={referrer_digest}"),
    )
    .await;
    assert_eq!(own["raw_manifest"].as_str().unwrap(), referrer);
    assert_eq!(
        listed["size"], own["size"],
        "the list and the page disagree"
    );
    assert_eq!(own["size"], 2 + 9);
}

/// Who pushed each image and who moved each tag, as the console shows it (the tag history
/// and the image page); behind the same check as a pull, like everything else there.
#[tokio::test]
async fn the_console_says_who_pushed_and_who_moved_a_tag() {
    let server = TestServer::start();
    let v1 = push_image(&server, "crew/app", "v1", "one").await;
    let pusher_token = server.add_user("pat", "pat-password", &[]);
    grant_user(&server, "crew", "editor", "pat").await;
    let pat = client_with_token(&pusher_token);
    assert_eq!(
        common::push_image_as(&pat, &server, "crew/app", "v1", "two").await,
        StatusCode::CREATED
    );
    // A rollback in the console, by the administrator.
    let (browser, csrf) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    let rollback = tag_form(csrf.as_str(), "crew", "app", "v1", v1.as_str());
    change(&browser, &server, "tag", &rollback).await.unwrap();

    let stream = read(
        &pat,
        &server,
        "/console/api/stream?namespace=crew&stream=app",
    )
    .await;
    let by: Vec<&str> = stream["tags"][0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["by"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(by, ["admin", "pat", "admin"], "{stream}");
    let second = stream["tags"][0]["history"][1]["image"].as_str().unwrap();
    let image = read(
        &pat,
        &server,
        &format!("/console/api/image?namespace=crew&stream=app&digest={second}"),
    )
    .await;
    assert_eq!(image["pushed"]["by"], "pat", "{image}");
    assert!(image["pushed"]["at"].is_string());
    // The first push of v1 was the administrator's, whatever moved the tag since.
    let image = read(
        &pat,
        &server,
        &format!("/console/api/image?namespace=crew&stream=app&digest={v1}"),
    )
    .await;
    assert_eq!(image["pushed"]["by"], "admin", "{image}");

    // Someone who may not pull there reads none of it; a namespace's contents neither.
    let outsider = client_with_token(&server.add_user("out", "out-password", &[]));
    for path in [
        "/console/api/stream?namespace=crew&stream=app".to_owned(),
        format!("/console/api/image?namespace=crew&stream=app&digest={v1}"),
        "/console/api/namespace_contents?name=crew".to_owned(),
    ] {
        let refused = refused_read(&outsider, &server, &path).await;
        assert!(
            refused.to_string().contains("Forbidden") || refused.to_string().contains("NotFound"),
            "{path}: {refused}"
        );
    }
    // Those who may: what deleting the namespace would take with it.
    let contents = read(&pat, &server, "/console/api/namespace_contents?name=crew").await;
    assert_eq!(contents, json!({"streams": 1, "tags": 1, "images": 2}));
}

/// A stream's labels and annotations: shown on its page, set by those who may update it.
#[tokio::test]
async fn stream_labels_are_shown_and_set_by_those_who_may_update() {
    let server = TestServer::start();
    push_image(&server, "lab/app", "v1", "one").await;
    server.add_user("ed", "ed-password", &[]);
    grant_user(&server, "lab", "editor", "ed").await;
    server.add_user("vi", "vi-password", &[]);
    grant_user(&server, "lab", "viewer", "vi").await;
    let form = |csrf: &str, labels: &str| {
        [
            ("csrf", csrf.to_owned()),
            ("namespace", "lab".to_owned()),
            ("stream", "app".to_owned()),
            ("labels", labels.to_owned()),
            ("annotations", "description=The web front".to_owned()),
        ]
    };
    let (editor, csrf) = console_session(&server, "ed", "ed-password").await;
    let fields = form(&csrf, "team=shop\ntier = web");
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    change(&editor, &server, "stream_metadata", &borrowed)
        .await
        .unwrap();
    let stream = read(
        &editor,
        &server,
        "/console/api/stream?namespace=lab&stream=app",
    )
    .await;
    assert_eq!(
        stream["labels"],
        json!([["team", "shop"], ["tier", "web"]]),
        "{stream}"
    );
    assert_eq!(
        stream["annotations"],
        json!([["description", "The web front"]])
    );
    // As the API shows them.
    let object = read(
        &editor,
        &server,
        "/apis/image.openshift.io/v1/namespaces/lab/imagestreams/app",
    )
    .await;
    assert_eq!(object["metadata"]["labels"]["team"], "shop", "{object}");

    // A malformed line is refused, and says which.
    let fields = form(&csrf, "team shop");
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = change(&editor, &server, "stream_metadata", &borrowed)
        .await
        .unwrap_err();
    assert!(
        refused["Invalid"].as_str().unwrap().contains("line 1"),
        "{refused}"
    );

    // A viewer sees them and may not change them.
    let (viewer, viewer_csrf) = console_session(&server, "vi", "vi-password").await;
    let stream = read(
        &viewer,
        &server,
        "/console/api/stream?namespace=lab&stream=app",
    )
    .await;
    assert_eq!(stream["labels"][0], json!(["team", "shop"]));
    let fields = form(&viewer_csrf, "team=evil");
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = change(&viewer, &server, "stream_metadata", &borrowed)
        .await
        .unwrap_err();
    assert!(refused["Forbidden"].is_string(), "{refused}");
}

/// A console page's HTML, with its status.
async fn page(client: &reqwest::Client, server: &TestServer, path: &str) -> (StatusCode, String) {
    let response = client.get(server.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The ids of a page of the audit log, as the server function answers it.
fn audit_ids(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_audit_log_and_the_users_are_the_cluster_administrators_pages() {
    let server = TestServer::start();
    let pat_token = server.add_user("pat", "pat-password", &[]);
    let pat_api = common::client_with_token(&pat_token);
    // More changes than a page shows: namespaces pat makes (and administers).
    for n in 0..55 {
        common::create_namespace(&pat_api, &server, &format!("pats-{n}")).await;
    }
    let (admin, _) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    let (pat, _) = console_session(&server, "pat", "pat-password").await;

    // The administrator: the links, the newest entries first, a page at a time.
    let (status, namespaces) = page(&admin, &server, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(namespaces.contains(r#"href="/audit""#), "{namespaces}");
    assert!(namespaces.contains(r#"href="/users""#), "{namespaces}");
    assert_eq!(
        read(&admin, &server, "/console/api/may_read_audit").await,
        true
    );
    assert_eq!(
        read(&admin, &server, "/console/api/may_list_users").await,
        true
    );
    let first = read(
        &admin,
        &server,
        "/console/api/audit_events?user=&namespace=",
    )
    .await;
    let ids = audit_ids(&first);
    assert_eq!(ids.len(), 50, "{first}");
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]), "{ids:?}");
    let older = first["older"].as_i64().unwrap();
    assert_eq!(older, *ids.last().unwrap());
    assert_eq!(first["filtered_among"], 0);
    // Signing in to the console is in it too.
    assert!(
        first["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "login-console" && e["actor"] == "pat"),
        "{first}"
    );
    let (status, html) = page(&admin, &server, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("namespace-create"), "{html}");
    assert!(
        html.contains(&format!(r#"href="/audit?before={older}""#)),
        "{html}"
    );
    assert_eq!(html.matches("<tr data-audit=").count(), 50);

    // Older: the rest, down to the first namespace; no older page after the last.
    let rest = read(
        &admin,
        &server,
        &format!("/console/api/audit_events?before={older}&user=&namespace="),
    )
    .await;
    let rest_ids = audit_ids(&rest);
    assert!(
        !rest_ids.is_empty() && rest_ids.iter().all(|id| *id < older),
        "{rest}"
    );
    let (status, html) = page(&admin, &server, &format!("/audit?before={older}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(">pats-0<"), "{html}");
    assert!(html.contains(r#"href="/audit">Newest"#), "{html}");
    if rest_ids.len() < 50 {
        assert_eq!(rest["older"], Value::Null, "{rest}");
        assert!(!html.contains(">Older<"), "{html}");
    }

    // Filtered by user and namespace: one entry, said to be filtered by the server.
    let one = read(
        &admin,
        &server,
        "/console/api/audit_events?user=pat&namespace=pats-3",
    )
    .await;
    assert_eq!(audit_ids(&one).len(), 1, "{one}");
    let entry = &one["events"][0];
    assert_eq!(entry["actor"], "pat");
    assert_eq!(entry["action"], "namespace-create");
    assert_eq!(entry["target"], "pats-3");
    assert_eq!(entry["namespace"], "pats-3");
    assert_eq!(entry["success"], true);
    assert_eq!(one["older"], Value::Null, "{one}");
    assert_eq!(one["filtered_among"], 1000);
    let (status, html) = page(&admin, &server, "/audit?user=pat&namespace=pats-3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("<tr data-audit=").count(), 1, "{html}");
    assert!(html.contains("Filtered by the server"), "{html}");
    assert!(html.contains(r#"value="pat""#), "{html}");
    // By user alone: pat's, a page of them and more.
    let pats = read(
        &admin,
        &server,
        "/console/api/audit_events?user=pat&namespace=",
    )
    .await;
    assert_eq!(audit_ids(&pats).len(), 50);
    assert!(
        pats["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "pat")
    );
    assert!(pats["older"].is_i64(), "{pats}");
    let nobody = read(
        &admin,
        &server,
        "/console/api/audit_events?user=nobody&namespace=",
    )
    .await;
    assert_eq!(audit_ids(&nobody), Vec::<i64>::new());
    assert_eq!(nobody["older"], Value::Null);

    // Users: both, with how they sign in; each name opens what they did.
    let users = read(&admin, &server, "/console/api/users").await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "pat"]);
    assert!(
        users[1]["identities"][0]
            .as_str()
            .unwrap()
            .ends_with(":pat"),
        "{users}"
    );
    let (status, html) = page(&admin, &server, "/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<tr data-user="admin""#), "{html}");
    assert!(html.contains(r#"<tr data-user="pat""#), "{html}");
    assert!(html.contains(r#"href="/audit?user=pat""#), "{html}");

    // A plain user: no links, the refusal on both pages and from the server functions.
    let (_, namespaces) = page(&pat, &server, "/").await;
    assert!(!namespaces.contains(r#"href="/audit""#), "{namespaces}");
    assert!(!namespaces.contains(r#"href="/users""#), "{namespaces}");
    assert_eq!(
        read(&pat, &server, "/console/api/may_read_audit").await,
        false
    );
    assert_eq!(
        read(&pat, &server, "/console/api/may_list_users").await,
        false
    );
    for path in ["/audit", "/users", "/audit?user=pat"] {
        let (status, html) = page(&pat, &server, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("Not allowed"), "{path}: {html}");
        assert!(!html.contains("namespace-create"), "{path}: {html}");
    }
    for path in [
        "/console/api/audit_events?user=pat&namespace=",
        "/console/api/users",
    ] {
        let refused = refused_read(&pat, &server, path).await;
        assert!(refused["Forbidden"].is_string(), "{path}: {refused}");
    }

    // Someone not signed in is invited to sign in.
    let visitor = common::browser();
    for path in ["/audit", "/users"] {
        let (status, html) = page(&visitor, &server, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(html.contains("Sign in to see this page"), "{path}: {html}");
    }
}

/// `POST /console/api/change`, as every change button sends it: the change's JSON as the page
/// gave it, with the CSRF token.
async fn make_change(
    client: &reqwest::Client,
    server: &TestServer,
    csrf: &str,
    change: Value,
) -> (StatusCode, Value) {
    let response = client
        .post(server.url("/console/api/change"))
        .json(&json!({ "csrf": csrf, "change": change.to_string() }))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_change_buttons_server_function_decides_as_each_changes_own() {
    let server = TestServer::start();
    push_image(&server, "shop/app", "v1", "one").await;
    server.add_user("eve", "eve-password", &[]);
    let (eve, eve_csrf) = console_session(&server, "eve", "eve-password").await;
    let untag = json!({ "Untag": { "namespace": "shop", "stream": "app", "tag": "v1" } });

    // Another tenant: the CSRF token first, then the decision; nothing goes.
    assert_eq!(
        make_change(&eve, &server, "wrong", untag.clone()).await,
        (StatusCode::FORBIDDEN, json!("Csrf"))
    );
    let (status, refused) = make_change(&eve, &server, &eve_csrf, untag.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(refused["Forbidden"].is_string(), "{refused}");
    let (status, refused) = make_change(
        &eve,
        &server,
        &eve_csrf,
        json!({ "DeleteNamespace": { "namespace": "shop" } }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(tag_status(&server).await, StatusCode::OK);

    // What no button sends is refused as such.
    let (status, invalid) = make_change(&eve, &server, &eve_csrf, json!({ "Explode": {} })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{invalid}");
    assert!(
        invalid["Invalid"]
            .as_str()
            .unwrap()
            .starts_with("not a change the console makes"),
        "{invalid}"
    );

    // The namespace's admin makes it.
    let (admin, admin_csrf) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        make_change(&admin, &server, &admin_csrf, untag).await,
        (StatusCode::OK, Value::Null)
    );
    assert_eq!(tag_status(&server).await, StatusCode::NOT_FOUND);
}

/// Whether `shop/app:v1` is there, as the image stream API answers.
async fn tag_status(server: &TestServer) -> StatusCode {
    server
        .get("/apis/image.openshift.io/v1/namespaces/shop/imagestreamtags/app:v1")
        .send()
        .await
        .unwrap()
        .status()
}
