//! OCI Distribution 1.1 edge cases, and the error format of every refusal on `/v2/` and
//! `/auth/token`, against the running server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    OCI_INDEX, OCI_MANIFEST, TestServer, anonymous, client_with_token, error_code, expect_status,
    header, image_manifest, push_blob, put_manifest, sha256,
};
use reqwest::{Method, StatusCode};

/// The error codes of the OCI Distribution spec, as it spells them.
const SPEC_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

async fn push_image(server: &TestServer, repository: &str, tag: &str) -> (Vec<u8>, String) {
    let manifest = image_manifest(server, repository, &format!("{repository}:{tag}")).await;
    let response = put_manifest(server, repository, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let digest = sha256(&manifest);
    (manifest, digest)
}

#[tokio::test]
async fn referrers_never_answer_404_but_still_check_access() {
    let server = TestServer::start();
    let (_, subject) = push_image(&server, "team/app", "v1").await;
    let eve = server.user("eve");
    let unknown = sha256(b"no such subject");

    // Unknown subject, unknown repository in a known namespace, unknown namespace: an empty
    // index each time, with the index's media type.
    for path in [
        format!("/v2/team/app/referrers/{unknown}"),
        format!("/v2/team/nothing-here/referrers/{subject}"),
        format!("/v2/nobody/nothing/referrers/{subject}"),
    ] {
        let response = server.get(&path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "content-type"), OCI_INDEX, "{path}");
        let index: serde_json::Value = response.json().await.unwrap();
        assert_eq!(index["schemaVersion"], 2, "{path}");
        assert_eq!(index["mediaType"], OCI_INDEX, "{path}");
        assert_eq!(index["manifests"], serde_json::json!([]), "{path}");
    }

    // Access is checked first, as for any pull: anonymous callers are challenged, a user
    // without rights is refused, whether or not the repository exists.
    for path in [
        format!("/v2/team/app/referrers/{subject}"),
        format!("/v2/team/nothing-here/referrers/{subject}"),
    ] {
        let response = anonymous().get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(error_code(response).await, "UNAUTHORIZED");
        let response = eve.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(error_code(response).await, "DENIED");
    }
}

/// The JSON the administrator gets at `path`.
async fn admin_json(server: &TestServer, path: &str) -> serde_json::Value {
    let response = server.get(path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_referrer_without_artifact_type_is_listed_under_its_config_media_type() {
    let server = TestServer::start();
    let (subject, subject_digest) = push_image(&server, "ns/r", "v1").await;
    let config_type = "application/vnd.example.sbom.config.v1+json";
    let config = push_blob(&server, "ns/r", b"{\"sbom\":true}").await;
    let layer = push_blob(&server, "ns/r", b"sbom contents").await;
    let referrer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": config, "size": 13},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": 13}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject.len()},
    }))
    .unwrap();
    let referrer_digest = sha256(&referrer);
    let response = put_manifest(&server, "ns/r", &referrer_digest, OCI_MANIFEST, &referrer).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // A plain image (an image config) that names the subject too.
    let (image, image_digest) = {
        let mut image: serde_json::Value =
            serde_json::from_slice(&image_manifest(&server, "ns/r", "signed image").await).unwrap();
        image["subject"] = serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject.len(),
        });
        let image = serde_json::to_vec(&image).unwrap();
        let digest = sha256(&image);
        (image, digest)
    };
    let response = put_manifest(&server, "ns/r", &image_digest, OCI_MANIFEST, &image).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let index = admin_json(&server, &format!("/v2/ns/r/referrers/{subject_digest}")).await;
    let listed: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_owned(),
                m["artifactType"].as_str().unwrap_or("(none)").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (referrer_digest.clone(), config_type.to_owned()),
            (
                image_digest,
                "application/vnd.oci.image.config.v1+json".to_owned()
            ),
        ]
    );

    // The filter goes by the same artifactType.
    let filtered = admin_json(
        &server,
        &format!(
            "/v2/ns/r/referrers/{subject_digest}?artifactType={}",
            config_type.replace('+', "%2B")
        ),
    )
    .await;
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["manifests"][0]["digest"], referrer_digest);
}

#[tokio::test]
async fn reading_a_manifest_by_an_invalid_reference_finds_nothing() {
    let server = TestServer::start();
    let (manifest, _) = push_image(&server, "team/app", "v1").await;
    let long_tag = "t".repeat(129);
    for reference in [
        "-bad",
        ".hidden",
        long_tag.as_str(),
        "sha256:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "a:b",
        "%20",
    ] {
        let path = format!("/v2/team/app/manifests/{reference}");
        let response = server.get(&path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {reference}");
        assert_eq!(
            error_code(response).await,
            "MANIFEST_UNKNOWN",
            "{reference}"
        );
        let response = server.head(&path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "HEAD {reference}");
        let response = server.delete(&path).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "DELETE {reference}"
        );
        assert_eq!(
            error_code(response).await,
            "MANIFEST_UNKNOWN",
            "{reference}"
        );
        // Access is checked first: anonymous callers are challenged.
        let response = anonymous().get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{reference}");
    }
    // A push by an invalid tag or digest stays a 400.
    let response = put_manifest(&server, "team/app", "-bad", OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "MANIFEST_INVALID");
    let response = put_manifest(&server, "team/app", "sha256:abc", OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn throttled_registry_requests_answer_the_spec_code() {
    // A low rate, so that slow password checks (a debug build on a loaded machine) cannot let the
    // allowance refill between the attempts.
    let server = TestServer::start_with_config("[auth]\nlogin_attempts_per_minute = 3\n", &[]);
    server.add_user("tom", "tom-password", &[]);
    let mut last = None;
    for _ in 0..12 {
        let response = anonymous()
            .get(server.url("/v2/"))
            .basic_auth("tom", Some("guess"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            last = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = last.expect("wrong passwords are throttled");
    assert!(!header(&throttled, "retry-after").is_empty());
    assert_eq!(error_code(throttled).await, "TOOMANYREQUESTS");
}

/// The JSON body of an error response, `None` for a success; fails on a server error or on an
/// error whose body is not JSON.
async fn json_error_body(what: &str, response: reqwest::Response) -> Option<serde_json::Value> {
    let status = response.status();
    assert!(!status.is_server_error(), "{what}: {status}");
    if status.as_u16() < 400 {
        return None;
    }
    let content_type = header(&response, "content-type");
    let body = response.bytes().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {status} with Content-Type {content_type:?}: {}",
        String::from_utf8_lossy(&body)
    );
    Some(
        serde_json::from_slice(&body)
            .unwrap_or_else(|err| panic!("{what}: {status} body is not JSON ({err})")),
    )
}

/// The first error's code, asserted to be one of the spec's.
fn spec_code(what: &str, body: &serde_json::Value, also: &[&str]) -> String {
    let code = body["errors"][0]["code"].as_str().unwrap_or_default();
    assert!(
        SPEC_CODES.contains(&code) || also.contains(&code),
        "{what}: code {code:?}: {body}"
    );
    assert!(
        body["errors"][0]["message"].is_string(),
        "{what}: no message: {body}"
    );
    code.to_owned()
}

/// Asserts that an error `response` is the spec's JSON with a spec code; returns the code.
async fn assert_oci_error(what: &str, response: reqwest::Response) -> Option<String> {
    let body = json_error_body(what, response).await?;
    Some(spec_code(what, &body, &[]))
}

/// Asserts that an error `response` is the token endpoint's JSON error: Docker's `errors` and
/// OAuth's `error` with `error_description`.
async fn assert_token_error(what: &str, response: reqwest::Response) {
    if let Some(body) = json_error_body(what, response).await {
        spec_code(what, &body, &["UNKNOWN"]);
        assert!(
            body["error"].is_string() && body["error_description"].is_string(),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn every_refusal_on_v2_and_the_token_endpoint_is_a_json_error() {
    let server = TestServer::start_with(&["--max-manifest-bytes", "4096"]);
    push_image(&server, "team/app", "v1").await;
    let upload = expect_status(
        server.post("/v2/team/app/blobs/uploads/"),
        StatusCode::ACCEPTED,
    )
    .await;
    let session = header(&upload, "location");
    let digest = sha256(b"x");
    let long_path = format!("/v2/{}manifests/v1", "a/".repeat(3000));
    let paths: Vec<String> = vec![
        "/v2".into(),
        "/v2/".into(),
        "/v2//".into(),
        "/v2/_catalog".into(),
        "/v2/_catalog?n=abc".into(),
        "/v2/_catalog?n=-1&last=%ff".into(),
        "/v2/a".into(),
        "/v2/a/b".into(),
        "/v2/UPPER/x/manifests/v1".into(),
        "/v2/a..b/x%2Fy/manifests/v1".into(),
        "/v2/team/app/manifests/".into(),
        "/v2/team/app/manifests/v1".into(),
        "/v2/team/app/manifests/-bad".into(),
        "/v2/team/app/manifests/sha256:zz".into(),
        "/v2/team/app/blobs/".into(),
        format!("/v2/team/app/blobs/{digest}"),
        "/v2/team/app/blobs/sha256:zz".into(),
        "/v2/team/app/blobs/uploads".into(),
        "/v2/team/app/blobs/uploads/?digest=%zz".into(),
        "/v2/team/app/blobs/uploads/?mount=x&from=..".into(),
        "/v2/team/app/blobs/uploads/not-a-uuid".into(),
        format!("/v2/team/app/blobs/uploads/{}", uuid_like()),
        session.clone(),
        format!("{session}?digest=sha256:zz"),
        "/v2/team/app/tags/list?n=zz".into(),
        "/v2/team/app/referrers/x".into(),
        format!("/v2/team/app/referrers/{digest}?artifactType=%ff%fe"),
        "/v2/team/app/x/y/z".into(),
        "/v2/nobody/none/tags/list".into(),
        long_path,
    ];
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::from_bytes(b"PROPFIND").unwrap(),
        Method::from_bytes(b"BREW").unwrap(),
    ];
    let callers = [
        ("anonymous", anonymous()),
        ("admin", server.client()),
        ("bad bearer", client_with_token("not-a-token")),
        ("bad berth token", client_with_token("berth_nope")),
    ];
    let mut codes = std::collections::BTreeSet::new();
    let mut requests = 0;
    for (who, client) in &callers {
        for method in &methods {
            for path in &paths {
                let what = format!("{who} {method} {}", &path[..path.len().min(80)]);
                let mut request = client.request(method.clone(), server.url(path));
                if [Method::PUT, Method::PATCH, Method::POST].contains(method) {
                    request = request
                        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                        .header("content-range", "zz-yy")
                        .header("range", "bytes=99-1")
                        .body("{not json");
                }
                let response = request.send().await.unwrap();
                if *method == Method::HEAD {
                    assert!(!response.status().is_server_error(), "{what}");
                } else if let Some(code) = assert_oci_error(&what, response).await {
                    codes.insert(code);
                }
                requests += 1;
            }
        }
    }
    // Malformed credentials, a garbage Range, bad chunks and bodies past the limits (on a
    // session of their own: the walk cancelled the first). The oversized bodies are small
    // enough to sit in the socket's buffer when the server answers before reading them.
    let upload = server
        .post("/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let session = header(&upload, "location");
    for (what, request) in [
        (
            "malformed Authorization",
            anonymous()
                .get(server.url("/v2/"))
                .header("authorization", "Digest x"),
        ),
        (
            "Basic that is not base64",
            anonymous()
                .get(server.url("/v2/"))
                .header("authorization", "Basic !!!"),
        ),
        (
            "unsatisfiable Range",
            server
                .get("/v2/team/app/manifests/v1")
                .header("range", "bytes=zz"),
        ),
        (
            "oversized manifest",
            server
                .put("/v2/team/app/manifests/big")
                .header("content-type", OCI_MANIFEST)
                .body(vec![b' '; 10_000]),
        ),
        (
            "oversized manifest without a length",
            server
                .put("/v2/team/app/manifests/big")
                .header("content-type", OCI_MANIFEST)
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    (0..6).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000])),
                ))),
        ),
        (
            "chunk out of order",
            server
                .patch(&session)
                .header("content-range", "5-9")
                .body("12345"),
        ),
        (
            "chunk whose length disagrees",
            server
                .patch(&session)
                .header("content-range", "0-99")
                .body("12345"),
        ),
    ] {
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(status.as_u16() >= 400, "{what}: {status}");
        codes.insert(assert_oci_error(what, response).await.unwrap());
        requests += 1;
    }

    // The token endpoint: every method, paths below it, bad queries, an oversized form.
    let token_paths = [
        "/auth/token",
        "/auth/token?service=berth&scope=repository:team/app:pull",
        "/auth/token?scope=%zz",
        "/auth/token/",
        "/auth/token/x/y",
    ];
    for (who, client) in &callers {
        for method in &methods {
            for path in token_paths {
                let what = format!("{who} {method} {path}");
                let response = client
                    .request(method.clone(), server.url(path))
                    .body("grant_type=nonsense")
                    .send()
                    .await
                    .unwrap();
                if *method == Method::HEAD {
                    assert!(!response.status().is_server_error(), "{what}");
                } else {
                    assert_token_error(&what, response).await;
                }
                requests += 1;
            }
        }
    }
    let response = expect_status(
        anonymous()
            .post(server.url("/auth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 200_000]),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_token_error("oversized form", response).await;
    let response = expect_status(
        anonymous().put(server.url("/auth/token")),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    assert!(!header(&response, "allow").is_empty());
    expect_status(
        anonymous().post(server.url("/v2")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let response = expect_status(server.post("/v2"), StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(header(&response, "allow"), "GET, HEAD");
    assert_eq!(error_code(response).await, "UNSUPPORTED");

    // The walk met a variety of refusals, not one repeated.
    for expected in [
        "UNAUTHORIZED",
        "UNSUPPORTED",
        "NAME_INVALID",
        "DIGEST_INVALID",
        "MANIFEST_UNKNOWN",
        "MANIFEST_INVALID",
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "SIZE_INVALID",
    ] {
        assert!(codes.contains(expected), "no {expected} among {codes:?}");
    }
    assert!(requests > 1000, "{requests} requests");
}

/// A well-formed upload id that names no session.
fn uuid_like() -> String {
    "0b9f7a9e-3c1d-4e2a-9f00-000000000000".into()
}
