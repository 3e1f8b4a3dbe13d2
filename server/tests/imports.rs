//! Imports from another registry: Debian's docker-registry with htpasswd authentication on
//! loopback, credentials kept as a namespace's pull secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::images::{
    ContainerEnv, multi_platform_index, raw_manifest, skopeo_copy, skopeo_inspect, umoci_image,
};
use common::remote::{RemoteRegistry, import_one_tag, pull_secret};
use common::scripted::{Reply, Scripted};
use common::{
    ALLOW_LOOPBACK, OCI_MANIFEST, TestServer, create_namespace, expect_json, expect_kube_status,
    wait_until,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const IMAGES: &str = "/apis/image.openshift.io/v1/namespaces";

async fn import(server: &TestServer, namespace: &str, body: Value) -> Value {
    let path = format!("{IMAGES}/{namespace}/imagestreamimports");
    expect_json(server.post(&path).json(&body), StatusCode::CREATED).await
}

async fn get(server: &TestServer, path: &str) -> Value {
    expect_json(server.get(path), StatusCode::OK).await
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_one_tag_all_tags_and_every_platform_with_a_pull_secret() {
    let dir = tempfile::tempdir().unwrap();
    let remote =
        RemoteRegistry::start(&dir.path().join("remote"), "remote-user", "remote-password").await;
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 2);
    let v2 = umoci_image(&dir.path().join("layout"), "v2", "amd64", 1);
    remote.push(&format!("oci:{v1}"), "team/app:v1", false);
    remote.push(&format!("oci:{v2}"), "team/app:v2", false);
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "mirror").await;

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
    remote.pull_secret(&server, "mirror", "remote").await;
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
    let remote_digest = skopeo_inspect(
        &["--format", "{{.Digest}}"],
        &format!("docker://{}/team/app:v1", remote.host),
        Some(&remote.creds()),
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

    // A dry run (`spec.import` false) names the image it read and stores nothing.
    let mut dry = import_one_tag("dry", &format!("{}/team/app:v1", remote.host), "v1");
    dry["spec"]["import"] = json!(false);
    let dry = import(&server, "mirror", dry).await;
    assert_eq!(
        dry["status"]["images"][0]["image"]["metadata"]["name"], digest,
        "{dry}"
    );
    let missing = server
        .get(&format!("{IMAGES}/mirror/imagestreams/dry"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

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
    remote.push(&index, "team/multi:latest", true);
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
    expect_kube_status(
        server.get(&format!("{IMAGES}/mirror/imagestreams/dry")),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_leave_the_last_good_image_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "alice", "right-password").await;
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    remote.push(&format!("oci:{v1}"), "lib/tool:v1", false);
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "ops").await;
    remote.pull_secret(&server, "ops", "good").await;
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
        let status = expect_kube_status(
            server
                .post(&format!("{IMAGES}/ops/imagestreamimports"))
                .json(&body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
        )
        .await;
        assert_eq!(status["details"]["causes"][0]["field"], field, "{status}");
    }
    let after = get(&server, &format!("{IMAGES}/ops/imagestreams/tool")).await;
    assert_eq!(after["status"]["tags"][0]["items"][0]["image"], digest);
}

/// As OpenShift: a failed import leaves an existing tag's spec `from` where it was (only a new
/// tag gets the spec it asked for), so a mistyped source does not silently repoint the tag.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_import_into_an_existing_tag_keeps_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "alice", "right-password").await;
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    remote.push(&format!("oci:{v1}"), "lib/tool:v1", false);
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "keep").await;
    remote.pull_secret(&server, "keep", "good").await;
    let source = format!("{}/lib/tool:v1", remote.host);
    let first = import(&server, "keep", import_one_tag("tool", &source, "v1")).await;
    let digest = first["status"]["images"][0]["image"]["metadata"]["name"].clone();
    assert!(digest.is_string(), "{first}");

    let missing = format!("{}/lib/absent:v1", remote.host);
    let failed = import(&server, "keep", import_one_tag("tool", &missing, "v1")).await;
    assert_eq!(
        failed["status"]["images"][0]["status"]["status"], "Failure",
        "{failed}"
    );
    let stream = get(&server, &format!("{IMAGES}/keep/imagestreams/tool")).await;
    let spec = &stream["spec"]["tags"][0];
    assert_eq!(spec["name"], "v1");
    assert_eq!(spec["from"]["name"], source.as_str(), "{stream}");
    let tag = &stream["status"]["tags"][0];
    assert_eq!(tag["items"][0]["image"], digest);
    assert_eq!(tag["conditions"][0]["status"], "False", "{stream}");

    // A new tag whose first import fails gets the spec it asked for, and no image.
    import(&server, "keep", import_one_tag("tool", &missing, "v2")).await;
    let stream = get(&server, &format!("{IMAGES}/keep/imagestreams/tool")).await;
    let v2 = stream["spec"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "v2")
        .unwrap();
    assert_eq!(v2["from"]["name"], missing.as_str(), "{stream}");
}

/// A plain-HTTP registry reached as `https`: the reason says to tick "Plain HTTP", not what
/// rustls says ("received corrupt message of type InvalidContentType").
#[tokio::test(flavor = "multi_thread")]
async fn a_plain_http_registry_imported_as_https_says_to_tick_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "alice", "right-password").await;
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    remote.push(&format!("oci:{v1}"), "lib/tool:v1", false);
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "tls").await;
    let mut body = import_one_tag("tool", &format!("{}/lib/tool:v1", remote.host), "v1");
    body["spec"]["images"][0]["importPolicy"]["insecure"] = json!(false);
    let failed = import(&server, "tls", body).await;
    let status = &failed["status"]["images"][0]["status"];
    assert_eq!(status["status"], "Failure", "{failed}");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("Plain HTTP"), "{message}");
    assert!(!message.contains("InvalidContentType"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_of_an_imported_image_fetch_once_and_keep_working_without_the_remote() {
    let dir = tempfile::tempdir().unwrap();
    let mut remote = RemoteRegistry::start(&dir.path().join("remote"), "bob", "bob-password").await;
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 3);
    remote.push(&format!("oci:{v1}"), "upstream/base:v1", false);
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "cache").await;
    remote.pull_secret(&server, "cache", "upstream").await;
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
            std::thread::spawn(move || skopeo_copy(&source, &target, &creds))
        })
        .collect();
    for pull in pulls {
        pull.join().unwrap();
    }
    let original = raw_manifest(&format!("oci:{v1}"), None);
    for i in 0..2 {
        let pulled = dir.path().join(format!("pulled-{i}"));
        let copy = raw_manifest(&format!("oci:{}:v1", pulled.display()), None);
        assert_eq!(
            copy, original,
            "the pulled manifest is the remote's, byte for byte"
        );
    }

    // The remote goes away; the cached image is still served.
    remote.stop();
    skopeo_copy(
        &format!("docker://{}/cache/base:v1", server.addr),
        &format!("oci:{}:v1", dir.path().join("after-outage").display()),
        &creds,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_import_picks_up_a_new_push_to_the_remote() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "carol", "carol-password").await;
    let first = umoci_image(&dir.path().join("layout"), "first", "amd64", 1);
    let second = umoci_image(&dir.path().join("layout"), "second", "amd64", 2);
    remote.push(&format!("oci:{first}"), "vendor/db:stable", false);
    let server = TestServer::start_with(&[
        "--scheduled-import-interval",
        "1",
        "--egress-allow",
        "127.0.0.1/32",
    ]);
    create_namespace(&server.client(), &server, "deps").await;
    remote.pull_secret(&server, "deps", "vendor").await;
    let mut body = import_one_tag("db", &format!("{}/vendor/db:stable", remote.host), "stable");
    body["spec"]["images"][0]["importPolicy"]["scheduled"] = json!(true);
    let imported = import(&server, "deps", body).await;
    let first_digest = imported["status"]["images"][0]["image"]["metadata"]["name"].clone();
    assert!(first_digest.is_string(), "{imported}");

    remote.push(&format!("oci:{second}"), "vendor/db:stable", false);
    let items = wait_until("the new remote image as a new history item", async || {
        let stream = get(&server, &format!("{IMAGES}/deps/imagestreams/db")).await;
        let items = stream["status"]["tags"][0]["items"].as_array().unwrap();
        if items.len() == 2 {
            Ok(items.clone())
        } else {
            Err(format!("{items:?}"))
        }
    })
    .await;
    assert_eq!(items[1]["image"], first_digest);
    assert_ne!(items[0]["image"], first_digest);
    let spec = get(&server, &format!("{IMAGES}/deps/imagestreamtags/db:stable")).await;
    assert_eq!(spec["tag"]["importPolicy"]["scheduled"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn berth_import_image_imports_like_oc_import_image() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "dave", "dave-password").await;
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    remote.push(&format!("oci:{v1}"), "tools/cli:v1", false);
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "cli").await;
    remote.pull_secret(&server, "cli", "tools").await;
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
    skopeo_copy(
        &format!("oci:{v1}"),
        &format!("docker://{}/upstream/app:v1", other.addr),
        &other.creds(),
    );
    let challenge = other.get("/v2/").bearer_auth("x").send().await.unwrap();
    assert!(common::header(&challenge, "www-authenticate").starts_with("Bearer realm="));

    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "fed").await;
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
    skopeo_copy(
        &format!("docker://{}/fed/app:v1", server.addr),
        &format!("oci:{}:v1", dir.path().join("pulled").display()),
        &server.creds(),
    );
}

// ---- the egress policy ------------------------------------------------------------------------

/// How the egress policy's refusals end.
const REFUSED: &str = "is not allowed by the egress policy ([egress] allow)";

/// The status of the first image of an import.
fn first_status(imported: &Value) -> &Value {
    &imported["status"]["images"][0]["status"]
}

fn message(status: &Value) -> &str {
    status["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_cannot_redirect_an_import_or_a_pull_to_an_internal_address() {
    // 127.0.0.2 plays a cloud metadata service: the allow-list opens 127.0.0.1 only.
    let internal = Scripted::start("127.0.0.2").await;
    internal.reply(
        "/latest/meta-data/credentials",
        Reply::Content {
            content_type: "text/plain".into(),
            body: b"instance-credentials".to_vec(),
        },
    );
    let to_internal = format!("{}/latest/meta-data/credentials", internal.base);
    let remote = Scripted::start("127.0.0.1").await;
    let (_, layer) = remote.image("evil/app", "v1", Some(Reply::Redirect(to_internal.clone())));
    remote.image("evil/app", "v2", None);
    remote.reply(
        "/v2/evil/app/manifests/v2",
        Reply::Redirect(to_internal.clone()),
    );
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "evil").await;

    // The layer is linked at import and fetched at the first pull: its redirect is refused,
    // and the pull gets nothing of the internal service.
    let mut body = import_one_tag("app", &format!("{}/evil/app:v1", remote.host()), "v1");
    body["spec"]["images"][0]["referencePolicy"] = json!({"type": "Local"});
    let imported = import(&server, "evil", body).await;
    assert_eq!(first_status(&imported)["status"], "Success", "{imported}");
    let pulled = server
        .get(&format!("/v2/evil/app/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    let status = pulled.status();
    let content = pulled.bytes().await.unwrap_or_default();
    assert_ne!(status, StatusCode::OK);
    assert!(
        !String::from_utf8_lossy(&content).contains("instance-credentials"),
        "{status}: the internal answer reached the client"
    );

    // A manifest's redirect is refused at import, in the condition's words.
    let refused = import(
        &server,
        "evil",
        import_one_tag("app", &format!("{}/evil/app:v2", remote.host()), "v2"),
    )
    .await;
    let status = first_status(&refused);
    assert_eq!(status["status"], "Failure", "{refused}");
    assert_eq!(status["reason"], "Forbidden", "{refused}");
    assert!(
        message(status).contains(&format!("the address 127.0.0.2 (loopback) {REFUSED}")),
        "{refused}"
    );
    let stream = get(&server, &format!("{IMAGES}/evil/imagestreams/app")).await;
    let v2 = stream["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == "v2")
        .unwrap();
    assert!(
        v2["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains(REFUSED),
        "{stream}"
    );
    assert!(
        internal.seen().is_empty(),
        "the internal service was reached: {:?}",
        internal.seen()
    );

    // Redirects are capped.
    let looping = format!("{}/v2/evil/app/manifests/v3", remote.base);
    remote.reply("/v2/evil/app/manifests/v3", Reply::Redirect(looping));
    let looped = import(
        &server,
        "evil",
        import_one_tag("app", &format!("{}/evil/app:v3", remote.host()), "v3"),
    )
    .await;
    assert!(
        message(first_status(&looped)).contains("more than 5 redirects"),
        "{looped}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_allow_list_loopback_registries_are_refused_by_address_and_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "erin", "erin-password").await;
    let v1 = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    remote.push(&format!("oci:{v1}"), "team/app:v1", false);
    let server = TestServer::start();
    create_namespace(&server.client(), &server, "local").await;
    let port = remote.host.rsplit_once(':').unwrap().1;
    for (secret, host, refused) in [
        (
            "by-address",
            remote.host.clone(),
            format!("the address 127.0.0.1 (loopback) {REFUSED}"),
        ),
        (
            "by-name",
            format!("localhost:{port}"),
            format!("(loopback) of localhost {REFUSED}"),
        ),
    ] {
        pull_secret(&server, "local", secret, &host, "erin", "erin-password").await;
        let imported = import(
            &server,
            "local",
            import_one_tag("app", &format!("{host}/team/app:v1"), "v1"),
        )
        .await;
        let status = first_status(&imported);
        assert_eq!(status["status"], "Failure", "{imported}");
        assert_eq!(status["reason"], "Forbidden", "{imported}");
        assert!(message(status).contains(&refused), "{imported}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_go_to_no_other_host_neither_to_a_token_realm_nor_through_a_redirect() {
    // `localhost:PORT` is another host than `127.0.0.1:PORT` (and an allowed address).
    let elsewhere = Scripted::start("127.0.0.1").await;
    let elsewhere_by_name = format!("http://localhost:{}", elsewhere.addr.port());
    elsewhere.reply(
        "/token",
        Reply::Content {
            content_type: "application/json".into(),
            body: br#"{"token":"from-elsewhere"}"#.to_vec(),
        },
    );
    let remote = Scripted::start("127.0.0.1").await;
    let registry = remote.host();
    remote.reply(
        "/token",
        Reply::Content {
            content_type: "application/json".into(),
            body: br#"{"token":"from-the-registry"}"#.to_vec(),
        },
    );
    // v1: a bearer challenge whose realm is on another host.
    remote.image("evil/app", "v1", None);
    remote.challenge(
        "/v2/evil/app/manifests/v1",
        &format!(r#"Bearer realm="{elsewhere_by_name}/token",service="evil""#),
    );
    // v2 and v3: Basic, then a bearer token from the registry's own realm; either way the
    // manifest is then redirected to another host.
    for (tag, challenge) in [
        ("v2", r#"Basic realm="evil""#.to_owned()),
        (
            "v3",
            format!(r#"Bearer realm="http://{registry}/token",service="evil""#),
        ),
    ] {
        let (digest, _) = remote.image("evil/app", tag, None);
        let copy = format!("/copy/{tag}");
        elsewhere.reply(
            &copy,
            Reply::Content {
                content_type: OCI_MANIFEST.into(),
                body: manifest_of(&remote, tag, &digest).await,
            },
        );
        remote.reply(
            &format!("/v2/evil/app/manifests/{tag}"),
            Reply::Challenge {
                challenge,
                then: Box::new(Reply::Redirect(format!("{elsewhere_by_name}{copy}"))),
            },
        );
    }
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "evil").await;
    pull_secret(&server, "evil", "creds", &registry, "victim", "s3cret").await;

    let refused = import(
        &server,
        "evil",
        import_one_tag("app", &format!("{registry}/evil/app:v1"), "v1"),
    )
    .await;
    let status = first_status(&refused);
    assert_eq!(status["reason"], "Forbidden", "{refused}");
    assert!(
        message(status).contains("token realm")
            && message(status).contains("[egress] token_realm_hosts"),
        "{refused}"
    );
    assert!(
        elsewhere.seen().is_empty(),
        "the other host was asked: {:?}",
        elsewhere.seen()
    );

    for tag in ["v2", "v3"] {
        let imported = import(
            &server,
            "evil",
            import_one_tag("app", &format!("{registry}/evil/app:{tag}"), tag),
        )
        .await;
        assert_eq!(first_status(&imported)["status"], "Success", "{imported}");
        let copies: Vec<_> = elsewhere
            .seen()
            .into_iter()
            .filter(|seen| seen.path == format!("/copy/{tag}"))
            .collect();
        assert!(!copies.is_empty(), "{tag}: the redirect was not followed");
        assert!(
            copies.iter().all(|seen| seen.authorization.is_none()),
            "{tag}: credentials went to another host: {copies:?}"
        );
    }
    // The registry itself got the credentials (so there were some to leak).
    assert!(remote.seen().iter().any(|seen| {
        seen.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))
    }));

    // A realm the operator lists is asked, with the credentials.
    let listed = TestServer::start_with_config(
        "[egress]\nallow = [\"127.0.0.1/32\"]\ntoken_realm_hosts = [\"localhost\"]\n",
        &[],
    );
    create_namespace(&listed.client(), &listed, "evil").await;
    pull_secret(&listed, "evil", "creds", &registry, "victim", "s3cret").await;
    let imported = import(
        &listed,
        "evil",
        import_one_tag("app", &format!("{registry}/evil/app:v1"), "v1"),
    )
    .await;
    assert_eq!(first_status(&imported)["status"], "Success", "{imported}");
    assert!(
        elsewhere
            .seen()
            .iter()
            .any(|seen| seen.path == "/token" && seen.authorization.is_some()),
        "{:?}",
        elsewhere.seen()
    );
}

/// The manifest a scripted registry serves for `repository:tag` at `digest`.
async fn manifest_of(remote: &Scripted, tag: &str, digest: &str) -> Vec<u8> {
    let manifest = reqwest::get(format!("{}/v2/evil/app/manifests/{digest}", remote.base))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert_eq!(common::sha256(&manifest), digest, "{tag}");
    manifest
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_registry_is_never_followed_to_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let secure = Scripted::start_tls(
        "127.0.0.1",
        &certified.cert.pem(),
        &certified.signing_key.serialize_pem(),
    )
    .await;
    let plain = Scripted::start("127.0.0.1").await;
    // v1's manifest is redirected to the same content over plain http.
    secure.image("evil/app", "v1", None);
    plain.image("evil/app", "v1", None);
    secure.reply(
        "/v2/evil/app/manifests/v1",
        Reply::Redirect(format!("{}/v2/evil/app/manifests/v1", plain.base)),
    );
    // v2 asks for a token at a plain http realm.
    secure.image("evil/app", "v2", None);
    secure.challenge(
        "/v2/evil/app/manifests/v2",
        &format!(r#"Bearer realm="{}/token""#, plain.base),
    );
    plain.reply(
        "/token",
        Reply::Content {
            content_type: "application/json".into(),
            body: br#"{"token":"t"}"#.to_vec(),
        },
    );
    // v3 is served as it should be.
    secure.image("evil/app", "v3", None);
    let server = TestServer::start_with(&[
        "--egress-allow",
        "127.0.0.1/32",
        "--egress-ca-file",
        ca.to_str().unwrap(),
    ]);
    create_namespace(&server.client(), &server, "evil").await;
    let over_https = |tag: &str| {
        let mut body = import_one_tag("app", &format!("{}/evil/app:{tag}", secure.host()), tag);
        body["spec"]["images"][0]["importPolicy"] = json!({"insecure": false});
        body
    };

    let redirected = import(&server, "evil", over_https("v1")).await;
    assert_eq!(
        first_status(&redirected)["reason"],
        "Forbidden",
        "{redirected}"
    );
    assert!(
        message(first_status(&redirected)).contains("a redirect from https to plain http"),
        "{redirected}"
    );
    let realm = import(&server, "evil", over_https("v2")).await;
    assert_eq!(first_status(&realm)["reason"], "Forbidden", "{realm}");
    assert!(
        message(first_status(&realm)).contains("over plain http is refused"),
        "{realm}"
    );
    assert!(plain.seen().is_empty(), "{:?}", plain.seen());
    let fine = import(&server, "evil", over_https("v3")).await;
    assert_eq!(first_status(&fine)["status"], "Success", "{fine}");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_larger_than_their_limit_are_refused_as_they_stream() {
    const ENDLESS: u64 = 256 * 1024 * 1024;
    // Far less than was offered: what the kernel's buffers held, and the limit.
    const READ_AT_MOST: u64 = 64 * 1024 * 1024;
    let manifests = Scripted::start("127.0.0.1").await;
    manifests.reply(
        "/v2/big/app/manifests/v1",
        Reply::Endless {
            content_type: OCI_MANIFEST.into(),
            prefix: br#"{"schemaVersion":2,"#.to_vec(),
            total: ENDLESS,
        },
    );
    let tags = Scripted::start("127.0.0.1").await;
    tags.reply(
        "/v2/big/app/tags/list",
        Reply::Endless {
            content_type: "application/json".into(),
            prefix: br#"{"name":"big/app","tags":[""#.to_vec(),
            total: ENDLESS,
        },
    );
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "big").await;

    let imported = import(
        &server,
        "big",
        import_one_tag("app", &format!("{}/big/app:v1", manifests.host()), "v1"),
    )
    .await;
    let status = first_status(&imported);
    assert_eq!(status["status"], "Failure", "{imported}");
    assert!(
        message(status).contains("larger than 4194304 bytes"),
        "{imported}"
    );
    assert!(
        manifests.sent() < READ_AT_MOST,
        "{} bytes were read",
        manifests.sent()
    );

    let all = import(
        &server,
        "big",
        json!({
            "metadata": {"name": "app"},
            "spec": {
                "import": true,
                "repository": {
                    "from": {"kind": "DockerImage", "name": format!("{}/big/app", tags.host())},
                    "importPolicy": {"insecure": true}
                }
            }
        }),
    )
    .await;
    let status = &all["status"]["repository"]["status"];
    assert_eq!(status["status"], "Failure", "{all}");
    assert!(message(status).contains("larger than"), "{all}");
    assert!(
        tags.sent() < READ_AT_MOST,
        "{} bytes were read",
        tags.sent()
    );
}
