//! Signatures, SBOMs and attestations, made here and pushed as cosign, notation, oras and
//! buildx lay them out: the console's answers for an image (verified, not verified and why,
//! the package list, the attestations), the stream's "signed" tags, the trusted keys API with
//! its refusals, hostile artifacts, and the same pull check as the image for a second user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::{
    OCI_MANIFEST, TestServer, client_with_token, expect_status, grant_user, json_of, push_blob,
    push_image, put_manifest, sha256,
};
use ed25519_dalek::Signer as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// SubjectPublicKeyInfo DER before the key's bytes, so that tests write keys without an encoder.
const ED25519_SPKI: &str = "302a300506032b6570032100";
const X25519_SPKI: &str = "302a300506032b656e032100";
const P256_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

fn pem(der: &[u8]) -> String {
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        B64.encode(der)
    )
}

fn ed25519_pem(key: &ed25519_dalek::SigningKey) -> String {
    pem(&[
        hex::decode(ED25519_SPKI).unwrap(),
        key.verifying_key().to_bytes().to_vec(),
    ]
    .concat())
}

fn p256_pem(key: &p256::ecdsa::SigningKey) -> String {
    let point = key.verifying_key().to_sec1_point(false);
    pem(&[hex::decode(P256_SPKI).unwrap(), point.as_bytes().to_vec()].concat())
}

/// cosign's simple-signing payload for `digest`.
fn payload(digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": "127.0.0.1/team/app"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .unwrap()
}

/// A layer of an artifact: media type, bytes, annotations.
struct Layer {
    media_type: &'static str,
    bytes: Vec<u8>,
    annotations: Value,
}

fn signed_layer(payload: Vec<u8>, signature: &[u8]) -> Layer {
    Layer {
        media_type: SIMPLE_SIGNING,
        bytes: payload,
        annotations: json!({"dev.cosignproject.cosign/signature": B64.encode(signature)}),
    }
}

fn p256_layer(key: &p256::ecdsa::SigningKey, payload: Vec<u8>) -> Layer {
    let signature: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(key, &payload);
    let der = signature.to_der();
    signed_layer(payload, der.as_bytes())
}

fn ed25519_layer(key: &ed25519_dalek::SigningKey, payload: Vec<u8>) -> Layer {
    let signature = key.sign(&payload).to_bytes();
    signed_layer(payload, &signature)
}

fn plain_layer(media_type: &'static str, bytes: Vec<u8>) -> Layer {
    Layer {
        media_type,
        bytes,
        annotations: json!({}),
    }
}

/// Pushes an artifact manifest (OCI 1.1: the empty config, `artifactType`, `subject`) with its
/// layers as `team/app:reference` (by its digest when `reference` is empty); answers its
/// digest.
async fn push_artifact(
    server: &TestServer,
    reference: &str,
    artifact_type: Option<&str>,
    subject: Option<&str>,
    layers: Vec<Layer>,
) -> String {
    let repository = "team/app";
    push_blob(server, repository, b"{}").await;
    let mut descriptors = Vec::new();
    for layer in &layers {
        push_blob(server, repository, &layer.bytes).await;
        descriptors.push(json!({
            "mediaType": layer.media_type,
            "digest": sha256(&layer.bytes),
            "size": layer.bytes.len(),
            "annotations": layer.annotations,
        }));
    }
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": EMPTY_CONFIG, "digest": sha256(b"{}"), "size": 2},
        "layers": descriptors,
    });
    if let Some(artifact_type) = artifact_type {
        manifest["artifactType"] = json!(artifact_type);
    }
    if let Some(subject) = subject {
        let size = server
            .get(&format!("/v2/{repository}/manifests/{subject}"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len();
        manifest["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": subject, "size": size});
    }
    let body = serde_json::to_vec(&manifest).unwrap();
    // Referrers are pushed by digest, as oras and cosign push them.
    let digest = sha256(&body);
    let reference = if reference.is_empty() {
        &digest
    } else {
        reference
    };
    let response = put_manifest(server, repository, reference, OCI_MANIFEST, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{reference}");
    sha256(&body)
}

fn tag_for(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replace(':', "-"))
}

async fn supply_chain(client: &reqwest::Client, server: &TestServer, digest: &str) -> Value {
    let response = client
        .get(server.url(&format!(
            "/console/api/supply_chain?namespace=team&stream=app&digest={digest}"
        )))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The verdicts of an image's signatures, as `scheme: verdict` texts, sorted.
fn verdicts(chain: &Value) -> Vec<String> {
    let mut said: Vec<String> = chain["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let verdict = match &s["verification"] {
                v if v["Verified"].is_object() => {
                    format!("verified by {}", v["Verified"]["key"].as_str().unwrap())
                }
                v => format!(
                    "not verified: {}",
                    v["NotVerified"]["reason"].as_str().unwrap()
                ),
            };
            format!("{}: {verdict}", s["scheme"].as_str().unwrap())
        })
        .collect();
    said.sort();
    said
}

async fn add_key(server: &TestServer, name: &str, public_key: &str) -> reqwest::Response {
    server
        .post("/apis/berth.io/v1/namespaces/team/trustedkeys")
        .json(&json!({"metadata": {"name": name}, "spec": {"publicKey": public_key}}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signatures_sboms_and_attestations_are_read_and_verified_as_pulls_allow() {
    let server = TestServer::start();
    let v1 = push_image(&server, "team/app", "v1", "one").await;
    let v2 = push_image(&server, "team/app", "v2", "two").await;
    let v3 = push_image(&server, "team/app", "v3", "three").await;
    let v4 = push_image(&server, "team/app", "v4", "four").await;
    let release = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let ci = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);

    // Trusted keys: checked at creation, with the reason.
    let made = add_key(&server, "release", &p256_pem(&release)).await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    assert_eq!(made["kind"], "TrustedKey");
    assert_eq!(made["status"]["algorithm"], "ECDSA P-256");
    assert_eq!(made["status"]["fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(
        add_key(&server, "ci", &ed25519_pem(&ci)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        add_key(&server, "ci", &ed25519_pem(&ci)).await.status(),
        StatusCode::CONFLICT
    );
    let x25519 = pem(&[hex::decode(X25519_SPKI).unwrap(), vec![5; 32]].concat());
    for (bad, why) in [
        ("not a key", "not a PEM public key"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "not a \"PUBLIC KEY\"",
        ),
        (&pem(b"junk") as &str, "not a public key's DER"),
        (&x25519, "only ECDSA P-256 and Ed25519"),
    ] {
        let refused = add_key(&server, "bad", bad).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let status: Value = refused.json().await.unwrap();
        assert_eq!(status["details"]["causes"][0]["field"], "spec.publicKey");
        assert!(
            status["details"]["causes"][0]["message"]
                .as_str()
                .unwrap()
                .contains(why),
            "{status}"
        );
    }
    let listed = json_of(server.get("/apis/berth.io/v1/namespaces/team/trustedkeys")).await;
    assert_eq!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["metadata"]["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["ci", "release"]
    );

    // v1: cosign's tag scheme, one P-256 and one ed25519 signature, both trusted.
    push_artifact(
        &server,
        &tag_for(&v1, "sig"),
        None,
        None,
        vec![
            p256_layer(&release, payload(&v1)),
            ed25519_layer(&ci, payload(&v1)),
        ],
    )
    .await;
    // v2: a key nobody trusts, a payload naming another image, a signature that is not base64.
    push_artifact(
        &server,
        &tag_for(&v2, "sig"),
        None,
        None,
        vec![
            ed25519_layer(&stranger, payload(&v2)),
            ed25519_layer(&ci, payload(&v3)),
            Layer {
                media_type: SIMPLE_SIGNING,
                bytes: payload(&v2),
                annotations: json!({"dev.cosignproject.cosign/signature": "%%% not base64"}),
            },
        ],
    )
    .await;
    // v3: OCI 1.1 referrers: a cosign signature, an SPDX SBOM, a notation JWS signature; and
    // cosign's tags for a CycloneDX SBOM and an in-toto attestation.
    push_artifact(
        &server,
        "",
        Some("application/vnd.dev.cosign.artifact.sig.v1+json"),
        Some(&v3),
        vec![p256_layer(&release, payload(&v3))],
    )
    .await;
    let spdx = json!({
        "spdxVersion": "SPDX-2.3", "name": "app-v3", "SPDXID": "SPDXRef-DOCUMENT",
        "packages": [
            {"name": "openssl", "versionInfo": "3.0.13", "licenseConcluded": "Apache-2.0",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:deb/debian/openssl@3.0.13"}]},
            {"name": "zlib", "versionInfo": "1.3", "licenseDeclared": "Zlib"}
        ]
    });
    push_artifact(
        &server,
        "",
        Some("application/spdx+json"),
        Some(&v3),
        vec![plain_layer(
            "application/spdx+json",
            serde_json::to_vec(&spdx).unwrap(),
        )],
    )
    .await;
    let cyclonedx = json!({
        "bomFormat": "CycloneDX", "specVersion": "1.5",
        "components": [{"type": "library", "name": "serde", "version": "1.0.210", "purl": "pkg:cargo/serde@1.0.210", "licenses": [{"expression": "MIT OR Apache-2.0"}]}]
    });
    push_artifact(
        &server,
        &tag_for(&v3, "sbom"),
        None,
        None,
        vec![plain_layer(
            "application/vnd.cyclonedx+json",
            serde_json::to_vec(&cyclonedx).unwrap(),
        )],
    )
    .await;
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "team/app", "digest": {"sha256": v3.trim_start_matches("sha256:")}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {}}
    });
    let envelope = json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": B64.encode(serde_json::to_vec(&statement).unwrap()),
        "signatures": [{"keyid": "", "sig": B64.encode(ci.sign(b"pae").to_bytes())}]
    });
    push_artifact(
        &server,
        &tag_for(&v3, "att"),
        None,
        None,
        vec![Layer {
            media_type: "application/vnd.dsse.envelope.v1+json",
            bytes: serde_json::to_vec(&envelope).unwrap(),
            annotations: json!({"predicateType": "https://slsa.dev/provenance/v1"}),
        }],
    )
    .await;
    let certificate =
        rcgen::generate_simple_self_signed(vec!["notary.example.com".into()]).unwrap();
    let url64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jws = json!({
        "payload": url64.encode(serde_json::to_vec(&json!({"targetArtifact": {"mediaType": OCI_MANIFEST, "digest": v3, "size": 1}})).unwrap()),
        "protected": url64.encode(br#"{"alg":"ES256","cty":"application/vnd.cncf.notary.payload.v1+json","io.cncf.notary.signingScheme":"notary.x509","io.cncf.notary.signingTime":"2026-12-06T12:00:00Z"}"#),
        "header": {"x5c": [B64.encode(certificate.cert.der())], "io.cncf.notary.signingAgent": "berth-tests"},
        "signature": url64.encode([1u8; 64])
    });
    push_artifact(
        &server,
        "",
        Some("application/vnd.cncf.notary.signature"),
        Some(&v3),
        vec![plain_layer(
            "application/jose+json",
            serde_json::to_vec(&jws).unwrap(),
        )],
    )
    .await;
    // v4: an SBOM past the 16 MiB read limit.
    let mut huge = br#"{"spdxVersion":"SPDX-2.3","packages":[]}"#.to_vec();
    huge.resize(16 * 1024 * 1024 + 1, b' ');
    push_artifact(
        &server,
        &tag_for(&v4, "sbom"),
        None,
        None,
        vec![plain_layer("text/spdx+json", huge)],
    )
    .await;

    let admin = server.client();
    let one = supply_chain(&admin, &server, &v1).await;
    assert_eq!(
        verdicts(&one),
        ["cosign: verified by ci", "cosign: verified by release"]
    );
    assert_eq!(
        one["signatures"][0]["found_as"],
        format!("tag {}", tag_for(&v1, "sig"))
    );

    let two = supply_chain(&admin, &server, &v2).await;
    let said = verdicts(&two);
    assert_eq!(said.len(), 3, "{said:?}");
    assert!(
        said.iter().any(|s| s.contains("no trusted key matches")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|s| s.contains(&format!("signs another image: the payload names {v3}"))),
        "{said:?}"
    );
    assert!(said.iter().any(|s| s.contains("malformed")), "{said:?}");

    let three = supply_chain(&admin, &server, &v3).await;
    let said = verdicts(&three);
    assert!(
        said.contains(&"cosign: verified by release".to_owned()),
        "{said:?}"
    );
    let notation = three["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scheme"] == "notation")
        .unwrap();
    assert_eq!(notation["signed_by"], "notary.example.com");
    assert_eq!(notation["signed_at"], "2026-12-06T12:00:00Z");
    assert!(
        notation["verification"]["NotVerified"]["reason"]
            .as_str()
            .unwrap()
            .contains("payload names this image")
    );
    let mut packages: Vec<String> = three["sboms"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["packages"].as_array().unwrap().clone())
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                p["kind"].as_str().unwrap(),
                p["licence"].as_str().unwrap()
            )
        })
        .collect();
    packages.sort();
    assert_eq!(
        packages,
        [
            "openssl 3.0.13 deb Apache-2.0",
            "serde 1.0.210 cargo MIT OR Apache-2.0",
            "zlib 1.3  Zlib"
        ]
    );
    let formats: Vec<&str> = three["sboms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["format"].as_str().unwrap())
        .collect();
    assert!(
        formats.contains(&"SPDX 2.3") && formats.contains(&"CycloneDX 1.5"),
        "{formats:?}"
    );
    assert_eq!(
        three["attestations"][0]["predicate_type"],
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(three["attestations"][0]["subjects"], json!([v3]));

    let four = supply_chain(&admin, &server, &v4).await;
    assert!(four["signatures"].as_array().unwrap().is_empty());
    assert!(
        four["sboms"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("larger than 16 MiB"),
        "{four}"
    );

    // The stream's tags: signed by the tag scheme (v1, v2) or a signature referrer (v3).
    let stream =
        json_of(admin.get(server.url("/console/api/stream?namespace=team&stream=app"))).await;
    let signed: Vec<&str> = stream["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["signed"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(signed, ["v1", "v2", "v3"]);

    // A trusted key removed: the same signature no longer verifies with it.
    expect_status(
        server.delete("/apis/berth.io/v1/namespaces/team/trustedkeys/ci"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        verdicts(&supply_chain(&admin, &server, &v1).await),
        [
            "cosign: not verified: no trusted key matches (or the signature is invalid)",
            "cosign: verified by release"
        ]
    );

    // Who may not pull the image sees nothing of it; who may pull sees it but not the keys.
    let outsider = client_with_token(&server.add_user("outsider", "outsider-password", &[]));
    let refused = outsider
        .get(server.url(&format!(
            "/console/api/supply_chain?namespace=team&stream=app&digest={v1}"
        )))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(
            refused.status(),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ),
        "{}",
        refused.status()
    );
    let viewer_token = server.add_user("viewer", "viewer-password", &[]);
    grant_user(&server, "team", "viewer", "viewer").await;
    let viewer = client_with_token(&viewer_token);
    assert_eq!(
        verdicts(&supply_chain(&viewer, &server, &v1).await).len(),
        2
    );
    let keys = viewer
        .get(server.url("/apis/berth.io/v1/namespaces/team/trustedkeys"))
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), StatusCode::FORBIDDEN);
    let keys = viewer
        .get(server.url("/console/api/trusted_keys?namespace=team"))
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn buildx_attestation_manifests_in_an_index_are_listed_with_their_sbom() {
    let server = TestServer::start();
    let image = push_image(&server, "team/app", "plain", "child").await;
    let image_size = server
        .get(&format!("/v2/team/app/manifests/{image}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let spdx_statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "subject": [{"name": "pkg:docker/team/app", "digest": {"sha256": image.trim_start_matches("sha256:")}}],
        "predicateType": "https://spdx.dev/Document",
        "predicate": {"spdxVersion": "SPDX-2.3", "name": "sbom", "packages": [{"name": "busybox", "versionInfo": "1.36.1"}]}
    });
    let layer = serde_json::to_vec(&spdx_statement).unwrap();
    push_blob(&server, "team/app", &layer).await;
    push_blob(&server, "team/app", b"{}").await;
    let attestation = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": sha256(&layer), "size": layer.len(),
                    "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}]
    }))
    .unwrap();
    let response = put_manifest(
        &server,
        "team/app",
        &sha256(&attestation),
        OCI_MANIFEST,
        &attestation,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": image, "size": image_size, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256(&attestation), "size": attestation.len(),
             "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": image}}
        ]
    }))
    .unwrap();
    let response = put_manifest(
        &server,
        "team/app",
        "latest",
        "application/vnd.oci.image.index.v1+json",
        &index,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let chain = supply_chain(&server.client(), &server, &sha256(&index)).await;
    assert_eq!(
        chain["attestations"][0]["predicate_type"],
        "https://spdx.dev/Document"
    );
    assert_eq!(chain["sboms"][0]["packages"][0]["name"], "busybox");
    assert!(
        chain["sboms"][0]["found_as"]
            .as_str()
            .unwrap()
            .contains("attestation manifest"),
        "{chain}"
    );
    assert_eq!(chain["signatures"], json!([]));
}
