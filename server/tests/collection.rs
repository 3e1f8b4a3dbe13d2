//! Garbage collection of content, with the real server and real clients: a deleted image's
//! blobs are freed from the blob store (files or bucket) once the grace period has passed and
//! the bytes freed are what the metadata said; skopeo pushing the same layers again while they
//! are being collected succeeds and the image is whole; `kill -9` in the middle of a sweep loses
//! nothing referenced and leaves no blob without its row or row without its blob. Runs on the
//! embedded stores and on PostgreSQL + S3 (`BERTH_TEST_STORAGE=postgres-s3`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::images::{raw_manifest, skopeo_copy, umoci_image};
use common::{
    OCI_MANIFEST, TestServer, anonymous, error_code, expect_status, get_blob, image_blobs,
    manifest_of, push_blob, put_manifest, sha256, stored_blobs, wait_until,
};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::Value;

/// A grace period short enough for tests; sweeps run every quarter of it.
const GRACE_SECONDS: u64 = 2;

fn start() -> TestServer {
    TestServer::start_with(&["--gc-grace", &GRACE_SECONDS.to_string()])
}

/// The value of a counter or gauge on `/metrics` (0 when absent).
async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = anonymous()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Pushes an image of a config and a layer (made from `seed`) as `repository:tag`; answers the
/// manifest's digest and the blobs' digests with their sizes.
async fn push_image(
    server: &TestServer,
    repository: &str,
    tag: &str,
    seed: &str,
) -> (String, BTreeMap<String, u64>) {
    let blobs = image_blobs(seed);
    let mut sizes = BTreeMap::new();
    for blob in &blobs {
        sizes.insert(push_blob(server, repository, blob).await, blob.len() as u64);
    }
    let manifest = manifest_of(&blobs);
    let response = put_manifest(server, repository, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    (sha256(&manifest), sizes)
}

async fn delete_manifest(server: &TestServer, repository: &str, digest: &str) {
    expect_status(
        server.delete(&format!("/v2/{repository}/manifests/{digest}")),
        StatusCode::ACCEPTED,
    )
    .await;
}

#[tokio::test]
async fn a_deleted_image_is_freed_from_the_store_after_the_grace_period() {
    let server = start();
    let (gone, gone_blobs) = push_image(&server, "team/app", "old", "deleted image").await;
    let (kept, kept_blobs) = push_image(&server, "team/app", "new", "kept image").await;
    let before = stored_blobs(&server).await;
    for digest in gone_blobs.keys().chain(kept_blobs.keys()) {
        assert!(before.contains_key(digest), "{digest} is stored");
    }

    delete_manifest(&server, "team/app", &gone).await;
    // Within the grace period it is all still there.
    for digest in gone_blobs.keys() {
        assert_eq!(
            get_blob(&server, "team/app", digest).await.status(),
            StatusCode::OK
        );
    }
    let freed: u64 = gone_blobs.values().sum();
    wait_until("the deleted image's blobs are collected", async || {
        let bytes = metric(&server, "berth_gc_bytes_freed_total").await;
        if bytes as u64 == freed {
            Ok(())
        } else {
            Err(format!("{bytes} bytes freed of {freed}"))
        }
    })
    .await;
    let after = stored_blobs(&server).await;
    // What the store lost is exactly the deleted image's blobs, with the sizes the metadata
    // counted as freed.
    let lost: BTreeMap<String, u64> = before
        .iter()
        .filter(|(digest, _)| !after.contains_key(*digest))
        .map(|(digest, size)| (digest.clone(), *size))
        .collect();
    assert_eq!(lost, gone_blobs);
    for digest in gone_blobs.keys() {
        assert_eq!(
            error_code(get_blob(&server, "team/app", digest).await).await,
            "BLOB_UNKNOWN"
        );
    }
    assert_eq!(metric(&server, "berth_gc_blobs_deleted_total").await, 2.0);
    assert_eq!(
        metric(&server, "berth_gc_manifests_deleted_total").await,
        1.0
    );
    assert!(metric(&server, "berth_gc_last_sweep_timestamp_seconds").await > 0.0);
    // The kept image is whole.
    for (digest, size) in &kept_blobs {
        let body = get_blob(&server, "team/app", digest)
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!((sha256(&body), body.len() as u64), (digest.clone(), *size));
    }
    expect_status(
        server.get(&format!("/v2/team/app/manifests/{kept}")),
        StatusCode::OK,
    )
    .await;
    expect_status(server.get("/readyz"), StatusCode::OK).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pushing_the_same_layers_again_while_they_are_collected_succeeds() {
    let server = start();
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(&work.path().join("layout"), "v1", "amd64", 3);
    let source = format!("oci:{layout}");
    let destination = format!("docker://{}/team/app:v1", server.addr);
    let original = raw_manifest(&source, None);
    for round in 0..6 {
        skopeo_copy(&source, &destination, &server.creds());
        let pushed = raw_manifest(&destination, Some(&server.creds()));
        let digest = sha256(pushed.as_bytes());
        delete_manifest(&server, "team/app", &digest).await;
        // The next push lands anywhere from before the image's review is due to well after
        // its blobs were collected, most often around the moment they are.
        let pause = rand::thread_rng().gen_range(0..(GRACE_SECONDS * 1000 + 1500));
        tokio::time::sleep(Duration::from_millis(pause)).await;
        skopeo_copy(&source, &destination, &server.creds());
        let back = format!("oci:{}:r{round}", work.path().join("back").display());
        // skopeo checks every blob's digest as it copies.
        skopeo_copy(&destination, &back, &server.creds());
        assert_eq!(
            sha256(raw_manifest(&back, None).as_bytes()),
            sha256(original.as_bytes()),
            "round {round} (pushed {pause} ms after the deletion)"
        );
        let still = format!("oci:{}:r{round}", work.path().join("later").display());
        // Once more after every review of this round is over: nothing it needs was freed.
        tokio::time::sleep(Duration::from_secs(GRACE_SECONDS + 1)).await;
        skopeo_copy(&destination, &still, &server.creds());
    }
}

/// Every manifest, config and layer of `images` (manifest digests) in `repository` reads back
/// whole.
async fn assert_whole(
    server: &TestServer,
    repository: &str,
    images: &[(String, BTreeSet<String>)],
) {
    for (manifest, blobs) in images {
        let body = server
            .get(&format!("/v2/{repository}/manifests/{manifest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(body.status(), StatusCode::OK, "{manifest}");
        let document: Value = serde_json::from_slice(&body.bytes().await.unwrap()).unwrap();
        assert_eq!(document["layers"].as_array().unwrap().len(), 1);
        for digest in blobs {
            let response = get_blob(server, repository, digest).await;
            assert_eq!(response.status(), StatusCode::OK, "{digest} of {manifest}");
            assert_eq!(&sha256(&response.bytes().await.unwrap()), digest);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_killed_mid_way_loses_nothing_and_leaves_no_orphans() {
    let mut server = start();
    let mut kept = Vec::new();
    let mut deleted = Vec::new();
    for i in 0..300 {
        let (manifest, blobs) =
            push_image(&server, "team/app", &format!("t{i}"), &format!("image {i}")).await;
        let blobs: BTreeSet<String> = blobs.into_keys().collect();
        if i % 2 == 0 {
            kept.push((manifest, blobs));
        } else {
            deleted.push((manifest, blobs));
        }
    }
    for (manifest, _) in &deleted {
        delete_manifest(&server, "team/app", manifest).await;
    }
    // Killed as soon as the sweep is seen deleting: the blob store has lost a deleted image's
    // blob (the sweep deletes image by image, so most of them are still there).
    let deleted_blobs: BTreeSet<String> = deleted.iter().flat_map(|(_, b)| b.clone()).collect();
    let freed_before = wait_until("the sweep starts deleting", async || {
        let stored = stored_blobs(&server).await;
        match deleted_blobs
            .iter()
            .filter(|d| !stored.contains_key(*d))
            .count()
        {
            0 => Err("nothing deleted yet".to_owned()),
            freed => Ok(freed),
        }
    })
    .await;
    server = tokio::task::block_in_place(|| server.crash_and_restart());
    eprintln!(
        "killed once the sweep had deleted {freed_before} of {} blobs",
        deleted_blobs.len()
    );

    let kept_blobs: BTreeSet<String> = kept.iter().flat_map(|(_, b)| b.clone()).collect();
    wait_until("every deleted image's blobs are collected", async || {
        let stored: BTreeSet<String> = stored_blobs(&server).await.into_keys().collect();
        let left = deleted
            .iter()
            .flat_map(|(_, blobs)| blobs)
            .filter(|digest| stored.contains(*digest))
            .count();
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} still stored"))
        }
    })
    .await;
    // No blob without its row: every kept blob reads back whole. No row without its blob, and
    // no blob without a row: the store holds exactly the kept blobs, and the deleted ones are
    // unknown.
    assert_whole(&server, "team/app", &kept).await;
    let stored: BTreeSet<String> = stored_blobs(&server).await.into_keys().collect();
    assert_eq!(stored, kept_blobs);
    for (manifest, blobs) in &deleted {
        assert_eq!(
            error_code(
                server
                    .get(&format!("/v2/team/app/manifests/{manifest}"))
                    .send()
                    .await
                    .unwrap()
            )
            .await,
            "MANIFEST_UNKNOWN"
        );
        for digest in blobs {
            assert_eq!(
                error_code(get_blob(&server, "team/app", digest).await).await,
                "BLOB_UNKNOWN"
            );
        }
    }
    // And the collection is over: nothing waits for a review but what the kept images' own
    // pushes queued, which their reviews clear.
    wait_until("no candidate is left", async || {
        let waiting = metric(&server, "berth_gc_candidates").await;
        if waiting == 0.0 {
            Ok(())
        } else {
            Err(format!("{waiting} waiting"))
        }
    })
    .await;
}
