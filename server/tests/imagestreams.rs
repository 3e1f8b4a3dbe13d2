//! The image stream API against the running server: pushes recorded as tag history, tagging and
//! rollback, namespaces, watches across reconnects, and every kind of bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::images::{skopeo_copy, skopeo_inspect, umoci_image};
use common::{
    OCI_MANIFEST, TestServer, expect_kube_status, expect_status, image_manifest, push_image,
    put_manifest, sha256,
};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

const API: &str = "/apis/image.openshift.io/v1";

async fn get(server: &TestServer, path: &str) -> (StatusCode, Value) {
    let response = server.get(path).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn send(server: &TestServer, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = server
        .client()
        .request(method.parse().unwrap(), server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn history(stream: &Value, tag: &str) -> Vec<String> {
    stream["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == tag)
        .map(|t| {
            t["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["image"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Stream `namespace/stream` is gone, and with it its repository's `tag`.
async fn assert_stream_gone(server: &TestServer, namespace: &str, stream: &str, tag: &str) {
    let path = format!("{API}/namespaces/{namespace}/imagestreams/{stream}");
    expect_kube_status(server.get(&path), StatusCode::NOT_FOUND, "NotFound").await;
    let manifest = format!("/v2/{namespace}/{stream}/manifests/{tag}");
    expect_status(server.get(&manifest), StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn pushes_make_history_and_a_rollback_is_one_call() {
    let server = TestServer::start();
    let first = push_image(&server, "team/app", "v1", "one").await;
    let second = push_image(&server, "team/app", "v1", "two").await;
    let third = push_image(&server, "team/app", "v1", "three").await;
    // Pushing the current image again adds nothing.
    push_image(&server, "team/app", "v1", "three").await;

    let (status, stream) = get(&server, &format!("{API}/namespaces/team/imagestreams/app")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stream["kind"], "ImageStream");
    assert_eq!(stream["metadata"]["namespace"], "team");
    assert_eq!(
        stream["status"]["dockerImageRepository"],
        format!("{}/team/app", server.addr)
    );
    assert_eq!(
        history(&stream, "v1"),
        [third.clone(), second.clone(), first.clone()]
    );
    let item = &stream["status"]["tags"][0]["items"][0];
    assert_eq!(
        item["dockerImageReference"],
        format!("{}/team/app@{third}", server.addr)
    );

    // Roll back to the first image: one call, pointing the tag at it.
    let (status, tag) = send(
        &server,
        "PUT",
        &format!("{API}/namespaces/team/imagestreamtags/app:v1"),
        json!({"tag": {"from": {"kind": "ImageStreamImage", "name": format!("app@{first}")}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tag}");
    assert_eq!(tag["image"]["metadata"]["name"], first);
    let (_, stream) = get(&server, &format!("{API}/namespaces/team/imagestreams/app")).await;
    assert_eq!(
        history(&stream, "v1"),
        [first.clone(), third.clone(), second.clone(), first.clone()]
    );
    // The registry serves the rolled-back image for the tag.
    let response = server
        .get("/v2/team/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["docker-content-digest"], first.as_str());
}

#[tokio::test]
async fn image_metadata_matches_what_skopeo_reports() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let source = format!(
        "oci:{}",
        umoci_image(&work.path().join("layout"), "v1", "amd64", 2)
    );
    let destination = format!("docker://{}/meta/app:v1", server.addr);
    skopeo_copy(&source, &destination, &server.creds());
    let creds = server.creds();
    let config: Value =
        serde_json::from_str(&skopeo_inspect(&["--config"], &destination, Some(&creds))).unwrap();
    let inspect: Value =
        serde_json::from_str(&skopeo_inspect(&[], &destination, Some(&creds))).unwrap();

    let (status, tag) = get(
        &server,
        &format!("{API}/namespaces/meta/imagestreamtags/app:v1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let image = &tag["image"];
    assert_eq!(image["metadata"]["name"], inspect["Digest"]);
    let docker = &image["dockerImageMetadata"];
    assert_eq!(docker["Architecture"], config["architecture"]);
    assert_eq!(docker["Os"], config["os"]);
    assert_eq!(docker["Created"], config["created"]);
    assert_eq!(docker["Config"]["Env"], config["config"]["Env"]);
    assert_eq!(
        docker["Config"]["Entrypoint"],
        config["config"]["Entrypoint"]
    );
    assert_eq!(docker["Config"]["Labels"], config["config"]["Labels"]);
    let history = config["history"].as_array().unwrap();
    assert_eq!(docker["History"].as_array().unwrap().len(), history.len());
    assert_eq!(docker["History"][0]["CreatedBy"], history[0]["created_by"]);
    let layers: Vec<&Value> = image["dockerImageLayers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["name"])
        .collect();
    let expected: Vec<&Value> = inspect["Layers"].as_array().unwrap().iter().collect();
    assert_eq!(layers, expected);
    let sizes: u64 = image["dockerImageLayers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(docker["Size"].as_u64().unwrap() > sizes);
    assert_eq!(
        image["dockerImageManifestMediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    // The same image through the cluster-scoped and the stream-scoped endpoints.
    let digest = inspect["Digest"].as_str().unwrap();
    let (status, by_digest) = get(&server, &format!("{API}/images/{digest}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_digest["dockerImageMetadata"], *docker);
    let (status, stream_image) = get(
        &server,
        &format!("{API}/namespaces/meta/imagestreamimages/app@{digest}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stream_image["kind"], "ImageStreamImage");
    assert_eq!(stream_image["image"]["dockerImageMetadata"], *docker);
}

#[tokio::test]
async fn tagging_across_streams_and_namespaces_untag_and_delete() {
    let server = TestServer::start();
    let digest = push_image(&server, "src/app", "v1", "shared").await;
    // oc tag src/app:v1 dst/other:prod
    // The namespace must exist first.
    expect_kube_status(
        server.put(&format!("{API}/namespaces/dst/imagestreamtags/other:prod"))
            .json(&json!({"tag": {"from": {"kind": "ImageStreamTag", "namespace": "src", "name": "app:v1"}}})),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    send(
        &server,
        "POST",
        "/api/v1/namespaces",
        json!({"metadata": {"name": "dst"}}),
    )
    .await;
    let (status, body) = send(
        &server,
        "PUT",
        &format!("{API}/namespaces/dst/imagestreamtags/other:prod"),
        json!({"tag": {"from": {"kind": "ImageStreamTag", "namespace": "src", "name": "app:v1"}}}),
    )
    .await;
    // A PUT that makes the tag answers 201, as OpenShift's does (one that moves a tag, 200).
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["image"]["metadata"]["name"], digest);
    assert_eq!(body["tag"]["from"]["name"], "app:v1");
    assert_eq!(body["tag"]["generation"], 1);
    // Pullable from the target repository, layers and all.
    let manifest = server
        .get("/v2/dst/other/manifests/prod")
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.headers()["docker-content-digest"], digest.as_str());
    let manifest: Value = manifest.json().await.unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    expect_status(
        server.get(&format!("/v2/dst/other/blobs/{layer}")),
        StatusCode::OK,
    )
    .await;

    // Untag: spec and status go.
    let tag = server.url(&format!("{API}/namespaces/dst/imagestreamtags/other:prod"));
    expect_kube_status(server.client().delete(&tag), StatusCode::OK, "").await;
    expect_kube_status(server.client().get(&tag), StatusCode::NOT_FOUND, "NotFound").await;
    let (_, stream) = get(&server, &format!("{API}/namespaces/dst/imagestreams/other")).await;
    assert!(stream["spec"]["tags"].is_null());
    assert!(stream["status"]["tags"].is_null());
    expect_status(
        server.get("/v2/dst/other/manifests/prod"),
        StatusCode::NOT_FOUND,
    )
    .await;

    // Delete the source stream: its repository goes with it.
    let (status, _) = send(
        &server,
        "DELETE",
        &format!("{API}/namespaces/src/imagestreams/app"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_stream_gone(&server, "src", "app", "v1").await;
}

#[tokio::test]
async fn registry_deletes_and_pushes_by_digest_show_in_the_stream() {
    let server = TestServer::start();
    let keep = push_image(&server, "d/app", "keep", "keep").await;
    let drop = push_image(&server, "d/app", "drop", "drop").await;
    // By digest: an image of the stream, with no tag.
    let manifest = image_manifest(&server, "d/app", "untagged").await;
    let untagged = sha256(&manifest);
    put_manifest(&server, "d/app", &untagged, OCI_MANIFEST, &manifest).await;
    let (status, _) = get(
        &server,
        &format!("{API}/namespaces/d/imagestreamimages/app@{untagged}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    server
        .delete(&format!("/v2/d/app/manifests/{drop}"))
        .send()
        .await
        .unwrap();
    let (_, stream) = get(&server, &format!("{API}/namespaces/d/imagestreams/app")).await;
    let tags: Vec<&str> = stream["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["keep"]);
    assert_eq!(history(&stream, "keep"), std::slice::from_ref(&keep));
    // A registry untag is an untag of the stream.
    server
        .delete("/v2/d/app/manifests/keep")
        .send()
        .await
        .unwrap();
    let (_, stream) = get(&server, &format!("{API}/namespaces/d/imagestreams/app")).await;
    assert!(stream["status"]["tags"].is_null());
}

#[tokio::test]
async fn concurrent_pushes_of_one_tag_lose_no_history() {
    let server = TestServer::start();
    let mut manifests = Vec::new();
    for i in 0..10 {
        manifests.push(image_manifest(&server, "c/app", &format!("m{i}")).await);
    }
    let pushes = manifests
        .iter()
        .map(|m| put_manifest(&server, "c/app", "latest", OCI_MANIFEST, m));
    for response in futures_util::future::join_all(pushes).await {
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let (_, stream) = get(&server, &format!("{API}/namespaces/c/imagestreams/app")).await;
    let items = history(&stream, "latest");
    assert_eq!(items.len(), 10);
    let mut expected: Vec<String> = manifests.iter().map(|m| sha256(m)).collect();
    let mut seen = items.clone();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
    let current = server
        .get("/v2/c/app/manifests/latest")
        .send()
        .await
        .unwrap();
    assert_eq!(
        current.headers()["docker-content-digest"],
        items[0].as_str()
    );
}

#[tokio::test]
async fn streams_and_namespaces_crud_with_pagination_and_generations() {
    let server = TestServer::start();
    let (status, ns) = send(
        &server,
        "POST",
        "/api/v1/namespaces",
        json!({"metadata": {"name": "crud", "labels": {"team": "a"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(ns["status"]["phase"], "Active");
    expect_kube_status(
        server
            .post("/api/v1/namespaces")
            .json(&json!({"metadata": {"name": "crud"}})),
        StatusCode::CONFLICT,
        "AlreadyExists",
    )
    .await;

    for name in ["c", "a", "b", "e", "d"] {
        let (status, body) = send(
            &server,
            "POST",
            &format!("{API}/namespaces/crud/imagestreams"),
            json!({"metadata": {"name": name}, "spec": {"lookupPolicy": {"local": true}}}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["metadata"]["generation"], 1);
        assert_eq!(body["spec"]["lookupPolicy"]["local"], true);
    }
    // Pages of two, in name order, with continue tokens.
    let mut names = Vec::new();
    let mut path = format!("{API}/namespaces/crud/imagestreams?limit=2");
    loop {
        let (_, list) = get(&server, &path).await;
        assert_eq!(list["kind"], "ImageStreamList");
        names.extend(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        match list["metadata"]["continue"].as_str() {
            Some(token) if !token.is_empty() => {
                path = format!("{API}/namespaces/crud/imagestreams?limit=2&continue={token}")
            }
            _ => break,
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);

    // An update with the current resourceVersion; a spec change raises the generation.
    push_image(&server, "crud/a", "base", "base").await;
    let (_, current) = get(&server, &format!("{API}/namespaces/crud/imagestreams/a")).await;
    let mut update = current.clone();
    update["spec"]["tags"] =
        json!([{"name": "stable", "from": {"kind": "ImageStreamTag", "name": "a:base"}}]);
    update["metadata"]["labels"] = json!({"tier": "gold"});
    let (status, updated) = send(
        &server,
        "PUT",
        &format!("{API}/namespaces/crud/imagestreams/a"),
        update.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["metadata"]["generation"], 2);
    assert_eq!(updated["spec"]["tags"][0]["generation"], 2);
    assert_eq!(updated["metadata"]["labels"]["tier"], "gold");
    let stable = updated["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == "stable")
        .unwrap();
    assert_eq!(stable["items"][0]["generation"], 2);
    // The same update again, now stale: a conflict, and nothing changes.
    expect_kube_status(
        server
            .put(&format!("{API}/namespaces/crud/imagestreams/a"))
            .json(&update),
        StatusCode::CONFLICT,
        "Conflict",
    )
    .await;
    let (_, after) = get(&server, &format!("{API}/namespaces/crud/imagestreams/a")).await;
    assert_eq!(after, updated);

    // A tag that tracks another in the same stream follows its pushes.
    let next = push_image(&server, "crud/a", "base", "base2").await;
    let (_, tracked) = get(
        &server,
        &format!("{API}/namespaces/crud/imagestreamtags/a:stable"),
    )
    .await;
    assert_eq!(tracked["image"]["metadata"]["name"], next);

    // Deleting the namespace deletes its streams.
    let (status, _) = send(&server, "DELETE", "/api/v1/namespaces/crud", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_stream_gone(&server, "crud", "a", "base").await;
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_changes_nothing() {
    let server = TestServer::start();
    push_image(&server, "bad/app", "v1", "v1").await;
    let (_, before) = get(&server, &format!("{API}/namespaces/bad/imagestreams/app")).await;

    let cases: Vec<(&str, String, Value, u16, &str)> = vec![
        (
            "GET",
            format!("{API}/namespaces/nowhere/imagestreams"),
            Value::Null,
            404,
            "NotFound",
        ),
        (
            "GET",
            format!("{API}/namespaces/bad/imagestreams/missing"),
            Value::Null,
            404,
            "NotFound",
        ),
        (
            "GET",
            format!("{API}/namespaces/Bad_NS/imagestreams/app"),
            Value::Null,
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{API}/namespaces/bad/imagestreams/App"),
            Value::Null,
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{API}/namespaces/bad/imagestreamtags/app"),
            Value::Null,
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{API}/namespaces/bad/imagestreamtags/app:nope"),
            Value::Null,
            404,
            "NotFound",
        ),
        (
            "GET",
            format!("{API}/namespaces/bad/imagestreamimages/app@sha256:00"),
            Value::Null,
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{API}/images/sha256:{}", "0".repeat(64)),
            Value::Null,
            404,
            "NotFound",
        ),
        (
            "GET",
            format!("{API}/namespaces/bad/imagestreams?continue=zz"),
            Value::Null,
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{API}/namespaces/bad/widgets"),
            Value::Null,
            404,
            "NotFound",
        ),
        // A patch in a media type that is no patch's, as Kubernetes answers it.
        (
            "PATCH",
            format!("{API}/namespaces/bad/imagestreams/app"),
            json!({}),
            415,
            "UnsupportedMediaType",
        ),
        (
            "PATCH",
            format!("{API}/images/sha256:{}", "0".repeat(64)),
            json!({}),
            405,
            "MethodNotAllowed",
        ),
        (
            "POST",
            "/api/v1/namespaces".into(),
            json!({"metadata": {"name": "Not_Valid"}}),
            422,
            "Invalid",
        ),
        (
            "POST",
            format!("{API}/namespaces/bad/imagestreams"),
            json!({"metadata": {"name": "app"}}),
            409,
            "AlreadyExists",
        ),
        (
            "POST",
            format!("{API}/namespaces/bad/imagestreams"),
            json!({"metadata": {"name": "UPPER"}}),
            422,
            "Invalid",
        ),
        (
            "POST",
            format!("{API}/namespaces/bad/imagestreams"),
            json!("not an object"),
            400,
            "BadRequest",
        ),
        // Stale resourceVersion.
        (
            "PUT",
            format!("{API}/namespaces/bad/imagestreams/app"),
            json!({"metadata": {"name": "app", "resourceVersion": "1"}, "spec": {}}),
            409,
            "Conflict",
        ),
        (
            "PUT",
            format!("{API}/namespaces/bad/imagestreams/app"),
            json!({"metadata": {"name": "other"}, "spec": {}}),
            400,
            "BadRequest",
        ),
        // Invalid references.
        (
            "PUT",
            format!("{API}/namespaces/bad/imagestreamtags/app:x"),
            json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:missing"}}}),
            422,
            "Invalid",
        ),
        (
            "PUT",
            format!("{API}/namespaces/bad/imagestreamtags/app:x"),
            json!({"tag": {"from": {"kind": "ImageStreamImage", "name": format!("app@sha256:{}", "1".repeat(64))}}}),
            422,
            "Invalid",
        ),
        (
            "PUT",
            format!("{API}/namespaces/bad/imagestreamtags/app:x"),
            json!({"tag": {"from": {"kind": "Pod", "name": "x"}}}),
            422,
            "Invalid",
        ),
        (
            "PUT",
            format!("{API}/namespaces/bad/imagestreamtags/app:x"),
            json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:v1"}, "importPolicy": {"importMode": "Sometimes"}}}),
            422,
            "Invalid",
        ),
        (
            "PUT",
            format!("{API}/namespaces/bad/imagestreamtags/app:x"),
            json!({}),
            422,
            "Invalid",
        ),
        (
            "PUT",
            format!("{API}/namespaces/bad/imagestreamtags/app:-x"),
            json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:v1"}}}),
            400,
            "BadRequest",
        ),
        (
            "POST",
            format!("{API}/namespaces/bad/imagestreammappings"),
            json!({"metadata": {"name": "app"}, "tag": "t", "image": {"metadata": {"name": format!("sha256:{}", "2".repeat(64))}}}),
            422,
            "Invalid",
        ),
        (
            "DELETE",
            format!("{API}/namespaces/bad/imagestreamtags/app:nope"),
            Value::Null,
            404,
            "NotFound",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/nowhere".into(),
            Value::Null,
            404,
            "NotFound",
        ),
    ];
    for (method, path, body, code, reason) in cases {
        let mut request = server
            .client()
            .request(method.parse().unwrap(), server.url(&path));
        if !body.is_null() {
            request = request.json(&body);
        }
        expect_kube_status(request, StatusCode::from_u16(code).unwrap(), reason).await;
    }
    let (_, after) = get(&server, &format!("{API}/namespaces/bad/imagestreams/app")).await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn mappings_and_import_modes() {
    let server = TestServer::start();
    let manifest = image_manifest(&server, "map/app", "mapped").await;
    let digest = sha256(&manifest);
    put_manifest(&server, "map/app", &digest, OCI_MANIFEST, &manifest).await;
    let (status, body) = send(
        &server,
        "POST",
        &format!("{API}/namespaces/map/imagestreammappings"),
        json!({"metadata": {"name": "app"}, "tag": "mapped", "image": {"metadata": {"name": digest}}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, tag) = get(
        &server,
        &format!("{API}/namespaces/map/imagestreamtags/app:mapped"),
    )
    .await;
    assert_eq!(tag["image"]["metadata"]["name"], digest);
    assert!(tag["tag"].is_null());

    // A two-platform index in the stream.
    let mut children = Vec::new();
    for arch in ["arm64", "amd64"] {
        let mut child: Value =
            serde_json::from_slice(&image_manifest(&server, "map/app", arch).await).unwrap();
        child["annotations"] = json!({"arch": arch});
        let body = serde_json::to_vec(&child).unwrap();
        let child_digest = sha256(&body);
        put_manifest(&server, "map/app", &child_digest, OCI_MANIFEST, &body).await;
        children.push(
            json!({"mediaType": OCI_MANIFEST, "digest": child_digest, "size": body.len(),
            "platform": {"os": "linux", "architecture": arch}}),
        );
    }
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": common::OCI_INDEX, "manifests": children}),
    )
    .unwrap();
    let response = put_manifest(&server, "map/app", "multi", common::OCI_INDEX, &index).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, multi) = get(
        &server,
        &format!("{API}/namespaces/map/imagestreamtags/app:multi"),
    )
    .await;
    let platforms: Vec<&str> = multi["image"]["dockerImageManifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["arm64", "amd64"]);

    // A DockerImage reference to this registry: Legacy keeps one platform, PreserveOriginal all.
    let reference = format!("{}/map/app:multi", server.addr);
    let (_, legacy) = send(
        &server,
        "PUT",
        &format!("{API}/namespaces/map/imagestreamtags/app:legacy"),
        json!({"tag": {"from": {"kind": "DockerImage", "name": reference}}}),
    )
    .await;
    assert_eq!(
        legacy["image"]["metadata"]["name"], children[1]["digest"],
        "{legacy}"
    );
    let (_, preserved) = send(
        &server,
        "PUT",
        &format!("{API}/namespaces/map/imagestreamtags/app:all"),
        json!({"tag": {"from": {"kind": "DockerImage", "name": reference}, "importPolicy": {"importMode": "PreserveOriginal"}}}),
    )
    .await;
    assert_eq!(
        preserved["image"]["metadata"]["name"],
        sha256(&index),
        "{preserved}"
    );
    // Another registry's image is kept by reference.
    let (status, external) = send(
        &server,
        "PUT",
        &format!("{API}/namespaces/map/imagestreamtags/app:upstream"),
        json!({"tag": {"reference": true, "from": {"kind": "DockerImage", "name": "quay.io/example/app:1.0"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{external}");
    let (_, stream) = get(&server, &format!("{API}/namespaces/map/imagestreams/app")).await;
    let upstream = stream["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == "upstream")
        .unwrap();
    assert_eq!(
        upstream["items"][0]["dockerImageReference"],
        "quay.io/example/app:1.0"
    );
}

/// Reads a watch stream line by line.
struct Watch {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
}

impl Watch {
    async fn open(server: &TestServer, path: &str) -> Watch {
        let response = expect_status(server.get(path), StatusCode::OK).await;
        Watch {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
        }
    }

    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line).unwrap();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("a watch event within 10 s")
                .expect("the watch stream to go on")
                .unwrap();
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// Waits a moment and says whether an event arrived.
    async fn quiet(&mut self) -> bool {
        self.buffer.is_empty()
            && tokio::time::timeout(Duration::from_millis(500), self.body.next())
                .await
                .is_err()
    }
}

#[tokio::test]
async fn a_watch_sees_each_change_once_in_order_across_a_reconnect() {
    let server = TestServer::start();
    push_image(&server, "w/app", "v1", "start").await;
    let (_, list) = get(&server, &format!("{API}/namespaces/w/imagestreams")).await;
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    let path =
        |rv: &str| format!("{API}/namespaces/w/imagestreams?watch=true&resourceVersion={rv}");
    let mut watch = Watch::open(&server, &path(&version)).await;
    let second = push_image(&server, "w/app", "v1", "second").await;
    push_image(&server, "w/other", "v1", "other").await;
    let first = watch.next().await;
    assert_eq!(first["type"], "MODIFIED");
    assert_eq!(first["object"]["metadata"]["name"], "app");
    assert_eq!(history(&first["object"], "v1")[0], second);
    let added = watch.next().await;
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["metadata"]["name"], "other");
    let resume = added["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(watch);

    // Changes while disconnected, then a reconnect from the last version seen.
    let (status, body) = send(
        &server,
        "DELETE",
        &format!("{API}/namespaces/w/imagestreamtags/app:v1"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(
        &server,
        "DELETE",
        &format!("{API}/namespaces/w/imagestreams/other"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut watch = Watch::open(&server, &path(&resume)).await;
    let untag = watch.next().await;
    assert_eq!(untag["type"], "MODIFIED");
    assert_eq!(untag["object"]["metadata"]["name"], "app");
    let deleted = watch.next().await;
    assert_eq!(deleted["type"], "DELETED");
    assert_eq!(deleted["object"]["metadata"]["name"], "other");
    let versions: Vec<i64> = [&untag, &deleted]
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(resume.parse::<i64>().unwrap() < versions[0] && versions[0] < versions[1]);
    assert!(watch.quiet().await, "an event was repeated or invented");

    // Without a resourceVersion a watch starts with the current objects.
    let mut fresh = Watch::open(&server, &format!("{API}/namespaces/w/imagestreams?watch=1")).await;
    let current = fresh.next().await;
    assert_eq!(current["type"], "ADDED");
    assert_eq!(current["object"]["metadata"]["name"], "app");
    assert!(fresh.quiet().await);
}

#[tokio::test]
async fn the_console_event_stream_reports_pushes() {
    let server = TestServer::start();
    let response = server.get("/console/api/events").send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let digest = push_image(&server, "live/app", "v1", "live").await;
    let mut text = String::new();
    while !text.contains("\"reason\":\"push\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: change"), "{text}");
    assert!(text.contains(&digest), "{text}");
    assert!(text.contains("\"tag\":\"v1\""), "{text}");
}

#[tokio::test]
async fn nothing_of_a_deleted_stream_reappears_and_generations_follow_the_spec() {
    let server = TestServer::start();
    push_image(&server, "gen/app", "base", "one").await;
    // A tag kept only by reference, then the stream deleted.
    send(
        &server,
        "PUT",
        &format!("{API}/namespaces/gen/imagestreamtags/app:upstream"),
        json!({"tag": {"reference": true, "from": {"kind": "DockerImage", "name": "quay.io/x/y:1"}}}),
    )
    .await;
    send(
        &server,
        "DELETE",
        &format!("{API}/namespaces/gen/imagestreams/app"),
        Value::Null,
    )
    .await;
    push_image(&server, "gen/other", "latest", "other").await;
    let (_, other) = get(&server, &format!("{API}/namespaces/gen/imagestreams/other")).await;
    let tags: Vec<&str> = other["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["latest"]);

    // Spec tag generations, tracking through the API, and a status-only untag.
    push_image(&server, "gen/app", "base", "one-again").await;
    let (_, created) = send(
        &server,
        "PUT",
        &format!("{API}/namespaces/gen/imagestreamtags/app:stable"),
        json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:base"}}}),
    )
    .await;
    let generation = created["tag"]["generation"].as_i64().unwrap();
    assert_eq!(created["generation"], generation);
    // The same target again with another policy: a newer spec generation, no new item, and the
    // item takes the new generation (else the tag would look forever pending).
    let (_, again) = send(
        &server,
        "PUT",
        &format!("{API}/namespaces/gen/imagestreamtags/app:stable"),
        json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:base"}, "referencePolicy": {"type": "Local"}}}),
    )
    .await;
    assert_eq!(again["tag"]["generation"], generation + 1);
    assert_eq!(again["generation"], generation + 1);
    let (_, stream) = get(&server, &format!("{API}/namespaces/gen/imagestreams/app")).await;
    assert_eq!(history(&stream, "stable").len(), 1);
    // oc tag onto the tracked tag moves the tracking one along.
    let newer = push_image(&server, "gen/app", "v2", "two").await;
    send(
        &server,
        "PUT",
        &format!("{API}/namespaces/gen/imagestreamtags/app:base"),
        json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:v2"}}}),
    )
    .await;
    let (_, stable) = get(
        &server,
        &format!("{API}/namespaces/gen/imagestreamtags/app:stable"),
    )
    .await;
    assert_eq!(stable["image"]["metadata"]["name"], newer);
    // Untagging a pushed tag (no spec) is not a spec change.
    let (_, before) = get(&server, &format!("{API}/namespaces/gen/imagestreams/app")).await;
    send(
        &server,
        "DELETE",
        &format!("{API}/namespaces/gen/imagestreamtags/app:v2"),
        Value::Null,
    )
    .await;
    let (_, after) = get(&server, &format!("{API}/namespaces/gen/imagestreams/app")).await;
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn the_list_of_every_namespace_pages_across_namespaces() {
    let server = TestServer::start();
    for name in ["b/two", "a/one", "b/one", "c/one", "a/two"] {
        push_image(&server, name, "latest", name).await;
    }
    let mut seen = Vec::new();
    let mut path = format!("{API}/imagestreams?limit=2");
    loop {
        let (status, list) = get(&server, &path).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        seen.extend(list["items"].as_array().unwrap().iter().map(|i| {
            format!(
                "{}/{}",
                i["metadata"]["namespace"].as_str().unwrap(),
                i["metadata"]["name"].as_str().unwrap()
            )
        }));
        match list["metadata"]["continue"].as_str() {
            Some(token) if !token.is_empty() => {
                path = format!("{API}/imagestreams?limit=2&continue={token}")
            }
            _ => break,
        }
    }
    assert_eq!(seen, ["a/one", "a/two", "b/one", "b/two", "c/one"]);
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_is_gone_and_the_current_one_still_works() {
    let server = TestServer::start_with_config(
        "[gc]\nevent_retention_seconds = 1\n",
        common::ALLOW_LOOPBACK,
    );
    push_image(&server, "w/app", "v1", "first").await;
    // A subscription makes the webhook dispatcher read (and so release) every event; its
    // receiver is a closed port, which does not matter here.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let (status, body) = send(
        &server,
        "POST",
        "/apis/berth.io/v1/namespaces/w/webhooks",
        json!({"metadata": {"name": "ci"}, "spec": {"url": url, "secret": "s"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, list) = get(&server, &format!("{API}/namespaces/w/imagestreams")).await;
    let old = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    push_image(&server, "w/app", "v1", "second").await;
    push_image(&server, "w/app", "v1", "third").await;

    let path =
        |rv: &str| format!("{API}/namespaces/w/imagestreams?watch=true&resourceVersion={rv}");
    let gone = common::wait_until("the old version compacted", async || {
        let mut watch = Watch::open(&server, &path(&old)).await;
        let first = watch.next().await;
        if first["type"] == "ERROR" {
            Ok(first)
        } else {
            Err(first.to_string())
        }
    })
    .await;
    assert_eq!(gone["object"]["kind"], "Status");
    assert_eq!(gone["object"]["code"], 410, "{gone}");
    assert_eq!(gone["object"]["reason"], "Expired", "{gone}");

    // Listing again gives a version that a watch resumes from, and it never goes back.
    let (_, list) = get(&server, &format!("{API}/namespaces/w/imagestreams")).await;
    let current = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(current.parse::<i64>().unwrap() > old.parse::<i64>().unwrap());
    let mut watch = Watch::open(&server, &path(&current)).await;
    let fourth = push_image(&server, "w/app", "v1", "fourth").await;
    let event = watch.next().await;
    assert_eq!(event["type"], "MODIFIED", "{event}");
    assert_eq!(history(&event["object"], "v1")[0], fourth);
}
