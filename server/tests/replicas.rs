//! Replicas: two or three `berth` processes on one PostgreSQL database and one SeaweedFS bucket,
//! addressed directly or through HAProxy round-robin. What one replica is told, every replica
//! knows: uploads continue anywhere (also after their replica is killed), pushes reach watches
//! on another replica, revoked tokens stop working everywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::images::{run, skopeo_copy, umoci_image};
use common::infra::Haproxy;
use common::{
    OCI_MANIFEST, Storage, TestServer, create_namespace, expect_status, header, image_manifest,
    json_of, put_manifest, sha256, status_with_token,
};

fn upload_url(server: &TestServer, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        server.url(location)
    }
}

/// Where an upload started on `server` continues (its Location header).
async fn start_upload(server: &TestServer, repository: &str) -> String {
    let response = expect_status(
        server.post(&format!("/v2/{repository}/blobs/uploads/")),
        StatusCode::ACCEPTED,
    )
    .await;
    header(&response, "location")
}

/// PATCHes `chunk` at `offset` into the upload at `location` through `server`; the next
/// location.
async fn patch(server: &TestServer, location: &str, offset: usize, chunk: &[u8]) -> String {
    let response = expect_status(
        server
            .client()
            .patch(upload_url(server, location))
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{offset}-{}", offset + chunk.len() - 1),
            )
            .body(chunk.to_vec()),
        StatusCode::ACCEPTED,
    )
    .await;
    header(&response, "location")
}

async fn finish(server: &TestServer, location: &str, digest: &str) {
    let separator = if location.contains('?') { '&' } else { '?' };
    expect_status(
        server.client().put(format!(
            "{}{separator}digest={digest}",
            upload_url(server, location)
        )),
        StatusCode::CREATED,
    )
    .await;
}

async fn blob(server: &TestServer, repository: &str, digest: &str) -> Vec<u8> {
    let response = expect_status(
        server.get(&format!("/v2/{repository}/blobs/{digest}")),
        StatusCode::OK,
    )
    .await;
    response.bytes().await.unwrap().to_vec()
}

/// A request body sent as the test feeds it, piece by piece; it ends when the sender is dropped.
fn fed_body() -> (tokio::sync::mpsc::Sender<Vec<u8>>, reqwest::Body) {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let body = futures_util::stream::poll_fn(move |cx| {
        receiver
            .poll_recv(cx)
            .map(|piece| piece.map(Ok::<_, std::io::Error>))
    });
    (sender, reqwest::Body::wrap_stream(body))
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn a_chunked_upload_alternating_between_replicas_finishes_with_its_digest() {
    let first = TestServer::start_on(Storage::postgres_s3(), &[]);
    let second = first.replica();
    // Chunks under S3's 5 MiB part minimum and over it, each PATCH on the other replica.
    let blob_data = data(13 * 1024 * 1024 + 17, 1);
    let chunks = [
        &blob_data[..1024 * 1024],
        &blob_data[1024 * 1024..7 * 1024 * 1024],
        &blob_data[7 * 1024 * 1024..],
    ];
    let replicas = [&first, &second];
    let mut location = start_upload(&first, "hop/blob").await;
    let mut offset = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        location = patch(replicas[(i + 1) % 2], &location, offset, chunk).await;
        offset += chunk.len();
    }
    let digest = sha256(&blob_data);
    finish(&first, &location, &digest).await;
    assert!(blob(&second, "hop/blob", &digest).await == blob_data);
    assert!(blob(&first, "hop/blob", &digest).await == blob_data);
}

#[tokio::test]
async fn an_upload_whose_replica_is_killed_finishes_on_another() {
    let first = TestServer::start_on(Storage::postgres_s3(), &[]);
    let second = first.replica();
    let blob_data = data(9 * 1024 * 1024, 2);
    let location = start_upload(&first, "crash/blob").await;
    let location = patch(&first, &location, 0, &blob_data[..3 * 1024 * 1024]).await;

    // The next PATCH streams slowly into the first replica, which is killed (SIGKILL) halfway.
    let (sender, body) = fed_body();
    let slow = tokio::spawn({
        let client = first.client();
        let url = upload_url(&first, &location);
        async move {
            client
                .patch(url)
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await
        }
    });
    for piece in blob_data[3 * 1024 * 1024..6 * 1024 * 1024].chunks(256 * 1024) {
        sender.send(piece.to_vec()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut first = first;
    first.kill();
    drop(sender);
    // The PATCH fails with its replica, however far it got.
    let _ = slow.await;

    // The other replica tells how far the upload got (what was durably written), and the
    // client goes on from there.
    let status = expect_status(
        second.get(&location_path(&location)),
        StatusCode::NO_CONTENT,
    )
    .await;
    let range = header(&status, "range");
    let end: usize = range.split_once('-').unwrap().1.parse().unwrap();
    let offset = end + 1;
    assert!(offset >= 3 * 1024 * 1024, "{range}");
    assert!(offset <= 6 * 1024 * 1024, "{range}");
    let location = patch(
        &second,
        &header(&status, "location"),
        offset,
        &blob_data[offset..],
    )
    .await;
    let digest = sha256(&blob_data);
    finish(&second, &location, &digest).await;
    assert!(blob(&second, "crash/blob", &digest).await == blob_data);
}

#[tokio::test]
async fn two_writes_at_one_offset_on_two_replicas_take_turns() {
    let first = TestServer::start_on(Storage::postgres_s3(), &[]);
    let second = first.replica();
    let ours = data(6 * 1024 * 1024, 3);
    let theirs = data(ours.len(), 4);
    let location = start_upload(&first, "race/blob").await;

    // Our PATCH streams into the first replica and pauses halfway.
    let (sender, body) = fed_body();
    let slow = spawn_patch(&first, &location, ours.len(), body);
    let (head, tail) = ours.split_at(3 * 1024 * 1024);
    sender.send(head.to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Another PATCH at the same offset, on the second replica, with other bytes: it waits for
    // ours, then finds the upload moved on.
    let racing = spawn_patch(&second, &location, theirs.len(), theirs.into());
    tokio::time::sleep(Duration::from_millis(500)).await;
    sender.send(tail.to_vec()).await.unwrap();
    drop(sender);
    assert_eq!(slow.await.unwrap(), StatusCode::ACCEPTED);
    assert_eq!(racing.await.unwrap(), StatusCode::RANGE_NOT_SATISFIABLE);

    // The upload holds our bytes, and the blob is them.
    let digest = sha256(&ours);
    finish(&second, &location, &digest).await;
    assert!(blob(&first, "race/blob", &digest).await == ours);
}

/// A PATCH of `len` bytes from offset 0 into the upload at `location` through `server`, sent
/// in a task of its own; its status.
fn spawn_patch(
    server: &TestServer,
    location: &str,
    len: usize,
    body: reqwest::Body,
) -> tokio::task::JoinHandle<StatusCode> {
    let request = server
        .client()
        .patch(upload_url(server, location))
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("0-{}", len - 1))
        .body(body);
    tokio::spawn(async move { request.send().await.unwrap().status() })
}

/// The path of an upload location, which may be absolute.
fn location_path(location: &str) -> String {
    match location.split_once("://") {
        Some((_, rest)) => rest[rest.find('/').unwrap()..].to_owned(),
        None => location.to_owned(),
    }
}

#[tokio::test]
async fn a_push_through_one_replica_reaches_a_watch_on_another_within_a_second() {
    let first = TestServer::start_on(Storage::postgres_s3(), &[]);
    let second = first.replica();
    create_namespace(&first.client(), &first, "live").await;
    let response = expect_status(
        second.get("/apis/image.openshift.io/v1/namespaces/live/imagestreams?watch=true"),
        StatusCode::OK,
    )
    .await;
    let mut events = response.bytes_stream();
    let manifest = image_manifest(&first, "live/app", "live/app:v1").await;
    let pushed = Instant::now();
    let response = put_manifest(&first, "live/app", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut buffer = Vec::new();
    let event: Value = loop {
        if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            break serde_json::from_slice(&line).unwrap();
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        buffer.extend_from_slice(&chunk);
    };
    let latency = pushed.elapsed();
    assert_eq!(event["object"]["metadata"]["name"], "app", "{event}");
    assert!(latency < Duration::from_secs(1), "{latency:?}");
}

#[tokio::test]
async fn a_revoked_token_stops_working_on_every_replica_within_a_second() {
    let first = TestServer::start_on(Storage::postgres_s3(), &[]);
    let second = first.replica();
    let third = first.replica();
    first.add_user("tom", "tom-password", &[]);
    let created = json_of(
        common::anonymous()
            .post(first.url("/apis/access.berth.io/v1/personaltokens"))
            .basic_auth("tom", Some("tom-password"))
            .json(&json!({"metadata": {"name": "ci"}, "spec": {"expiresInDays": 30}})),
    )
    .await;
    let token = created["status"]["token"].as_str().unwrap().to_owned();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    let me = |server: &TestServer| server.url("/apis/user.openshift.io/v1/users/~");
    // Every replica has it cached.
    for server in [&first, &second, &third] {
        assert_eq!(status_with_token(&token, &me(server)).await, StatusCode::OK);
    }
    expect_status(
        common::client_with_token(&token)
            .delete(first.url(&format!("/apis/access.berth.io/v1/personaltokens/{uid}"))),
        StatusCode::OK,
    )
    .await;
    let revoked = Instant::now();
    for server in [&second, &third] {
        while status_with_token(&token, &me(server)).await != StatusCode::UNAUTHORIZED {
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "the token still works on another replica after a second"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn skopeo_pushes_and_pulls_through_haproxy_over_three_replicas() {
    let first = TestServer::start_on(Storage::postgres_s3(), &[]);
    let second = first.replica();
    let third = first.replica();
    let proxy = Haproxy::start(&[&first.addr, &second.addr, &third.addr]);
    let address = format!("127.0.0.1:{}", proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let image = umoci_image(&layout, "v1", "amd64", 3);
    skopeo_copy(
        &format!("oci:{image}"),
        &format!("docker://{address}/spread/app:v1"),
        &first.creds(),
    );
    let copy = dir.path().join("copy");
    skopeo_copy(
        &format!("docker://{address}/spread/app:v1"),
        &format!("oci:{}:v1", copy.display()),
        &first.creds(),
    );
    let original = run("umoci", &["stat", "--image", &image], &[]);
    let pulled = run(
        "umoci",
        &["stat", "--image", &format!("{}:v1", copy.display())],
        &[],
    );
    assert_eq!(original, pulled);
    // And each replica serves it by itself.
    for server in [&first, &second, &third] {
        expect_status(
            server
                .get("/v2/spread/app/manifests/v1")
                .header("accept", OCI_MANIFEST),
            StatusCode::OK,
        )
        .await;
    }
}
