//! Blob endpoints and uploads against the running server: every upload flow, resume after a
//! crash, mount, ranges, delete, and their error cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    TestServer, error_code, error_code_of, expect_status, get_blob, header, location, push_blob,
    sha256,
};
use reqwest::StatusCode;
use sha2::Digest as _;

async fn start_upload(server: &TestServer, repository: &str) -> String {
    let response = expect_status(
        server.post(&format!("/v2/{repository}/blobs/uploads/")),
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(header(&response, "range"), "0-0");
    assert!(response.headers().contains_key("docker-upload-uuid"));
    assert_eq!(
        header(&response, "docker-distribution-api-version"),
        "registry/2.0"
    );
    location(&response)
}

async fn patch(
    server: &TestServer,
    location: &str,
    start: usize,
    data: &[u8],
) -> reqwest::Response {
    server
        .patch(location)
        .header("content-type", "application/octet-stream")
        .header(
            "content-range",
            format!("{}-{}", start, start + data.len() - 1),
        )
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn monolithic_push_then_get_and_head() {
    let server = TestServer::start();
    let data = b"a monolithic blob".to_vec();
    let digest = push_blob(&server, "ns/app", &data).await;
    let response = get_blob(&server, "ns/app", &digest).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "docker-content-digest"), digest);
    assert_eq!(response.bytes().await.unwrap(), data);
    let head = expect_status(
        server.head(&format!("/v2/ns/app/blobs/{digest}")),
        StatusCode::OK,
    )
    .await;
    assert_eq!(header(&head, "content-length"), data.len().to_string());
    // Another repository does not see it.
    let elsewhere = get_blob(&server, "ns/other", &digest).await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(elsewhere).await, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn post_then_put_with_the_whole_body() {
    let server = TestServer::start();
    let upload = start_upload(&server, "a/b").await;
    let data = b"post then put".to_vec();
    let digest = sha256(&data);
    let response = expect_status(
        server
            .put(&format!("{upload}?digest={digest}"))
            .body(data.clone()),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(location(&response), format!("/v2/a/b/blobs/{digest}"));
    assert_eq!(
        get_blob(&server, "a/b", &digest)
            .await
            .bytes()
            .await
            .unwrap(),
        data
    );
}

#[tokio::test]
async fn chunked_upload_with_status_out_of_order_chunk_and_resume_after_a_crash() {
    let server = TestServer::start();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256(&data);
    let location = start_upload(&server, "chunks/repo").await;

    let first = patch(&server, &location, 0, &data[..100_000]).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&first, "range"), "0-99999");

    // A chunk that skips ahead is refused with 416 and the current range.
    let skipped = patch(&server, &location, 150_000, &data[150_000..200_000]).await;
    assert_eq!(skipped.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&skipped, "range"), "0-99999");
    assert_eq!(error_code(skipped).await, "BLOB_UPLOAD_INVALID");

    // The server dies; the session, its data and its hash state survive.
    let server = server.crash_and_restart();
    let status = expect_status(server.get(&location), StatusCode::NO_CONTENT).await;
    assert_eq!(header(&status, "range"), "0-99999");

    let second = patch(&server, &location, 100_000, &data[100_000..200_000]).await;
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    // The last chunk comes with the PUT.
    expect_status(
        server
            .put(&format!("{location}?digest={digest}"))
            .header("content-range", "200000-299999")
            .body(data[200_000..].to_vec()),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        get_blob(&server, "chunks/repo", &digest)
            .await
            .bytes()
            .await
            .unwrap(),
        data
    );
    // The session is gone.
    let gone = expect_status(server.get(&location), StatusCode::NOT_FOUND).await;
    assert_eq!(error_code(gone).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn streamed_patch_without_content_range() {
    let server = TestServer::start();
    let location = start_upload(&server, "ns/stream").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|i| Ok(vec![i as u8; 10_000])).collect();
    let expected: Vec<u8> = (0..10).flat_map(|i| vec![i as u8; 10_000]).collect();
    let response = expect_status(
        server
            .patch(&location)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            ))),
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(header(&response, "range"), "0-99999");
    let digest = sha256(&expected);
    expect_status(
        server.put(&format!("{location}?digest={digest}")),
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_digest_is_refused_and_the_session_keeps_its_data() {
    let server = TestServer::start();
    let location = start_upload(&server, "ns/r").await;
    patch(&server, &location, 0, b"first part").await;
    let wrong = sha256(b"something else");
    let response = expect_status(
        server
            .put(&format!("{location}?digest={wrong}"))
            .body(b" and the rest".to_vec()),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error_code(response).await, "DIGEST_INVALID");
    // Still at the first part: the refused request's body did not count.
    let status = server.get(&location).send().await.unwrap();
    assert_eq!(header(&status, "range"), "0-9");
    let right = sha256(b"first part and the rest");
    expect_status(
        server
            .put(&format!("{location}?digest={right}"))
            .body(b" and the rest".to_vec()),
        StatusCode::CREATED,
    )
    .await;

    // Monolithic with a wrong digest stores nothing.
    assert_eq!(
        error_code_of(
            server
                .post(&format!("/v2/ns/r/blobs/uploads/?digest={wrong}"))
                .body(b"not matching".to_vec())
        )
        .await,
        "DIGEST_INVALID"
    );
    assert_eq!(
        get_blob(&server, "ns/r", &wrong).await.status(),
        StatusCode::NOT_FOUND
    );

    // Finishing without a digest, or with a malformed one.
    let location = start_upload(&server, "ns/r").await;
    assert_eq!(error_code_of(server.put(&location)).await, "DIGEST_INVALID");
    assert_eq!(
        error_code_of(server.put(&format!("{location}?digest=sha256:nothex"))).await,
        "DIGEST_INVALID"
    );
}

#[tokio::test]
async fn sha512_digests() {
    let server = TestServer::start();
    let data = b"hashed with sha512".to_vec();
    let digest = format!("sha512:{}", hex::encode(sha2::Sha512::digest(&data)));
    // Monolithic and chunked.
    expect_status(
        server
            .post(&format!("/v2/ns/s/blobs/uploads/?digest={digest}"))
            .body(data.clone()),
        StatusCode::CREATED,
    )
    .await;
    let location = start_upload(&server, "ns/s2").await;
    patch(&server, &location, 0, &data).await;
    expect_status(
        server.put(&format!("{location}?digest={digest}")),
        StatusCode::CREATED,
    )
    .await;
    let got = get_blob(&server, "ns/s2", &digest).await;
    assert_eq!(header(&got, "docker-content-digest"), digest);
    assert_eq!(got.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn cancel_an_upload() {
    let server = TestServer::start();
    let location = start_upload(&server, "ns/r").await;
    expect_status(server.delete(&location), StatusCode::NO_CONTENT).await;
    assert_eq!(
        error_code_of(server.delete(&location)).await,
        "BLOB_UPLOAD_UNKNOWN"
    );
    let response = patch(&server, &location, 0, b"late").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // An upload is bound to its repository.
    let location = start_upload(&server, "ns/r").await;
    let id = location.rsplit('/').next().unwrap();
    assert_eq!(
        error_code_of(server.get(&format!("/v2/ns/other/blobs/uploads/{id}"))).await,
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[tokio::test]
async fn cross_repository_mount_and_its_fallback() {
    let server = TestServer::start();
    let digest = push_blob(&server, "source/repo", b"shared layer").await;
    let mount = |digest: &str, from: &str| {
        server.post(&format!(
            "/v2/target/repo/blobs/uploads/?mount={digest}&from={from}"
        ))
    };
    let response = expect_status(mount(&digest, "source/repo"), StatusCode::CREATED).await;
    assert_eq!(
        location(&response),
        format!("/v2/target/repo/blobs/{digest}")
    );
    assert_eq!(header(&response, "docker-content-digest"), digest);
    assert_eq!(
        get_blob(&server, "target/repo", &digest).await.status(),
        StatusCode::OK
    );

    // From a repository that lacks it: an ordinary upload session.
    let missing = sha256(b"never pushed");
    let response = expect_status(mount(&missing, "source/repo"), StatusCode::ACCEPTED).await;
    assert!(location(&response).starts_with("/v2/target/repo/blobs/uploads/"));
    expect_status(mount(&digest, "NOT..VALID"), StatusCode::ACCEPTED).await;
}

#[tokio::test]
async fn ranges_and_unsatisfiable_ranges() {
    let server = TestServer::start();
    let data: Vec<u8> = (0..=255u8).collect();
    let digest = push_blob(&server, "ns/r", &data).await;
    let blob = format!("/v2/ns/r/blobs/{digest}");
    let partial = expect_status(
        server.get(&blob).header("range", "bytes=10-19"),
        StatusCode::PARTIAL_CONTENT,
    )
    .await;
    assert_eq!(header(&partial, "content-range"), "bytes 10-19/256");
    assert_eq!(partial.bytes().await.unwrap(), data[10..20]);
    let suffix = server
        .get(&blob)
        .header("range", "bytes=-6")
        .send()
        .await
        .unwrap();
    assert_eq!(suffix.bytes().await.unwrap(), data[250..]);
    for bad in ["bytes=300-", "bytes=20-10", "lines=1-2"] {
        let response = server.get(&blob).header("range", bad).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{bad}"
        );
        assert_eq!(header(&response, "content-range"), "bytes */256");
    }
}

#[tokio::test]
async fn delete_a_blob() {
    let server = TestServer::start();
    let digest = push_blob(&server, "ns/r", b"to delete").await;
    let blob = format!("/v2/ns/r/blobs/{digest}");
    expect_status(server.delete(&blob), StatusCode::ACCEPTED).await;
    expect_status(server.get(&blob), StatusCode::NOT_FOUND).await;
    assert_eq!(error_code_of(server.delete(&blob)).await, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn names_digests_and_paths_are_checked() {
    let server = TestServer::start();
    let cases = [
        (
            "/v2/Upper/blobs/uploads/",
            "POST",
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
        ),
        // Every repository lives in a namespace.
        (
            "/v2/busybox/blobs/uploads/",
            "POST",
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
        ),
        (
            "/v2/not_a_label/app/blobs/uploads/",
            "POST",
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
        ),
        (
            "/v2/n/a/blobs/sha256:short",
            "GET",
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        ),
        (
            "/v2/n/a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e",
            "GET",
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        ),
        (
            "/v2/n/..%2F..%2Fetc/blobs/uploads/",
            "POST",
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
        ),
        (
            "/v2/n/a/blobs/uploads/not-a-uuid",
            "GET",
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "/v2/n/a/nothing/here",
            "GET",
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
        ),
        (
            "/v2/n/a/blobs/uploads/",
            "GET",
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
        ),
    ];
    for (path, method, status, code) in cases {
        let response = server
            .client()
            .request(method.parse().unwrap(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(
            header(&response, "docker-distribution-api-version"),
            "registry/2.0"
        );
        assert_eq!(error_code(response).await, code, "{method} {path}");
    }
}

#[tokio::test]
async fn an_upload_nobody_writes_to_expires_with_its_data() {
    let server = TestServer::start_with_config("[gc]\nupload_ttl_seconds = 2\n", &[]);
    let abandoned = start_upload(&server, "ns/app").await;
    assert_eq!(
        patch(&server, &abandoned, 0, b"left behind").await.status(),
        StatusCode::ACCEPTED
    );
    let id = header(
        &expect_status(server.get(&abandoned), StatusCode::NO_CONTENT).await,
        "docker-upload-uuid",
    );
    let data_file = server.data_dir().join("uploads").join(&id);
    if matches!(server.storage(), common::Storage::Embedded) {
        assert!(data_file.exists());
    }

    // Another upload is written to every second: it stays, however long it takes.
    let mut active = start_upload(&server, "ns/app").await;
    let mut offset = 0;
    for _ in 0..5 {
        let response = patch(&server, &active, offset, b"more").await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        active = location(&response);
        offset += 4;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert_eq!(
        error_code_of(server.get(&abandoned)).await,
        "BLOB_UPLOAD_UNKNOWN"
    );
    assert_eq!(
        error_code_of(server.patch(&abandoned).body("more")).await,
        "BLOB_UPLOAD_UNKNOWN"
    );
    if matches!(server.storage(), common::Storage::Embedded) {
        assert!(!data_file.exists(), "the expired upload's data is deleted");
    }
    let status = expect_status(server.get(&active), StatusCode::NO_CONTENT).await;
    assert_eq!(header(&status, "range"), format!("0-{}", offset - 1));
}
