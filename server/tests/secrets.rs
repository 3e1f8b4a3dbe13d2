//! Registry credentials ("pull secrets") against the running server: Kubernetes Secrets of type
//! `kubernetes.io/dockerconfigjson` at `/api/v1/namespaces/{ns}/secrets`, stored encrypted,
//! never shown again, managed by the namespace's admins only, kept across a restart and deleted
//! with their namespace; the key file's errors at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{
    Storage, TestServer, anonymous, create_namespace, expect_kube_status, expect_status,
    grant_user, item_names, send,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const HUB_PASSWORD: &str = "Hub-Passw0rd-a1b2c3";
const QUAY_PASSWORD: &str = "Quay-Passw0rd-d4e5f6";

fn secrets_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/secrets")
}

/// `GET path` as `client`, which must answer 200: the body as JSON and as text.
async fn get_ok(server: &TestServer, client: &reqwest::Client, path: &str) -> (Value, String) {
    let response = expect_status(client.get(server.url(path)), StatusCode::OK).await;
    let text = response.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

/// A Docker config.json with a Docker Hub entry (`auth`, written as `docker login` does) and a
/// Quay entry (username and password).
fn docker_config() -> String {
    json!({
        "auths": {
            "https://index.docker.io/v1/": {
                "auth": STANDARD.encode(format!("hubuser:{HUB_PASSWORD}")),
            },
            "quay.io": {"username": "robot", "password": QUAY_PASSWORD},
        }
    })
    .to_string()
}

/// As `oc create secret docker-registry` sends it: the config in `data`, in base64.
fn pull_secret(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": STANDARD.encode(docker_config())},
    })
}

/// Creates [`pull_secret`] `name` in `namespace` as `client`, which may.
async fn create_pull_secret(
    server: &TestServer,
    client: &reqwest::Client,
    namespace: &str,
    name: &str,
) {
    let request = client
        .post(server.url(&secrets_path(namespace)))
        .json(&pull_secret(name));
    expect_status(request, StatusCode::CREATED).await;
}

/// What must never appear in an answer: the passwords, in any encoding sent.
fn assert_reveals_nothing(text: &str) {
    let config = docker_config();
    for secret in [
        HUB_PASSWORD.to_owned(),
        QUAY_PASSWORD.to_owned(),
        STANDARD.encode(format!("hubuser:{HUB_PASSWORD}")),
        STANDARD.encode(&config),
    ] {
        assert!(!text.contains(&secret), "{secret:?} shown in {text}");
    }
}

fn assert_shown_without_data(secret: &Value, namespace: &str, name: &str) {
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["apiVersion"], "v1");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(secret["metadata"]["name"], name);
    assert_eq!(secret["metadata"]["namespace"], namespace);
    assert!(secret["metadata"]["creationTimestamp"].is_string());
    assert_eq!(
        secret["metadata"]["annotations"]["berth.io/registries"],
        "docker.io,quay.io"
    );
    assert!(secret.get("data").is_none(), "{secret}");
    assert!(secret.get("stringData").is_none(), "{secret}");
}

/// Every byte the database holds, to look for plaintext in: the data folder's SQLite files, or
/// a dump of the PostgreSQL database.
fn database_bytes(server: &TestServer) -> Vec<u8> {
    match server.storage() {
        Storage::Embedded => {}
        Storage::Postgres { database_url } | Storage::PostgresS3 { database_url, .. } => {
            return common::infra::postgres().dump(database_url);
        }
    }
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("berth.db") {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_are_stored_encrypted_and_never_shown_again() {
    let server = TestServer::start();
    create_namespace(&server.client(), &server, "team").await;
    let admin = server.client();

    let (status, created, text) = send(
        &server,
        &admin,
        Method::POST,
        &secrets_path("team"),
        Some(pull_secret("pull")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_shown_without_data(&created, "team", "pull");
    assert_reveals_nothing(&text);

    // `stringData` takes the config as text, as in Kubernetes.
    let (status, _, text) = send(
        &server,
        &admin,
        Method::POST,
        &secrets_path("team"),
        Some(json!({
            "metadata": {"name": "plain"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": docker_config()},
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_reveals_nothing(&text);

    let (got, text) = get_ok(&server, &admin, &format!("{}/pull", secrets_path("team"))).await;
    assert_shown_without_data(&got, "team", "pull");
    assert_reveals_nothing(&text);

    let (list, text) = get_ok(&server, &admin, &secrets_path("team")).await;
    assert_eq!(list["kind"], "SecretList");
    assert_eq!(item_names(&list), ["plain", "pull"]);
    for item in list["items"].as_array().unwrap() {
        assert_shown_without_data(item, "team", item["metadata"]["name"].as_str().unwrap());
    }
    assert_reveals_nothing(&text);

    // At rest: neither the passwords nor the config are in the database, and the key is in a
    // file of its own, readable by its owner only.
    let stored = database_bytes(&server);
    assert!(
        contains(&stored, "docker.io"),
        "the hosts are kept in the clear"
    );
    for secret in [HUB_PASSWORD, QUAY_PASSWORD, "hubuser", "robot"] {
        assert!(!contains(&stored, secret), "{secret} is in the database");
        // A dump shows bytes as hex.
        let hex = hex::encode(secret);
        assert!(!contains(&stored, &hex), "{secret} is in the database");
    }
    let key_path = server.data_dir().join("secrets.key");
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(STANDARD.decode(key.trim()).unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // After a crash: the same key, the same secrets.
    let server = server.crash_and_restart();
    let admin = server.client();
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key);
    let (got, _) = get_ok(&server, &admin, &format!("{}/pull", secrets_path("team"))).await;
    assert_shown_without_data(&got, "team", "pull");

    // Delete: a Success Status, then it is gone.
    let pull = server.url(&format!("{}/pull", secrets_path("team")));
    let deleted = expect_kube_status(admin.delete(&pull), StatusCode::OK, "").await;
    assert_eq!(deleted["details"]["name"], "pull");
    for method in [Method::GET, Method::DELETE] {
        expect_kube_status(
            admin.request(method, &pull),
            StatusCode::NOT_FOUND,
            "NotFound",
        )
        .await;
    }

    // Secrets go with their namespace: one made again under the name starts empty.
    let (status, _, _) = send(
        &server,
        &admin,
        Method::DELETE,
        "/api/v1/namespaces/team",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    expect_kube_status(
        admin.get(server.url(&secrets_path("team"))),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    create_namespace(&server.client(), &server, "team").await;
    let (_, list, _) = send(&server, &admin, Method::GET, &secrets_path("team"), None).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn only_the_namespace_admin_manages_secrets() {
    let server = TestServer::start();
    create_namespace(&server.client(), &server, "team").await;
    create_namespace(&server.client(), &server, "other").await;
    create_pull_secret(&server, &server.client(), "team", "pull").await;

    let viewer = server.user("vera");
    let editor = server.user("eddie");
    let admin = server.user("ada");
    grant_user(&server, "team", "viewer", "vera").await;
    grant_user(&server, "team", "editor", "eddie").await;
    grant_user(&server, "team", "admin", "ada").await;

    let one = format!("{}/pull", secrets_path("team"));
    for (who, client) in [
        ("viewer", &viewer),
        ("editor", &editor),
        ("anonymous", &anonymous()),
    ] {
        for (method, path, body) in [
            (Method::GET, secrets_path("team"), None),
            (Method::GET, one.clone(), None),
            (
                Method::POST,
                secrets_path("team"),
                Some(pull_secret("mine")),
            ),
            (Method::DELETE, one.clone(), None),
        ] {
            let mut request = client.request(method, server.url(&path));
            if let Some(body) = body {
                request = request.json(&body);
            }
            let refusal = expect_kube_status(request, StatusCode::FORBIDDEN, "Forbidden").await;
            assert_eq!(refusal["details"]["kind"], "secrets", "{who}: {refusal}");
            assert_reveals_nothing(&refusal.to_string());
        }
    }
    // Nothing was created or deleted by them.
    let (_, list, _) = send(
        &server,
        &server.client(),
        Method::GET,
        &secrets_path("team"),
        None,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // The namespace's admin may, there and only there.
    let (_, text) = get_ok(&server, &admin, &secrets_path("team")).await;
    assert_reveals_nothing(&text);
    create_pull_secret(&server, &admin, "team", "ada-pull").await;
    let (status, _, _) = send(&server, &admin, Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::OK);
    expect_kube_status(
        admin.get(server.url(&secrets_path("other"))),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
}

#[tokio::test]
async fn bad_secrets_are_refused_with_the_field_at_fault() {
    let server = TestServer::start();
    create_namespace(&server.client(), &server, "team").await;
    let admin = server.client();
    let dockerconfig = |config: Value| {
        json!({
            "metadata": {"name": "pull"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": STANDARD.encode(config.to_string())},
        })
    };
    let cases = [
        (
            json!({"metadata": {"name": "pull"}, "type": "Opaque", "data": {"a": "Yg=="}}),
            "type",
        ),
        (
            json!({"metadata": {"name": "pull"}, "data": {".dockerconfigjson": STANDARD.encode(docker_config())}}),
            "type",
        ),
        (
            json!({"metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson"}),
            "data[.dockerconfigjson]",
        ),
        (
            json!({"metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson",
                   "data": {".dockerconfigjson": "%%% not base64"}}),
            "data[.dockerconfigjson]",
        ),
        (
            json!({"metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson",
                   "data": {".dockerconfigjson": STANDARD.encode("{not json")}}),
            "data[.dockerconfigjson]",
        ),
        (dockerconfig(json!({})), "data[.dockerconfigjson]"),
        (
            dockerconfig(json!({"auths": {}})),
            "data[.dockerconfigjson]",
        ),
        (
            dockerconfig(json!({"auths": {"quay.io": {"auth": "***"}}})),
            "data[.dockerconfigjson]",
        ),
        (
            dockerconfig(json!({"auths": {"quay.io": {"email": "a@example.com"}}})),
            "data[.dockerconfigjson]",
        ),
        (
            json!({"metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson",
                   "stringData": {".dockerconfigjson": "{\"auths\": "}}),
            "stringData[.dockerconfigjson]",
        ),
        (
            json!({"metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson",
                   "data": {".dockerconfigjson": STANDARD.encode(docker_config()), "extra": "eA=="}}),
            "data[extra]",
        ),
        (
            json!({"metadata": {"name": "Bad_Name"}, "type": "kubernetes.io/dockerconfigjson",
                   "data": {".dockerconfigjson": STANDARD.encode(docker_config())}}),
            "metadata.name",
        ),
    ];
    for (body, field) in cases {
        let refusal = expect_kube_status(
            admin.post(server.url(&secrets_path("team"))).json(&body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
        )
        .await;
        assert_eq!(refusal["details"]["kind"], "secrets");
        assert_eq!(refusal["details"]["causes"][0]["field"], field, "{refusal}");
    }
    // None of them was stored.
    let (_, list, _) = send(&server, &admin, Method::GET, &secrets_path("team"), None).await;
    assert_eq!(list["items"], json!([]));

    // A body that is no object at all, another namespace in the body, a namespace that does
    // not exist, a name taken.
    let secrets = server.url(&secrets_path("team"));
    expect_kube_status(
        admin.post(&secrets).body("not json"),
        StatusCode::BAD_REQUEST,
        "BadRequest",
    )
    .await;
    let mut elsewhere = pull_secret("pull");
    elsewhere["metadata"]["namespace"] = json!("other");
    expect_kube_status(
        admin.post(&secrets).json(&elsewhere),
        StatusCode::BAD_REQUEST,
        "BadRequest",
    )
    .await;
    let refusal = expect_kube_status(
        admin
            .post(server.url(&secrets_path("nowhere")))
            .json(&pull_secret("pull")),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    assert_eq!(refusal["details"]["kind"], "namespaces");
    create_pull_secret(&server, &admin, "team", "pull").await;
    expect_kube_status(
        admin.post(&secrets).json(&pull_secret("pull")),
        StatusCode::CONFLICT,
        "AlreadyExists",
    )
    .await;
}

fn berth(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command.args(args).env_remove("BERTH_LISTEN");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[tokio::test]
async fn the_key_file_is_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let key = dir.path().join("registry.key");
    let key_arg = key.to_str().unwrap();

    // A configured file that is not 32 bytes in base64, by flag or variable: exit code 2, the
    // field named, nothing created.
    for text in ["not base64!", "c2hvcnQ="] {
        std::fs::write(&key, text).unwrap();
        for output in [
            berth(
                &[
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--data-dir",
                    data_arg,
                    "--secrets-key-file",
                    key_arg,
                ],
                &[],
            ),
            berth(
                &["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg],
                &[("BERTH_SECRETS_KEY_FILE", key_arg)],
            ),
        ] {
            assert_eq!(output.status.code(), Some(2));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("secrets.key_file"), "{stderr}");
        }
    }
    assert!(!data.exists());

    // The key Berth made in the data folder, damaged: Berth stops, naming the field.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("secrets.key"), "").unwrap();
    let output = berth(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg],
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("secrets.key_file"), "{stderr}");

    // A good configured key is used, and none is made in the data folder.
    std::fs::write(&key, format!("{}\n", STANDARD.encode([9u8; 32]))).unwrap();
    let server = TestServer::start_with(&["--secrets-key-file", key_arg]);
    create_namespace(&server.client(), &server, "team").await;
    create_pull_secret(&server, &server.client(), "team", "pull").await;
    assert!(!server.data_dir().join("secrets.key").exists());
}
