//! Manifests, tags, the catalog and referrers against the running server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    OCI_INDEX, OCI_MANIFEST, TestServer, error_code, expect_status, header, image_manifest,
    push_blob, put_manifest, sha256,
};
use reqwest::StatusCode;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

async fn get(server: &TestServer, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = server.get(path);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn push_and_pull_by_tag_and_by_digest() {
    let server = TestServer::start();
    let manifest = image_manifest(&server, "ns/app", "one").await;
    let digest = sha256(&manifest);
    let response = put_manifest(&server, "ns/app", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "docker-content-digest"), digest);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/ns/app/manifests/{digest}")
    );

    for reference in ["v1", digest.as_str()] {
        let response = get(
            &server,
            &format!("/v2/ns/app/manifests/{reference}"),
            Some(OCI_MANIFEST),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&response, "docker-content-digest"), digest);
        assert_eq!(response.bytes().await.unwrap(), manifest);
        let head = expect_status(
            server.head(&format!("/v2/ns/app/manifests/{reference}")),
            StatusCode::OK,
        )
        .await;
        assert_eq!(header(&head, "content-length"), manifest.len().to_string());
    }

    // By digest: the body must have that digest.
    let response = put_manifest(&server, "ns/app", &digest, OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let other = sha256(b"other");
    let response = put_manifest(&server, "ns/app", &other, OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "DIGEST_INVALID");

    let missing = get(&server, "/v2/ns/app/manifests/v2", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(missing).await, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn a_manifest_with_missing_blobs_or_children_is_refused() {
    let server = TestServer::start();
    let missing = sha256(b"not pushed");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": missing, "size": 10},
        "layers": [],
    }))
    .unwrap();
    let response = put_manifest(&server, "ns/r", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(body["errors"][0]["detail"]["missing"][0], missing);

    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing, "size": 10}],
    }))
    .unwrap();
    let response = put_manifest(&server, "ns/r", "list", OCI_INDEX, &index).await;
    assert_eq!(error_code(response).await, "MANIFEST_BLOB_UNKNOWN");
    // Nothing was recorded.
    let tags = get(&server, "/v2/ns/r/tags/list", None).await;
    assert_eq!(tags.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_manifests_get_clear_errors() {
    let server = TestServer::start();
    let schema1 = br#"{"schemaVersion":1,"name":"r","tag":"v1","architecture":"amd64","fsLayers":[],"history":[]}"#;
    let response = put_manifest(
        &server,
        "ns/r",
        "v1",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        schema1,
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("schema 1")
    );

    let manifest = image_manifest(&server, "ns/r", "x").await;
    for (content_type, body) in [
        (OCI_MANIFEST, b"{not json".to_vec()),
        (DOCKER_MANIFEST, manifest.clone()),
        (
            "text/plain",
            br#"{"schemaVersion":2,"mediaType":"text/plain"}"#.to_vec(),
        ),
    ] {
        let response = put_manifest(&server, "ns/r", "v1", content_type, &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{content_type}");
        assert_eq!(error_code(response).await, "MANIFEST_INVALID");
    }
    let response = put_manifest(&server, "ns/r", "-bad-tag", OCI_MANIFEST, &manifest).await;
    assert_eq!(error_code(response).await, "MANIFEST_INVALID");
}

#[tokio::test]
async fn the_manifest_size_limit() {
    let server = TestServer::start_with(&["--max-manifest-bytes", "1000"]);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&image_manifest(&server, "ns/r", "big").await).unwrap();
    manifest["annotations"] = serde_json::json!({ "padding": "x".repeat(2000) });
    let body = serde_json::to_vec(&manifest).unwrap();
    let response = put_manifest(&server, "ns/r", "big", OCI_MANIFEST, &body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(response).await, "SIZE_INVALID");
    // Without a Content-Length (chunked), the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(100).map(|c| Ok(c.to_vec())).collect();
    expect_status(
        server
            .put("/v2/ns/r/manifests/big")
            .header("content-type", OCI_MANIFEST)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            ))),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

/// Pushes two platform images and an index over them; returns (index, amd64 manifest).
async fn push_index(
    server: &TestServer,
    repository: &str,
    index_type: &str,
    image_type: &str,
) -> (Vec<u8>, Vec<u8>) {
    let mut children = Vec::new();
    let mut amd64 = Vec::new();
    for arch in ["amd64", "arm64"] {
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&image_manifest(server, repository, arch).await).unwrap();
        manifest["mediaType"] = image_type.into();
        let body = serde_json::to_vec(&manifest).unwrap();
        let digest = sha256(&body);
        let response = put_manifest(server, repository, &digest, image_type, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        children.push(serde_json::json!({
            "mediaType": image_type, "digest": digest, "size": body.len(),
            "platform": {"os": "linux", "architecture": arch},
        }));
        if arch == "amd64" {
            amd64 = body;
        }
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": index_type, "manifests": children,
    }))
    .unwrap();
    let response = put_manifest(server, repository, "multi", index_type, &index).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    (index, amd64)
}

#[tokio::test]
async fn indexes_and_content_negotiation() {
    let server = TestServer::start();
    let (index, amd64) = push_index(&server, "oci/multi", OCI_INDEX, OCI_MANIFEST).await;
    let response = get(
        &server,
        "/v2/oci/multi/manifests/multi",
        Some(&format!("{OCI_INDEX}, {OCI_MANIFEST}")),
    )
    .await;
    assert_eq!(header(&response, "content-type"), OCI_INDEX);
    assert_eq!(response.bytes().await.unwrap(), index);
    // No Accept header: served as stored.
    let response = get(&server, "/v2/oci/multi/manifests/multi", None).await;
    assert_eq!(header(&response, "content-type"), OCI_INDEX);
    // A client that takes only image manifests gets the linux/amd64 image.
    let response = get(&server, "/v2/oci/multi/manifests/multi", Some(OCI_MANIFEST)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), OCI_MANIFEST);
    assert_eq!(response.bytes().await.unwrap(), amd64);
    // A client that takes only Docker types cannot have this OCI content.
    let response = get(
        &server,
        "/v2/oci/multi/manifests/multi",
        Some(DOCKER_MANIFEST),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(response).await, "MANIFEST_UNKNOWN");

    let (list, _) = push_index(&server, "docker/multi", DOCKER_LIST, DOCKER_MANIFEST).await;
    let response = get(
        &server,
        "/v2/docker/multi/manifests/multi",
        Some(&format!("{DOCKER_LIST},{DOCKER_MANIFEST}")),
    )
    .await;
    assert_eq!(header(&response, "content-type"), DOCKER_LIST);
    assert_eq!(response.bytes().await.unwrap(), list);
}

#[tokio::test]
async fn delete_by_tag_and_by_digest() {
    let server = TestServer::start();
    let manifest = image_manifest(&server, "ns/r", "d").await;
    let digest = sha256(&manifest);
    for tag in ["a", "b"] {
        put_manifest(&server, "ns/r", tag, OCI_MANIFEST, &manifest).await;
    }
    expect_status(server.delete("/v2/ns/r/manifests/a"), StatusCode::ACCEPTED).await;
    assert_eq!(
        get(&server, "/v2/ns/r/manifests/a", None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&server, "/v2/ns/r/manifests/b", None).await.status(),
        StatusCode::OK
    );
    expect_status(
        server.delete(&format!("/v2/ns/r/manifests/{digest}")),
        StatusCode::ACCEPTED,
    )
    .await;
    // The tags pointing at it went with it.
    assert_eq!(
        get(&server, "/v2/ns/r/manifests/b", None).await.status(),
        StatusCode::NOT_FOUND
    );
    let tags: serde_json::Value = get(&server, "/v2/ns/r/tags/list", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!([]));
    let again = server
        .delete(&format!("/v2/ns/r/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(again).await, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn tags_and_catalog_paginate_with_link_headers() {
    let server = TestServer::start();
    let manifest = image_manifest(&server, "p/repo", "tags").await;
    let tags = ["v10", "v2", "latest", "v1", "beta"];
    for tag in tags {
        put_manifest(&server, "p/repo", tag, OCI_MANIFEST, &manifest).await;
    }
    let mut sorted = tags.to_vec();
    sorted.sort();
    let all: serde_json::Value = get(&server, "/v2/p/repo/tags/list", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["name"], "p/repo");
    assert_eq!(all["tags"], serde_json::json!(sorted));

    let mut seen = Vec::new();
    let mut next = Some("/v2/p/repo/tags/list?n=2".to_owned());
    while let Some(path) = next {
        let response = get(&server, &path, None).await;
        let link = header(&response, "link");
        next = (!link.is_empty()).then(|| {
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            link.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned()
        });
        let page: serde_json::Value = response.json().await.unwrap();
        let page: Vec<String> = serde_json::from_value(page["tags"].clone()).unwrap();
        assert!(page.len() <= 2);
        seen.extend(page);
    }
    assert_eq!(seen, sorted);
    let bad = get(&server, "/v2/p/repo/tags/list?n=many", None).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    for name in ["c/one", "a/two", "b/three"] {
        let manifest = image_manifest(&server, name, name).await;
        put_manifest(&server, name, "latest", OCI_MANIFEST, &manifest).await;
    }
    let first = get(&server, "/v2/_catalog?n=2", None).await;
    assert_eq!(
        header(&first, "link"),
        "</v2/_catalog?n=2&last=b%2Fthree>; rel=\"next\""
    );
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(
        first["repositories"],
        serde_json::json!(["a/two", "b/three"])
    );
    let rest: serde_json::Value = get(&server, "/v2/_catalog?n=2&last=b/three", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["repositories"], serde_json::json!(["c/one", "p/repo"]));
}

#[tokio::test]
async fn referrers_with_artifact_type_filter_and_subject_header() {
    let server = TestServer::start();
    let subject = image_manifest(&server, "ns/r", "subject").await;
    let subject_digest = sha256(&subject);
    put_manifest(&server, "ns/r", "v1", OCI_MANIFEST, &subject).await;

    let empty = push_blob(&server, "ns/r", b"{}").await;
    let mut referrer_digests = Vec::new();
    for artifact_type in ["application/vnd.example.signature", "application/spdx+json"] {
        let layer = push_blob(&server, "ns/r", artifact_type.as_bytes()).await;
        let referrer = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": artifact_type.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject.len()},
            "annotations": {"org.example.kind": artifact_type},
        }))
        .unwrap();
        let digest = sha256(&referrer);
        let response = put_manifest(&server, "ns/r", &digest, OCI_MANIFEST, &referrer).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(header(&response, "oci-subject"), subject_digest);
        referrer_digests.push(digest);
    }

    let response = get(
        &server,
        &format!("/v2/ns/r/referrers/{subject_digest}"),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), OCI_INDEX);
    let index: serde_json::Value = response.json().await.unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let found: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(found, referrer_digests);
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.example.signature"
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.example.kind"],
        "application/vnd.example.signature"
    );

    let filtered = get(
        &server,
        &format!("/v2/ns/r/referrers/{subject_digest}?artifactType=application/spdx%2Bjson"),
        None,
    )
    .await;
    assert_eq!(header(&filtered, "oci-filters-applied"), "artifactType");
    let filtered: serde_json::Value = filtered.json().await.unwrap();
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["manifests"][0]["digest"], referrer_digests[1]);

    // No referrers: an empty index, not a 404.
    let none = get(
        &server,
        &format!("/v2/ns/r/referrers/{}", sha256(b"nothing")),
        None,
    )
    .await;
    assert_eq!(none.status(), StatusCode::OK);
    let none: serde_json::Value = none.json().await.unwrap();
    assert_eq!(none["manifests"], serde_json::json!([]));
    let bad = get(&server, "/v2/ns/r/referrers/sha256:zz", None).await;
    assert_eq!(error_code(bad).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn concurrent_pushes_of_one_tag_leave_one_consistent_answer() {
    let server = TestServer::start();
    let mut manifests = Vec::new();
    for i in 0..8 {
        manifests.push(image_manifest(&server, "ns/race", &format!("m{i}")).await);
    }
    let pushes = manifests
        .iter()
        .map(|m| put_manifest(&server, "ns/race", "latest", OCI_MANIFEST, m));
    for response in futures_util::future::join_all(pushes).await {
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let response = get(&server, "/v2/ns/race/manifests/latest", None).await;
    let digest = header(&response, "docker-content-digest");
    let body = response.bytes().await.unwrap();
    assert_eq!(sha256(&body), digest);
    assert!(manifests.iter().any(|m| m == &body));
}

#[tokio::test]
async fn a_manifest_pushed_by_sha512_digest() {
    use sha2::Digest as _;
    let server = TestServer::start();
    let manifest = image_manifest(&server, "ns/r512", "sha512").await;
    let digest = format!("sha512:{}", hex::encode(sha2::Sha512::digest(&manifest)));
    let response = put_manifest(&server, "ns/r512", &digest, OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "docker-content-digest"), digest);
    let response = get(&server, &format!("/v2/ns/r512/manifests/{digest}"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "docker-content-digest"), digest);
    assert_eq!(response.bytes().await.unwrap(), manifest);
}
