//! Crash safety, proved with `kill -9` of the real binary in the middle of work: a chunked
//! upload, concurrent manifest pushes, an import. After the restart nothing partial is visible,
//! nothing committed is lost, an interrupted upload resumes to the same digest, and the server
//! starts on whatever the crash left (upload data without a session, a damaged blob file, the
//! database's WAL) without anyone repairing it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::images::{run, umoci_image};
use common::remote::RemoteRegistry;
use common::{
    ALLOW_LOOPBACK, OCI_MANIFEST, TestServer, error_code, expect_json, expect_status, get_blob,
    header, image_manifest, json_of, push_blob, sha256, start_upload, wait_until,
};
use rand::{Rng, RngCore};
use reqwest::StatusCode;
use serde_json::{Value, json};

const IMAGES: &str = "/apis/image.openshift.io/v1/namespaces";

/// Kills the server at a random moment within `window` from now (work started just before is
/// in flight), and starts it again.
async fn crash_within(server: TestServer, window: Duration) -> TestServer {
    let delay = rand::thread_rng().gen_range(Duration::ZERO..=window);
    // Time passes on purpose: the crash lands at a random point of the work in flight.
    tokio::time::sleep(delay).await;
    tokio::task::block_in_place(|| server.crash_and_restart())
}

/// Sends a request whose body is `sent` and then never ends, so that the server is in the
/// middle of reading it.
fn stalled_request(request: reqwest::RequestBuilder, sent: Vec<u8>) -> tokio::task::JoinHandle<()> {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        sent.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let body = futures_util::StreamExt::chain(
        futures_util::stream::iter(pieces),
        futures_util::stream::pending(),
    );
    let request = request.body(reqwest::Body::wrap_stream(body));
    tokio::spawn(async move {
        // The server dies under it: any answer, or none.
        let _ = request.send().await;
    })
}

/// The `Range` an upload of `size` bytes reports.
fn upload_range(size: usize) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    rand::thread_rng().fill_bytes(&mut data);
    data
}

/// Every file under `blobs/` holds exactly the content its name says: nothing half-written
/// became a blob.
fn assert_blobs_are_whole(data_dir: &Path) {
    let root = data_dir.join("blobs").join("sha256");
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return;
    };
    for prefix in prefixes {
        for file in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            assert_eq!(
                sha256(&std::fs::read(&path).unwrap()),
                format!("sha256:{name}"),
                "{} does not hold its digest's content",
                path.display()
            );
        }
    }
}

fn blob_path(data_dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    data_dir
        .join("blobs")
        .join("sha256")
        .join(&hex[..2])
        .join(hex)
}

async fn upload_status(server: &TestServer, location: &str) -> reqwest::Response {
    server.get(location).send().await.unwrap()
}

async fn patch(server: &TestServer, location: &str, start: usize, data: &[u8]) -> StatusCode {
    server
        .patch(location)
        .header(
            "content-range",
            format!("{start}-{}", start + data.len() - 1),
        )
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_upload_killed_mid_chunk_resumes_to_the_same_digest() {
    let mut server = TestServer::start();
    let chunk = 1 << 20;
    let data = random_bytes(4 * chunk);
    let digest = sha256(&data);
    let location = start_upload(&server, "team/big").await;
    let mut recorded = 0;
    for _ in 0..3 {
        // A chunk whose body stops half-way; the server is killed while reading it.
        let request = server.patch(&location).header(
            "content-range",
            format!("{recorded}-{}", recorded + chunk - 1),
        );
        let in_flight = stalled_request(request, data[recorded..recorded + chunk / 2].to_vec());
        server = crash_within(server, Duration::from_millis(300)).await;
        in_flight.abort();
        assert_blobs_are_whole(server.data_dir());
        // The session is where its last whole chunk left it, and the chunk is sent again.
        let status = upload_status(&server, &location).await;
        assert_eq!(status.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&status, "range"), upload_range(recorded));
        assert_eq!(
            patch(
                &server,
                &location,
                recorded,
                &data[recorded..recorded + chunk]
            )
            .await,
            StatusCode::ACCEPTED
        );
        recorded += chunk;
    }
    // The last chunk comes with the PUT, which is killed mid-body too.
    let finish = |server: &TestServer| {
        server
            .put(&format!("{location}?digest={digest}"))
            .header("content-range", format!("{recorded}-{}", data.len() - 1))
    };
    let in_flight = stalled_request(finish(&server), data[recorded..recorded + 1000].to_vec());
    server = crash_within(server, Duration::from_millis(300)).await;
    in_flight.abort();
    let status = upload_status(&server, &location).await;
    assert_eq!(header(&status, "range"), upload_range(recorded));
    let response = expect_status(
        finish(&server).body(data[recorded..].to_vec()),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(header(&response, "docker-content-digest"), digest);
    let pulled = get_blob(&server, "team/big", &digest).await;
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(pulled.bytes().await.unwrap(), data);
    assert_blobs_are_whole(server.data_dir());
    let id = location.rsplit('/').next().unwrap();
    assert!(!server.data_dir().join("uploads").join(id).exists());
}

#[tokio::test]
async fn a_crash_between_the_blob_rename_and_the_session_end_still_finishes() {
    let server = TestServer::start();
    let data = random_bytes(300_000);
    let digest = sha256(&data);
    let location = start_upload(&server, "team/app").await;
    assert_eq!(
        patch(&server, &location, 0, &data).await,
        StatusCode::ACCEPTED
    );
    // The crash came after the upload's data was renamed into blobs/ (the commit) and before
    // the metadata transaction that ends the session: the state that leaves, made exactly.
    let id = location.rsplit('/').next().unwrap().to_owned();
    let target = digest.clone();
    let server = server.crash_and_restart_with(move |dir| {
        let blob = blob_path(dir, &target);
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::rename(dir.join("uploads").join(&id), blob).unwrap();
    });
    // The client resumes: the session still says every byte is there, and finishing works.
    let status = upload_status(&server, &location).await;
    assert_eq!(header(&status, "range"), upload_range(data.len()));
    expect_status(
        server.put(&format!("{location}?digest={digest}")),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        get_blob(&server, "team/app", &digest)
            .await
            .bytes()
            .await
            .unwrap(),
        data
    );
    assert_eq!(
        upload_status(&server, &location).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn berth_starts_on_what_a_crash_leaves_and_heals_on_a_push() {
    let server = TestServer::start();
    let kept = random_bytes(200_000);
    let kept_digest = push_blob(&server, "team/app", &kept).await;
    let manifest = image_manifest(&server, "team/app", "kept").await;
    let response = common::put_manifest(&server, "team/app", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // A monolithic upload killed mid-body leaves data in uploads/ that no session owns.
    let lost = random_bytes(500_000);
    let lost_digest = sha256(&lost);
    let request = server.post(&format!("/v2/team/app/blobs/uploads/?digest={lost_digest}"));
    let in_flight = stalled_request(request, lost[..250_000].to_vec());
    let uploads = server.data_dir().join("uploads");
    // The server is reading the body once it made the upload's file.
    wait_until("the stalled upload's file in uploads/", async || {
        let files: Vec<std::ffi::OsString> = std::fs::read_dir(&uploads)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| !name.to_string_lossy().starts_with(".ready-probe"))
            .collect();
        if files.is_empty() {
            Err("no file".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    let damaged = kept_digest.clone();
    let stray_digest = sha256(b"a blob nobody finished");
    let stray = stray_digest.clone();
    let server = tokio::task::block_in_place(|| {
        server.crash_and_restart_with(move |dir| {
            let uploads = dir.join("uploads");
            let orphans: Vec<PathBuf> = std::fs::read_dir(&uploads)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert_eq!(orphans.len(), 1, "the killed upload left its data");
            // Older than the sweep's idle time, as after a long outage.
            for orphan in &orphans {
                run(
                    "touch",
                    &["-d", "3 days ago", orphan.to_str().unwrap()],
                    &[],
                );
            }
            // And what no crash of Berth's makes, but a damaged disk or a bad restore could:
            // a linked blob cut in half, a blob file half-written by something else.
            let blob = blob_path(dir, &damaged);
            let file = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
            file.set_len(100_000).unwrap();
            let stray = blob_path(dir, &stray);
            std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
            std::fs::write(stray, b"a blob nob").unwrap();
            // The database was not closed: its write-ahead log is still there.
            assert!(dir.join("berth.db-wal").exists());
        })
    });
    in_flight.abort();
    // Started by itself: the orphan is swept (by the upload collector's first round), the
    // committed manifest is there.
    let uploads = server.data_dir().join("uploads");
    wait_until("the orphan swept from uploads/", async || {
        let left: Vec<_> = std::fs::read_dir(&uploads)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name != ".ready-probe")
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
    let pulled = expect_status(
        server
            .get("/v2/team/app/manifests/v1")
            .header("accept", OCI_MANIFEST),
        StatusCode::OK,
    )
    .await;
    assert_eq!(pulled.bytes().await.unwrap(), manifest);
    assert_eq!(
        get_blob(&server, "team/app", &lost_digest).await.status(),
        StatusCode::NOT_FOUND
    );
    // The damaged blob is never sent as if whole: an error, not 200 with half the bytes.
    let response = get_blob(&server, "team/app", &kept_digest).await;
    assert!(response.status().is_server_error(), "{}", response.status());
    assert_eq!(error_code(response).await, "UNKNOWN");
    // Pushing again heals both: the upload's rename replaces what was there.
    assert_eq!(push_blob(&server, "team/app", &kept).await, kept_digest);
    assert_eq!(
        push_blob(&server, "team/app", b"a blob nobody finished").await,
        stray_digest
    );
    assert_eq!(
        get_blob(&server, "team/app", &kept_digest)
            .await
            .bytes()
            .await
            .unwrap(),
        kept
    );
    assert_blobs_are_whole(server.data_dir());
}

/// One manifest of a round: pushed by tag or by digest, maybe naming a subject.
struct Pushed {
    body: Vec<u8>,
    digest: String,
    tag: Option<String>,
    blobs: Vec<String>,
}

async fn prepare_round(
    server: &TestServer,
    round: usize,
    subject: &(String, usize),
) -> Vec<Pushed> {
    let mut pushed = Vec::new();
    for i in 0..24 {
        let body = image_manifest(server, "team/app", &format!("round {round} image {i}")).await;
        let mut value: Value = serde_json::from_slice(&body).unwrap();
        let blobs = [&value["config"], &value["layers"][0]]
            .iter()
            .map(|d| d["digest"].as_str().unwrap().to_owned())
            .collect();
        // A third name the subject (referrers), the others not.
        if i % 3 == 0 {
            value["subject"] =
                json!({"mediaType": OCI_MANIFEST, "digest": subject.0, "size": subject.1});
        }
        let body = serde_json::to_vec(&value).unwrap();
        let digest = sha256(&body);
        // Even ones by their own tag, odd ones all to `latest` (contended), some by digest.
        let tag = match i % 4 {
            0 | 2 => Some(format!("r{round}-{i}")),
            1 => Some("latest".to_owned()),
            _ => None,
        };
        pushed.push(Pushed {
            body,
            digest,
            tag,
            blobs,
        });
    }
    pushed
}

async fn push_all(server: &TestServer, pushed: &[Pushed]) -> Vec<StatusCode> {
    let client = server.client();
    let pushes = pushed.iter().map(|p| {
        let reference = p.tag.clone().unwrap_or_else(|| p.digest.clone());
        client
            .put(server.url(&format!("/v2/team/app/manifests/{reference}")))
            .header("content-type", OCI_MANIFEST)
            .body(p.body.clone())
            .send()
    });
    futures_util::future::join_all(pushes)
        .await
        .into_iter()
        .map(|r| r.map_or(StatusCode::SERVICE_UNAVAILABLE, |r| r.status()))
        .collect()
}

/// Each manifest of a round is all there (content, blobs, its own tag, referrers listing) or
/// not there at all; every tag names a manifest that is all there. Returns how many are.
async fn assert_whole_or_absent(server: &TestServer, pushed: &[Pushed], subject: &str) -> usize {
    let client = server.client();
    let get = |path: String| {
        client
            .get(server.url(&path))
            .header("accept", OCI_MANIFEST)
            .send()
    };
    let referrers: Value = get(format!("/v2/team/app/referrers/{subject}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let referrers: Vec<&str> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    let mut present = 0;
    for (i, p) in pushed.iter().enumerate() {
        let response = get(format!("/v2/team/app/manifests/{}", p.digest))
            .await
            .unwrap();
        let there = match response.status() {
            StatusCode::OK => {
                assert_eq!(response.bytes().await.unwrap(), p.body, "manifest {i}");
                true
            }
            StatusCode::NOT_FOUND => false,
            other => panic!("manifest {i}: {other}"),
        };
        present += usize::from(there);
        if there {
            for blob in &p.blobs {
                assert_eq!(
                    get(format!("/v2/team/app/blobs/{blob}"))
                        .await
                        .unwrap()
                        .status(),
                    StatusCode::OK
                );
            }
        }
        if i % 3 == 0 {
            assert_eq!(
                referrers.contains(&p.digest.as_str()),
                there,
                "referrer {i}"
            );
        }
        if let Some(tag) = p.tag.as_deref().filter(|t| *t != "latest") {
            let by_tag = get(format!("/v2/team/app/manifests/{tag}")).await.unwrap();
            if there {
                assert_eq!(
                    header(&by_tag, "docker-content-digest"),
                    p.digest,
                    "tag {tag}"
                );
            } else {
                assert_eq!(by_tag.status(), StatusCode::NOT_FOUND, "tag {tag}");
            }
        }
    }
    // Every tag names a whole manifest; the image stream agrees with the registry.
    let tags: Value = get("/v2/team/app/tags/list".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for tag in tags["tags"].as_array().unwrap() {
        let response = get(format!("/v2/team/app/manifests/{}", tag.as_str().unwrap()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{tag}");
    }
    let stream = json_of(client.get(server.url(&format!("{IMAGES}/team/imagestreams/app")))).await;
    // A stream killed before its first tag was recorded has none (the list is then omitted).
    let tags = stream["status"]["tags"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for tag in &tags {
        let image = tag["items"][0]["image"].as_str().unwrap();
        let response = get(format!("/v2/team/app/manifests/{image}"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", tag["tag"]);
    }
    present
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_pushes_killed_at_random_are_whole_or_absent() {
    let mut server = TestServer::start();
    let subject_body = image_manifest(&server, "team/app", "the subject").await;
    let response =
        common::put_manifest(&server, "team/app", "subject", OCI_MANIFEST, &subject_body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let subject = (sha256(&subject_body), subject_body.len());

    // A round without a crash: how long 24 concurrent pushes take here.
    let warm = prepare_round(&server, 0, &subject).await;
    let started = Instant::now();
    for status in push_all(&server, &warm).await {
        assert_eq!(status, StatusCode::CREATED);
    }
    let window = started.elapsed();
    assert_eq!(assert_whole_or_absent(&server, &warm, &subject.0).await, 24);

    for round in 1..=4 {
        let pushed = prepare_round(&server, round, &subject).await;
        let client = server.client();
        let bodies: Vec<_> = pushed
            .iter()
            .map(|p| {
                let reference = p.tag.clone().unwrap_or_else(|| p.digest.clone());
                let request = client
                    .put(server.url(&format!("/v2/team/app/manifests/{reference}")))
                    .header("content-type", OCI_MANIFEST)
                    .body(p.body.clone());
                tokio::spawn(async move {
                    let _ = request.send().await;
                })
            })
            .collect();
        server = crash_within(server, window).await;
        for push in bodies {
            push.abort();
        }
        let present = assert_whole_or_absent(&server, &pushed, &subject.0).await;
        eprintln!("round {round}: {present} of 24 manifests committed before the kill");
        // Nothing committed before is lost.
        assert_eq!(assert_whole_or_absent(&server, &warm, &subject.0).await, 24);
        // And every push can be made again.
        for status in push_all(&server, &pushed).await {
            assert_eq!(status, StatusCode::CREATED);
        }
        assert_eq!(
            assert_whole_or_absent(&server, &pushed, &subject.0).await,
            24
        );
    }
    assert_blobs_are_whole(server.data_dir());
}

fn import_all_tags(remote: &RemoteRegistry) -> Value {
    json!({
        "metadata": {"name": "app"},
        "spec": {
            "import": true,
            "repository": {
                "from": {"kind": "DockerImage", "name": format!("{}/upstream/app", remote.host)},
                "importPolicy": {"insecure": true}
            }
        }
    })
}

/// What a crashed import left: every tag of the stream names an image whose manifest, config
/// and layers can be pulled, each layer's bytes hashing to its digest. Returns the configs of
/// the tags that are there.
async fn assert_imported_tags_are_whole(server: &TestServer, namespace: &str) -> Vec<String> {
    let client = server.client();
    let response = client
        .get(server.url(&format!("{IMAGES}/{namespace}/imagestreams/app")))
        .send()
        .await
        .unwrap();
    if response.status() == StatusCode::NOT_FOUND {
        return Vec::new();
    }
    let stream: Value = response.json().await.unwrap();
    let mut configs = Vec::new();
    // A stream killed before its first tag was recorded has none (the list is then omitted).
    let tags = stream["status"]["tags"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for tag in &tags {
        let Some(image) = tag["items"][0]["image"].as_str() else {
            continue; // a tag whose only news is a failed import's condition
        };
        let manifest = client
            .get(server.url(&format!("/v2/{namespace}/app/manifests/{image}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(manifest.status(), StatusCode::OK, "{tag}");
        let manifest: Value = manifest.json().await.unwrap();
        configs.push(manifest["config"]["digest"].as_str().unwrap().to_owned());
        let mut blobs = vec![configs[configs.len() - 1].clone()];
        for layer in manifest["layers"].as_array().unwrap() {
            blobs.push(layer["digest"].as_str().unwrap().to_owned());
        }
        for blob in blobs {
            let response = get_blob(server, &format!("{namespace}/app"), &blob).await;
            assert_eq!(response.status(), StatusCode::OK, "{blob}");
            assert_eq!(sha256(&response.bytes().await.unwrap()), blob);
        }
    }
    configs
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_killed_at_random_leaves_whole_images_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteRegistry::start(&dir.path().join("remote"), "bob", "bob-password").await;
    let layout = dir.path().join("layout");
    let mut tags = Vec::new();
    for version in 1..=3 {
        let image = umoci_image(&layout, &format!("v{version}"), "amd64", 2);
        for copy in ["a", "b", "c"] {
            let tag = format!("v{version}{copy}");
            remote.push(
                &format!("oci:{image}"),
                &format!("upstream/app:{tag}"),
                false,
            );
            tags.push(tag);
        }
    }
    let mut server = TestServer::start_with(ALLOW_LOOPBACK);
    let secret = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        json!({"auths": {&remote.host: {"username": "bob", "password": "bob-password"}}})
            .to_string(),
    );
    let import = |server: &TestServer, namespace: &str| {
        server
            .post(&format!("{IMAGES}/{namespace}/imagestreamimports"))
            .json(&import_all_tags(&remote))
    };
    // Each round imports into a namespace of its own, so that each is a first import (a second
    // finds the blobs stored and is quicker than the window).
    for namespace in ["warm", "mirror-1", "mirror-2", "mirror-3", "healed"] {
        expect_status(
            server
                .post("/api/v1/namespaces")
                .json(&json!({"metadata": {"name": namespace}})),
            StatusCode::CREATED,
        )
        .await;
        expect_status(
            server
                .post(&format!("/api/v1/namespaces/{namespace}/secrets"))
                .json(&json!({
                    "metadata": {"name": "remote"},
                    "type": "kubernetes.io/dockerconfigjson",
                    "data": {".dockerconfigjson": secret},
                })),
            StatusCode::CREATED,
        )
        .await;
    }
    // How long a whole import takes here, uninterrupted, once the remote's configs are stored
    // (as they are for the rounds: blobs are shared by all repositories).
    expect_status(import(&server, "warm"), StatusCode::CREATED).await;
    let started = Instant::now();
    expect_status(import(&server, "warm"), StatusCode::CREATED).await;
    let window = started.elapsed();
    let configs = assert_imported_tags_are_whole(&server, "warm").await;
    assert_eq!(configs.len(), tags.len());

    for round in 1..=3 {
        let namespace = format!("mirror-{round}");
        let request = import(&server, &namespace);
        let in_flight = tokio::spawn(async move {
            let _ = request.send().await;
        });
        server = crash_within(server, window).await;
        in_flight.abort();
        let whole = assert_imported_tags_are_whole(&server, &namespace)
            .await
            .len();
        eprintln!(
            "round {round}: {whole} of {} tags imported before the kill",
            tags.len()
        );
        assert_eq!(
            assert_imported_tags_are_whole(&server, "warm").await.len(),
            tags.len()
        );
        assert_blobs_are_whole(server.data_dir());
        // Run again, the import completes.
        let body = expect_json(import(&server, &namespace), StatusCode::CREATED).await;
        for image in body["status"]["repository"]["images"].as_array().unwrap() {
            assert_eq!(image["status"]["status"], "Success", "{image}");
        }
        assert_eq!(
            assert_imported_tags_are_whole(&server, &namespace)
                .await
                .len(),
            tags.len()
        );
    }

    // Config files damaged on disk (no crash of Berth's makes that, a bad restore could) are
    // written again by the next import that needs them, not trusted because a file is there.
    let server = server.crash_and_restart_with(|dir| {
        for config in &configs {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(blob_path(dir, config))
                .unwrap();
            file.set_len(10).unwrap();
        }
    });
    expect_status(import(&server, "healed"), StatusCode::CREATED).await;
    for namespace in ["healed", "warm"] {
        assert_eq!(
            assert_imported_tags_are_whole(&server, namespace)
                .await
                .len(),
            tags.len()
        );
    }
    assert_blobs_are_whole(server.data_dir());
}
