//! Where a repository's blobs come from: only an upload whose digest matched, a mount from a
//! repository the caller may pull, or a pull-through fetch whose bytes were verified gives a
//! repository a blob. An import that merely names a digest (a foreign layer of a forged
//! manifest) gives nothing, whoever else stores it; declared sizes are checked; pull-through
//! serves nothing unverified, keeps one fetch per repository, and is bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::images::{raw_manifest, skopeo_copy, umoci_image};
use common::remote::{RemoteRegistry, import_one_tag};
use common::{
    ALLOW_LOOPBACK, OCI_INDEX, OCI_MANIFEST, TestServer, client_with_token, create_namespace,
    error_code, expect_json, expect_status, json_of, push_blob_as, sha256, wait_until,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IMAGES: &str = "/apis/image.openshift.io/v1/namespaces";
const ACCESS: &str = "/apis/access.berth.io/v1";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// A signed-in user of the test server: a client with their token, and skopeo credentials.
struct User {
    client: reqwest::Client,
    creds: String,
}

fn user(server: &TestServer, name: &str) -> User {
    let token = server.add_user(name, &format!("{name}-password"), &[]);
    User {
        client: client_with_token(&token),
        creds: format!("{name}:{token}"),
    }
}

/// A `GET` or `HEAD` of a blob, as `client`.
async fn blob(
    client: &reqwest::Client,
    server: &TestServer,
    method: Method,
    repository: &str,
    digest: &str,
) -> reqwest::Response {
    client
        .request(
            method,
            server.url(&format!("/v2/{repository}/blobs/{digest}")),
        )
        .send()
        .await
        .unwrap()
}

/// POSTs `body` to `path` as `client`, which must create something; returns the answer.
async fn create(server: &TestServer, client: &reqwest::Client, path: &str, body: Value) -> Value {
    expect_json(
        client.post(server.url(path)).json(&body),
        StatusCode::CREATED,
    )
    .await
}

/// A `PUT` of manifest `body` as `client` to `repository:reference`, not sent yet.
fn manifest_put(
    server: &TestServer,
    client: &reqwest::Client,
    repository: &str,
    reference: &str,
    media_type: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    client
        .put(server.url(&format!("/v2/{repository}/manifests/{reference}")))
        .header("content-type", media_type)
        .body(serde_json::to_vec(body).unwrap())
}

/// The first layer's digest and size of the image at `oci:{image}`.
fn first_layer(image: &str) -> (String, u64) {
    let manifest: Value =
        serde_json::from_str(&raw_manifest(&format!("oci:{image}"), None)).unwrap();
    let layer = &manifest["layers"][0];
    (
        layer["digest"].as_str().unwrap().to_owned(),
        layer["size"].as_u64().unwrap(),
    )
}

/// A Docker image manifest whose only layer is a foreign one naming `digest`, with a config
/// pushed by `client` to `repository`: what an attacker can push without holding the layer.
async fn forged_manifest(
    server: &TestServer,
    client: &reqwest::Client,
    repository: &str,
    digest: &str,
    size: u64,
) -> Value {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = push_blob_as(client, server, repository, config).await;
    json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{
            "mediaType": FOREIGN_LAYER,
            "digest": digest,
            "size": size,
            "urls": ["https://example.invalid/layer.tar.gz"]
        }]
    })
}

/// Imports `from` into `namespace/stream:tag` as `client`; returns the first image's status.
async fn import(
    server: &TestServer,
    client: &reqwest::Client,
    namespace: &str,
    body: Value,
) -> Value {
    let path = format!("{IMAGES}/{namespace}/imagestreamimports");
    let imported = create(server, client, &path, body).await;
    imported["status"]["images"][0]["status"].clone()
}

/// The attacker's setup of issue 12: `evil/src:t` names `digest` (of `size` bytes) as a
/// foreign layer, `evil/src` is readable by anyone, and `evil/dst:t` is imported from it.
async fn forge_and_import(server: &TestServer, attacker: &User, digest: &str, size: u64) {
    create_namespace(&attacker.client, server, "evil").await;
    let manifest = forged_manifest(server, &attacker.client, "evil/src", digest, size).await;
    expect_status(
        manifest_put(
            server,
            &attacker.client,
            "evil/src",
            "t",
            DOCKER_MANIFEST,
            &manifest,
        ),
        StatusCode::CREATED,
    )
    .await;
    // The foreign layer is not in evil/src: it serves nothing of it.
    let response = attacker
        .client
        .get(server.url(&format!("/v2/evil/src/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let anyone_pulls = json!({
        "roleRef": {"name": "viewer"},
        "subject": {"kind": "Group", "name": "system:unauthenticated"}
    });
    let path = format!("{ACCESS}/namespaces/evil/rolebindings");
    create(server, &attacker.client, &path, anyone_pulls).await;
    let status = import(
        server,
        &attacker.client,
        "evil",
        import_one_tag("dst", &format!("{}/evil/src:t", server.addr), "t"),
    )
    .await;
    assert_eq!(status["status"], "Success", "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn naming_another_tenants_layer_in_an_imported_manifest_reads_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    let victim = user(&server, "victim");
    let attacker = user(&server, "mallory");

    // The victim pushes a private image with skopeo to a namespace of theirs.
    create_namespace(&victim.client, &server, "victim").await;
    let image = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    let (layer, layer_size) = first_layer(&image);
    skopeo_copy(
        &format!("oci:{image}"),
        &format!("docker://{}/victim/app:v1", server.addr),
        &victim.creds,
    );
    let response = blob(&attacker.client, &server, Method::GET, "victim/app", &layer).await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "the image is private"
    );

    forge_and_import(&server, &attacker, &layer, layer_size).await;

    // Neither a GET nor a HEAD in the importing repository gives the victim's layer: its
    // remote (evil/src) does not have it.
    let response = blob(&attacker.client, &server, Method::GET, "evil/dst", &layer).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.bytes().await.unwrap();
    assert_ne!(sha256(&body), layer, "the victim's bytes were served");
    assert!(
        body.len() < 1000,
        "an error, not a layer: {} bytes",
        body.len()
    );
    let response = blob(&attacker.client, &server, Method::HEAD, "evil/dst", &layer).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // A remote link is no mount source.
    let response = attacker
        .client
        .post(server.url(&format!(
            "/v2/evil/mounted/blobs/uploads/?mount={layer}&from=evil/dst"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "an upload, not a mount"
    );

    // Tagging the imported image into another stream copies the remote link as one.
    let request = attacker
        .client
        .put(server.url(&format!("{IMAGES}/evil/imagestreamtags/copy:t")))
        .json(&json!({"tag": {"from": {"kind": "ImageStreamTag", "namespace": "evil", "name": "dst:t"}}}));
    expect_status(request, StatusCode::CREATED).await;
    let response = blob(&attacker.client, &server, Method::GET, "evil/copy", &layer).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The victim's image is untouched: pulled by skopeo, the layer with its real size.
    skopeo_copy(
        &format!("docker://{}/victim/app:v1", server.addr),
        &format!("oci:{}:v1", dir.path().join("pulled").display()),
        &victim.creds,
    );
    let response = blob(&victim.client, &server, Method::GET, "victim/app", &layer).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(layer_size));
    assert_eq!(sha256(&response.bytes().await.unwrap()), layer);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_size_for_a_digest_not_stored_yet_poisons_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    let victim = user(&server, "victim");
    let attacker = user(&server, "mallory");
    let image = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    let (layer, layer_size) = first_layer(&image);

    // The attacker names the digest first, with another size.
    forge_and_import(&server, &attacker, &layer, layer_size + 1_000_000).await;

    // An honest push and pull of it later work, with the bytes' size.
    create_namespace(&victim.client, &server, "victim").await;
    skopeo_copy(
        &format!("oci:{image}"),
        &format!("docker://{}/victim/app:v1", server.addr),
        &victim.creds,
    );
    skopeo_copy(
        &format!("docker://{}/victim/app:v1", server.addr),
        &format!("oci:{}:v1", dir.path().join("pulled").display()),
        &victim.creds,
    );
    for method in [Method::HEAD, Method::GET] {
        let response = blob(
            &victim.client,
            &server,
            method.clone(),
            "victim/app",
            &layer,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(
            common::header(&response, "content-length"),
            layer_size.to_string(),
            "{method}"
        );
    }
    // And the attacker's repository still has nothing of it.
    let response = blob(&attacker.client, &server, Method::GET, "evil/dst", &layer).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn declared_sizes_must_be_the_content_sizes_and_fit() {
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    let client = server.client();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = b"a layer of eleven".as_slice();
    let config_digest = push_blob_as(&client, &server, "sizes/app", config).await;
    let layer_digest = push_blob_as(&client, &server, "sizes/app", layer).await;
    let image = |config_size: Value, layer_size: Value| {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]
        })
    };

    for (config_size, layer_size, named) in [
        (json!(config.len()), json!(layer.len() + 1), &layer_digest),
        (json!(config.len() - 1), json!(layer.len()), &config_digest),
        (json!(u64::MAX), json!(layer.len()), &config_digest),
        (
            json!(config.len()),
            json!(i64::MAX as u64 + 1),
            &layer_digest,
        ),
    ] {
        let response = manifest_put(
            &server,
            &client,
            "sizes/app",
            "bad",
            OCI_MANIFEST,
            &image(config_size.clone(), layer_size.clone()),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(named.as_str()), "{message}");
    }
    let good = image(json!(config.len()), json!(layer.len()));
    expect_status(
        manifest_put(&server, &client, "sizes/app", "v1", OCI_MANIFEST, &good),
        StatusCode::CREATED,
    )
    .await;
    let child_size = serde_json::to_vec(&good).unwrap().len();
    let child_digest = sha256(&serde_json::to_vec(&good).unwrap());

    // An index's children too.
    let index = |size: usize| {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child_digest, "size": size,
                           "platform": {"os": "linux", "architecture": "amd64"}}]
        })
    };
    let response = manifest_put(
        &server,
        &client,
        "sizes/app",
        "list",
        OCI_INDEX,
        &index(child_size + 1),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "MANIFEST_INVALID");
    expect_status(
        manifest_put(
            &server,
            &client,
            "sizes/app",
            "list",
            OCI_INDEX,
            &index(child_size),
        ),
        StatusCode::CREATED,
    )
    .await;

    // Foreign layers are not held here, so their sizes are not checked against content; the
    // largest ones still add up to no overflow, in the image and in every listing.
    let mut huge = image(json!(config.len()), json!(layer.len()));
    for _ in 0..3 {
        huge["layers"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": sha256(b"elsewhere"),
            "size": i64::MAX,
            "urls": ["https://example.invalid/huge"]
        }));
    }
    for tag in ["huge", "also-huge"] {
        huge["annotations"] = json!({"tag": tag});
        expect_status(
            manifest_put(&server, &client, "sizes/app", tag, OCI_MANIFEST, &huge),
            StatusCode::CREATED,
        )
        .await;
    }
    let stream = client.get(server.url(&format!("{IMAGES}/sizes/imagestreams/app")));
    expect_status(stream, StatusCode::OK).await;
    for path in [
        "/console/api/namespaces",
        "/console/api/streams?namespace=sizes&filter=&sort=size&offset=0",
    ] {
        let body = expect_json(client.get(server.url(path)), StatusCode::OK).await;
        assert!(
            body.to_string().contains(&i64::MAX.to_string()),
            "{path}: {body}"
        );
    }
}

// ---- pull-through against a real remote ----------------------------------------------------

/// `user:password` for `host` as `namespace`'s pull secret, named after the host.
async fn pull_secret(server: &TestServer, namespace: &str, host: &str, user: &str, password: &str) {
    let name = format!("to-{}", host.replace([':', '.'], "-"));
    common::remote::pull_secret(server, namespace, &name, host, user, password).await;
}

/// Imports `{host}/{path}:v1` into a new namespace's `base:v1`, with credentials for `host`.
async fn import_base(
    server: &TestServer,
    namespace: &str,
    host: &str,
    (user, password): (&str, &str),
    path: &str,
) {
    let admin = server.client();
    create_namespace(&admin, server, namespace).await;
    pull_secret(server, namespace, host, user, password).await;
    let status = import(
        server,
        &admin,
        namespace,
        import_one_tag("base", &format!("{host}/{path}:v1"), "v1"),
    )
    .await;
    assert_eq!(status["status"], "Success", "{status}");
}

/// docker-registry's file for a blob under `root` (its `rootdirectory`).
fn stored_blob(root: &std::path::Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    root.join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// A `GET` of a blob, as the administrator.
async fn get_blob(server: &TestServer, repository: &str, digest: &str) -> reqwest::Response {
    blob(&server.client(), server, Method::GET, repository, digest).await
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_through_serves_only_bytes_with_the_recorded_digest_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let remote_dir = dir.path().join("remote");
    let remote = RemoteRegistry::start(&remote_dir, "bob", "bob-password").await;
    let image = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    let (layer, layer_size) = first_layer(&image);
    remote.push(&format!("oci:{image}"), "upstream/base:v1", false);
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    import_base(
        &server,
        "cache",
        &remote.host,
        ("bob", "bob-password"),
        "upstream/base",
    )
    .await;

    // The remote now sends other bytes of the same size, then one byte more: no whole answer,
    // nothing kept, every time. Other bytes of the right size are streamed to the pull that
    // fetches them until the digest is known, and that answer then ends unfinished; a wrong
    // size announced is refused before a byte.
    let file = stored_blob(&remote_dir, &layer);
    let original = std::fs::read(&file).unwrap();
    let flipped: Vec<u8> = original.iter().map(|b| b ^ 0xff).collect();
    let mut longer = original.clone();
    longer.push(0);
    for (wrong, streamed) in [(&flipped, true), (&longer, false)] {
        std::fs::write(&file, wrong).unwrap();
        for _ in 0..2 {
            if streamed {
                // The answer breaks off: after its head, or before it when the fetch failed
                // before the head was sent.
                let sent = server
                    .client()
                    .get(server.url(&format!("/v2/cache/base/blobs/{layer}")))
                    .send()
                    .await;
                if let Ok(response) = sent {
                    assert_eq!(response.status(), StatusCode::OK);
                    assert_eq!(response.content_length(), Some(layer_size));
                    let body = response.bytes().await;
                    assert!(
                        body.as_ref()
                            .map_or(true, |body| (body.len() as u64) < layer_size),
                        "the whole answer was sent: {body:?}"
                    );
                }
            } else {
                let response = get_blob(&server, "cache/base", &layer).await;
                assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
                let body = response.bytes().await.unwrap();
                assert!(
                    body.len() < 1000,
                    "an error, not content: {} bytes",
                    body.len()
                );
            }
            let response = blob(
                &server.client(),
                &server,
                Method::HEAD,
                "cache/base",
                &layer,
            )
            .await;
            assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        }
    }

    // Once the remote is right again, the layer is fetched, verified and served, then served
    // from here without the remote.
    std::fs::write(&file, &original).unwrap();
    let response = get_blob(&server, "cache/base", &layer).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(layer_size));
    assert_eq!(sha256(&response.bytes().await.unwrap()), layer);
    drop(remote);
    let response = server
        .get(&format!("/v2/cache/base/blobs/{layer}"))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.bytes().await.unwrap(), original[..10]);
}

/// What the gate does with a request that names the watched path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Hold,
    Pass,
    Cut,
}

/// A TCP proxy in front of a real registry that holds the requests naming `needle` at a gate:
/// a remote that is slow, or that drops the connection, when the test says so.
struct GatedProxy {
    host: String,
    /// Requests that reached the gate.
    seen: Arc<AtomicUsize>,
    gate: tokio::sync::watch::Sender<Gate>,
}

impl GatedProxy {
    async fn start(upstream: &str, needle: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let (gate, opened) = tokio::sync::watch::channel(Gate::Hold);
        let seen = Arc::new(AtomicUsize::new(0));
        let (upstream, needle) = (upstream.to_owned(), needle.as_bytes().to_vec());
        let counter = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, needle) = (upstream.clone(), needle.clone());
                let (mut opened, counter) = (opened.clone(), Arc::clone(&counter));
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    let back = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    });
                    let mut buffer = vec![0u8; 64 * 1024];
                    loop {
                        let read = match from_client.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(read) => read,
                        };
                        let chunk = &buffer[..read];
                        if chunk.windows(needle.len()).any(|window| window == needle) {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let Ok(gate) = opened.wait_for(|gate| *gate != Gate::Hold).await else {
                                break;
                            };
                            if *gate == Gate::Cut {
                                break;
                            }
                        }
                        if to_server.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                    back.abort();
                });
            }
        });
        GatedProxy { host, seen, gate }
    }

    /// Waits until `count` requests reached the gate.
    async fn reached(&self, count: usize) {
        wait_until(
            &format!("{count} requests at the gate"),
            async || match self.seen.load(Ordering::SeqCst) {
                seen if seen >= count => Ok(()),
                seen => Err(format!("{seen} requests")),
            },
        )
        .await;
    }

    fn set(&self, gate: Gate) {
        self.gate.send_replace(gate);
    }
}

/// Pushes one image to `remote`'s `upstream/base:v1` and returns its first layer.
fn remote_image(dir: &std::path::Path, remote: &RemoteRegistry) -> (String, u64) {
    let image = umoci_image(&dir.join("layout"), "v1", "amd64", 1);
    remote.push(&format!("oci:{image}"), "upstream/base:v1", false);
    first_layer(&image)
}

/// A server that may import from loopback registries, with `[import]` settings.
fn server_with_import_settings(dir: &std::path::Path, settings: &str, args: &[&str]) -> TestServer {
    let config = dir.join("berth.toml");
    std::fs::write(&config, format!("[import]\n{settings}\n")).unwrap();
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(ALLOW_LOOPBACK);
    all.extend_from_slice(args);
    TestServer::start_with(&all)
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pulls_in_two_repositories_do_not_share_a_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "bob", "bob-password").await;
    let (layer, layer_size) = remote_image(dir.path(), &remote);
    let proxy = GatedProxy::start(&remote.host, &format!("/blobs/{layer}")).await;
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    let admin = server.client();

    // Repository a/base imports the image through the proxy; b/base imports a manifest whose
    // foreign layer names the same digest from a repository (of this Berth) that lacks it.
    import_base(
        &server,
        "a",
        &proxy.host,
        ("bob", "bob-password"),
        "upstream/base",
    )
    .await;
    let forged = forged_manifest(&server, &admin, "names/src", &layer, layer_size).await;
    expect_status(
        manifest_put(&server, &admin, "names/src", "v1", DOCKER_MANIFEST, &forged),
        StatusCode::CREATED,
    )
    .await;
    import_base(
        &server,
        "b",
        &server.addr,
        ("admin", &server.admin_token),
        "names/src",
    )
    .await;

    // a/base's fetch is under way (held at the proxy) when b/base is pulled.
    let first = {
        let (client, url) = (
            admin.clone(),
            server.url(&format!("/v2/a/base/blobs/{layer}")),
        );
        tokio::spawn(async move { client.get(url).send().await.unwrap() })
    };
    proxy.reached(1).await;
    let second = {
        let (client, url) = (
            admin.clone(),
            server.url(&format!("/v2/b/base/blobs/{layer}")),
        );
        tokio::spawn(async move { client.get(url).send().await.unwrap() })
    };
    // b/base fetches for itself and its remote lacks the layer; a fetch shared by digest would
    // hold it until a/base's ends, and then give it a/base's bytes.
    wait_until(
        "b/base's pull to end (a wait here: it waited for a/base's fetch)",
        async || {
            if second.is_finished() {
                Ok(())
            } else {
                Err("still pulling".to_owned())
            }
        },
    )
    .await;
    proxy.set(Gate::Pass);
    let second = second.await.unwrap();
    assert_eq!(second.status(), StatusCode::NOT_FOUND);
    let first = first.await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(sha256(&first.bytes().await.unwrap()), layer);
    // Stored here now, still not b/base's.
    assert_eq!(
        get_blob(&server, "b/base", &layer).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_waiting_for_a_fetch_end_when_it_fails_or_takes_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "bob", "bob-password").await;
    let (layer, _) = remote_image(dir.path(), &remote);
    let proxy = GatedProxy::start(&remote.host, &format!("/blobs/{layer}")).await;
    let server = server_with_import_settings(dir.path(), "pull_through_timeout_seconds = 3", &[]);
    let admin = server.client();
    import_base(
        &server,
        "cache",
        &proxy.host,
        ("bob", "bob-password"),
        "upstream/base",
    )
    .await;
    let pulls = |count: usize| {
        (0..count)
            .map(|_| {
                let client = admin.clone();
                let url = server.url(&format!("/v2/cache/base/blobs/{layer}"));
                tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
            })
            .collect::<Vec<_>>()
    };
    let bound = Duration::from_secs(45);

    // The remote holds the blob forever: the fetch and the pulls waiting for it end at the
    // configured deadline instead.
    let held = pulls(3);
    proxy.reached(1).await;
    for pull in held {
        let status = tokio::time::timeout(bound, pull)
            .await
            .expect("a pull waited without bound")
            .unwrap();
        assert_eq!(status, StatusCode::BAD_GATEWAY);
    }

    // The remote drops the connection: every waiting pull hears of it.
    let before = proxy.seen.load(Ordering::SeqCst);
    let cut = pulls(3);
    proxy.reached(before + 1).await;
    proxy.set(Gate::Cut);
    for pull in cut {
        let status = tokio::time::timeout(bound, pull)
            .await
            .expect("a pull waited without bound")
            .unwrap();
        assert_eq!(status, StatusCode::BAD_GATEWAY);
    }

    // Nothing is stuck: with the remote back, the blob is fetched.
    proxy.set(Gate::Pass);
    let response = get_blob(&server, "cache/base", &layer).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sha256(&response.bytes().await.unwrap()), layer);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_remote_delays_neither_other_namespaces_nor_their_scheduled_imports() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "bob", "bob-password").await;
    let first = umoci_image(&dir.path().join("layout"), "first", "amd64", 1);
    let second = umoci_image(&dir.path().join("layout"), "second", "amd64", 1);
    remote.push(&format!("oci:{first}"), "vendor/db:stable", false);
    // Every request through the proxy is held: a remote that accepts and never answers.
    let stalled = GatedProxy::start(&remote.host, "/v2/").await;
    let server = server_with_import_settings(
        dir.path(),
        "tag_timeout_seconds = 3",
        &["--scheduled-import-interval", "1"],
    );
    let admin = server.client();
    let import_scheduled = async |namespace: &str, host: &str| {
        let mut body = import_one_tag("db", &format!("{host}/vendor/db:stable"), "stable");
        body["spec"]["images"][0]["importPolicy"]["scheduled"] = json!(true);
        import(&server, &admin, namespace, body).await
    };

    // "a-slow" (listed first) imports from the stalled remote: the import ends at its
    // deadline, with a condition that says so.
    create_namespace(&admin, &server, "a-slow").await;
    let status = import_scheduled("a-slow", &stalled.host).await;
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(status["reason"], "Timeout", "{status}");

    create_namespace(&admin, &server, "b-fast").await;
    pull_secret(&server, "b-fast", &remote.host, "bob", "bob-password").await;
    let status = import_scheduled("b-fast", &remote.host).await;
    assert_eq!(status["status"], "Success", "{status}");

    // A new image at b-fast's remote is picked up by the schedule although a-slow's tag is
    // still stalled in every round.
    remote.push(&format!("oci:{second}"), "vendor/db:stable", false);
    wait_until(
        "b-fast's scheduled import (a wait here: it waited for a-slow's)",
        async || {
            let stream =
                json_of(admin.get(server.url(&format!("{IMAGES}/b-fast/imagestreams/db")))).await;
            match stream["status"]["tags"][0]["items"]
                .as_array()
                .unwrap()
                .len()
            {
                2 => Ok(()),
                _ => Err(stream.to_string()),
            }
        },
    )
    .await;
    let slow = json_of(admin.get(server.url(&format!("{IMAGES}/a-slow/imagestreams/db")))).await;
    assert_eq!(
        slow["status"]["tags"][0]["conditions"][0]["reason"], "Timeout",
        "{slow}"
    );
}
