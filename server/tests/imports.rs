//! Imports from another registry: Debian's docker-registry with htpasswd authentication on
//! loopback, credentials kept as a namespace's pull secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::TestServer;
use common::images::{ContainerEnv, multi_platform_index, run, umoci_image};
use common::remote::{RemoteRegistry, import_one_tag};
use reqwest::StatusCode;
use serde_json::{Value, json};

const IMAGES: &str = "/apis/image.openshift.io/v1/namespaces";

fn push(remote: &RemoteRegistry, source: &str, target: &str, all: bool) {
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    if all {
        args.push("--all");
    }
    let creds = remote.creds();
    let destination = format!("docker://{}/{target}", remote.host);
    args.extend(["--dest-creds", &creds, source, &destination]);
    run("skopeo", &args, &[]);
}

async fn create_namespace(server: &TestServer, name: &str) {
    let response = server
        .client()
        .post(server.url("/api/v1/namespaces"))
        .json(&json!({"metadata": {"name": name}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn pull_secret(
    server: &TestServer,
    namespace: &str,
    name: &str,
    host: &str,
    user: &str,
    password: &str,
) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = json!({"auths": {host: {"auth": auth}}}).to_string();
    let response = server
        .client()
        .post(server.url(&format!("/api/v1/namespaces/{namespace}/secrets")))
        .json(&json!({
            "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config)}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap()
    );
}

async fn import(server: &TestServer, namespace: &str, body: Value) -> Value {
    let response = server
        .client()
        .post(server.url(&format!("{IMAGES}/{namespace}/imagestreamimports")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn get(server: &TestServer, path: &str) -> Value {
    let response = server.client().get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_one_tag_all_tags_and_every_platform_with_a_pull_secret() {
    let dir = tempfile::tempdir().unwrap();
    let remote =
        RemoteRegistry::start(&dir.path().join("remote"), "remote-user", "remote-password");
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 2);
    let v2 = umoci_image(&dir.path().join("layout"), "v2", "amd64", 1);
    push(&remote, &format!("oci:{v1}"), "team/app:v1", false);
    push(&remote, &format!("oci:{v2}"), "team/app:v2", false);
    let server = TestServer::start();
    create_namespace(&server, "mirror").await;

    // Without a pull secret the remote refuses, and the import says so for that image.
    let refused = import(
        &server,
        "mirror",
        import_one_tag("app", &format!("{}/team/app:v1", remote.host), "v1"),
    )
    .await;
    let status = &refused["status"]["images"][0]["status"];
    assert_eq!(status["status"], "Failure", "{refused}");
    assert_eq!(status["reason"], "Unauthorized", "{refused}");
    let stream = get(&server, &format!("{IMAGES}/mirror/imagestreams/app")).await;
    let condition = &stream["status"]["tags"][0]["conditions"][0];
    assert_eq!(condition["type"], "ImportSuccess", "{stream}");
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "Unauthorized");

    // With one, the tag is imported: spec from the remote, the image with its metadata.
    pull_secret(
        &server,
        "mirror",
        "remote",
        &remote.host,
        &remote.user,
        &remote.password,
    )
    .await;
    let imported = import(
        &server,
        "mirror",
        import_one_tag("app", &format!("{}/team/app:v1", remote.host), "v1"),
    )
    .await;
    let image = &imported["status"]["images"][0];
    assert_eq!(image["status"]["status"], "Success", "{imported}");
    let digest = image["image"]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        image["image"]["dockerImageLayers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        image["image"]["dockerImageMetadata"]["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hello"),
        "{image}"
    );
    let remote_digest = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &remote.creds(),
            "--format",
            "{{.Digest}}",
            &format!("docker://{}/team/app:v1", remote.host),
        ],
        &[],
    );
    assert_eq!(digest, remote_digest.trim());
    let tag = get(&server, &format!("{IMAGES}/mirror/imagestreamtags/app:v1")).await;
    assert_eq!(tag["tag"]["from"]["kind"], "DockerImage");
    assert_eq!(
        tag["tag"]["from"]["name"],
        format!("{}/team/app:v1", remote.host)
    );
    assert_eq!(tag["image"]["metadata"]["name"], digest);
    let stream = get(&server, &format!("{IMAGES}/mirror/imagestreams/app")).await;
    assert!(
        stream["status"]["tags"][0]["conditions"].is_null(),
        "the failure is cleared: {stream}"
    );

    // Every tag of the repository.
    let all = import(
        &server,
        "mirror",
        json!({
            "metadata": {"name": "all"},
            "spec": {
                "import": true,
                "repository": {
                    "from": {"kind": "DockerImage", "name": format!("{}/team/app", remote.host)},
                    "importPolicy": {"insecure": true}
                }
            }
        }),
    )
    .await;
    let tags: Vec<&str> = all["status"]["repository"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["v1", "v2"], "{all}");
    let stream = get(&server, &format!("{IMAGES}/mirror/imagestreams/all")).await;
    assert_eq!(
        stream["status"]["tags"].as_array().unwrap().len(),
        2,
        "{stream}"
    );

    // A multi-platform index keeps every platform.
    let env = ContainerEnv::new(&dir.path().join("containers"), &remote.host);
    let index = multi_platform_index(&dir.path().join("multi"), &env);
    push(&remote, &index, "team/multi:latest", true);
    let multi = import(
        &server,
        "mirror",
        import_one_tag(
            "multi",
            &format!("{}/team/multi:latest", remote.host),
            "latest",
        ),
    )
    .await;
    let image = &multi["status"]["images"][0]["image"];
    assert_eq!(
        multi["status"]["images"][0]["status"]["status"], "Success",
        "{multi}"
    );
    let platforms: Vec<String> = image["dockerImageManifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["os"].as_str().unwrap(),
                m["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{image}");
    let child = image["dockerImageManifests"][1]["digest"].as_str().unwrap();
    get(
        &server,
        &format!("{IMAGES}/mirror/imagestreamimages/multi@{child}"),
    )
    .await;

    // A dry run (import false) reads the remote and writes nothing.
    let mut dry = import_one_tag("dry", &format!("{}/team/app:v2", remote.host), "v2");
    dry["spec"]["import"] = json!(false);
    let dry = import(&server, "mirror", dry).await;
    assert_eq!(
        dry["status"]["images"][0]["status"]["status"], "Success",
        "{dry}"
    );
    let missing = server
        .client()
        .get(server.url(&format!("{IMAGES}/mirror/imagestreams/dry")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_leave_the_last_good_image_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "alice", "right-password");
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    push(&remote, &format!("oci:{v1}"), "lib/tool:v1", false);
    let server = TestServer::start();
    create_namespace(&server, "ops").await;
    pull_secret(
        &server,
        "ops",
        "good",
        &remote.host,
        "alice",
        "right-password",
    )
    .await;
    let first = import(
        &server,
        "ops",
        import_one_tag("tool", &format!("{}/lib/tool:v1", remote.host), "v1"),
    )
    .await;
    let digest = first["status"]["images"][0]["image"]["metadata"]["name"].clone();
    assert!(digest.is_string(), "{first}");

    // The newest secret for the host wins: a wrong password now.
    pull_secret(
        &server,
        "ops",
        "rotated",
        &remote.host,
        "alice",
        "wrong-password",
    )
    .await;
    let again = import(
        &server,
        "ops",
        import_one_tag("tool", &format!("{}/lib/tool:v1", remote.host), "v1"),
    )
    .await;
    assert_eq!(
        again["status"]["images"][0]["status"]["reason"], "Unauthorized",
        "{again}"
    );
    let stream = get(&server, &format!("{IMAGES}/ops/imagestreams/tool")).await;
    let tag = &stream["status"]["tags"][0];
    assert_eq!(
        tag["items"][0]["image"], digest,
        "the last good image stays: {stream}"
    );
    assert_eq!(tag["items"].as_array().unwrap().len(), 1);
    assert_eq!(tag["conditions"][0]["type"], "ImportSuccess");
    assert_eq!(tag["conditions"][0]["status"], "False");
    assert!(
        tag["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("credentials")
            || tag["conditions"][0]["message"]
                .as_str()
                .unwrap()
                .contains("401"),
        "{tag}"
    );

    // Bad requests are a Status, and nothing changes.
    for (body, field) in [
        (
            json!({"metadata": {"name": "tool"}, "spec": {"import": true}}),
            "spec",
        ),
        (
            json!({"metadata": {"name": "tool"}, "spec": {"import": true, "images": [{"from": {"kind": "ImageStreamTag", "name": "x:y"}}]}}),
            "spec.images[0].from",
        ),
        (
            json!({"metadata": {"name": "tool"}, "spec": {"import": true, "images": [{"from": {"kind": "DockerImage", "name": "Bad/Name"}}]}}),
            "spec.images[0].from",
        ),
    ] {
        let response = server
            .client()
            .post(server.url(&format!("{IMAGES}/ops/imagestreamimports")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let status: Value = response.json().await.unwrap();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["details"]["causes"][0]["field"], field, "{status}");
    }
    let after = get(&server, &format!("{IMAGES}/ops/imagestreams/tool")).await;
    assert_eq!(after["status"]["tags"][0]["items"][0]["image"], digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_of_an_imported_image_fetch_once_and_keep_working_without_the_remote() {
    let dir = tempfile::tempdir().unwrap();
    let mut remote = RemoteRegistry::start(&dir.path().join("remote"), "bob", "bob-password");
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 3);
    push(&remote, &format!("oci:{v1}"), "upstream/base:v1", false);
    let server = TestServer::start();
    create_namespace(&server, "cache").await;
    pull_secret(
        &server,
        "cache",
        "upstream",
        &remote.host,
        "bob",
        "bob-password",
    )
    .await;
    let mut body = import_one_tag("base", &format!("{}/upstream/base:v1", remote.host), "v1");
    body["spec"]["images"][0]["referencePolicy"] = json!({"type": "Local"});
    let imported = import(&server, "cache", body).await;
    assert_eq!(
        imported["status"]["images"][0]["status"]["status"], "Success",
        "{imported}"
    );

    // Two clients at once, with Berth credentials only: both get the whole image.
    let creds = server.creds();
    let pulls: Vec<_> = (0..2)
        .map(|i| {
            let source = format!("docker://{}/cache/base:v1", server.addr);
            let target = format!(
                "oci:{}:v1",
                dir.path().join(format!("pulled-{i}")).display()
            );
            let creds = creds.clone();
            std::thread::spawn(move || {
                run(
                    "skopeo",
                    &[
                        "copy",
                        "--src-tls-verify=false",
                        "--src-creds",
                        &creds,
                        &source,
                        &target,
                    ],
                    &[],
                )
            })
        })
        .collect();
    for pull in pulls {
        pull.join().unwrap();
    }
    let original = run("skopeo", &["inspect", "--raw", &format!("oci:{v1}")], &[]);
    for i in 0..2 {
        let copy = run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                &format!(
                    "oci:{}:v1",
                    dir.path().join(format!("pulled-{i}")).display()
                ),
            ],
            &[],
        );
        assert_eq!(
            copy, original,
            "the pulled manifest is the remote's, byte for byte"
        );
    }

    // The remote goes away; the cached image is still served.
    remote.stop();
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &format!("docker://{}/cache/base:v1", server.addr),
            &format!("oci:{}:v1", dir.path().join("after-outage").display()),
        ],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_import_picks_up_a_new_push_to_the_remote() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "carol", "carol-password");
    let first = umoci_image(&dir.path().join("layout"), "first", "amd64", 1);
    let second = umoci_image(&dir.path().join("layout"), "second", "amd64", 2);
    push(&remote, &format!("oci:{first}"), "vendor/db:stable", false);
    let server = TestServer::start_with(&["--scheduled-import-interval", "1"]);
    create_namespace(&server, "deps").await;
    pull_secret(
        &server,
        "deps",
        "vendor",
        &remote.host,
        "carol",
        "carol-password",
    )
    .await;
    let mut body = import_one_tag("db", &format!("{}/vendor/db:stable", remote.host), "stable");
    body["spec"]["images"][0]["importPolicy"]["scheduled"] = json!(true);
    let imported = import(&server, "deps", body).await;
    let first_digest = imported["status"]["images"][0]["image"]["metadata"]["name"].clone();
    assert!(first_digest.is_string(), "{imported}");

    push(&remote, &format!("oci:{second}"), "vendor/db:stable", false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let items = loop {
        let stream = get(&server, &format!("{IMAGES}/deps/imagestreams/db")).await;
        let items = stream["status"]["tags"][0]["items"]
            .as_array()
            .unwrap()
            .clone();
        if items.len() == 2 || std::time::Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        items.len(),
        2,
        "the new remote image is a new history item: {items:?}"
    );
    assert_eq!(items[1]["image"], first_digest);
    assert_ne!(items[0]["image"], first_digest);
    let spec = get(&server, &format!("{IMAGES}/deps/imagestreamtags/db:stable")).await;
    assert_eq!(spec["tag"]["importPolicy"]["scheduled"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn berth_import_image_imports_like_oc_import_image() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "dave", "dave-password");
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    push(&remote, &format!("oci:{v1}"), "tools/cli:v1", false);
    let server = TestServer::start();
    create_namespace(&server, "cli").await;
    pull_secret(
        &server,
        "cli",
        "tools",
        &remote.host,
        "dave",
        "dave-password",
    )
    .await;
    let command = |target: &str, from: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args([
                "import-image",
                target,
                "--from",
                from,
                "--insecure",
                "--server",
                &server.base,
            ])
            .env("BERTH_TOKEN", &server.admin_token)
            .output()
            .unwrap()
    };
    let done = command("cli/tool:stable", &format!("{}/tools/cli:v1", remote.host));
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        out.starts_with("cli/tool:stable: imported sha256:"),
        "{out}"
    );
    let tag = get(
        &server,
        &format!("{IMAGES}/cli/imagestreamtags/tool:stable"),
    )
    .await;
    assert_eq!(
        tag["tag"]["from"]["name"],
        format!("{}/tools/cli:v1", remote.host)
    );

    let missing = command("cli/tool:gone", &format!("{}/tools/cli:nope", remote.host));
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("cli/tool:gone: import failed") && err.contains("NotFound"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_through_the_bearer_token_flow_of_another_berth() {
    // Berth answers registry clients with the Docker token flow (a 401 naming a realm), as
    // Docker Hub, Quay and Harbor do: the other instance plays that registry.
    let dir = tempfile::tempdir().unwrap();
    let other = TestServer::start();
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &other.creds(),
            &format!("oci:{v1}"),
            &format!("docker://{}/upstream/app:v1", other.addr),
        ],
        &[],
    );
    let challenge = other
        .client()
        .get(other.url("/v2/"))
        .bearer_auth("x")
        .send()
        .await
        .unwrap();
    assert!(common::header(&challenge, "www-authenticate").starts_with("Bearer realm="));

    let server = TestServer::start();
    create_namespace(&server, "fed").await;
    pull_secret(
        &server,
        "fed",
        "other",
        &other.addr,
        "any",
        &other.admin_token,
    )
    .await;
    let imported = import(
        &server,
        "fed",
        import_one_tag("app", &format!("{}/upstream/app:v1", other.addr), "v1"),
    )
    .await;
    assert_eq!(
        imported["status"]["images"][0]["status"]["status"], "Success",
        "{imported}"
    );
    // And the layers come through the same flow on the first pull.
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &server.creds(),
            &format!("docker://{}/fed/app:v1", server.addr),
            &format!("oci:{}:v1", dir.path().join("pulled").display()),
        ],
        &[],
    );
}
