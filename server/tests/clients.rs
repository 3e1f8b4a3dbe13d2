//! Real clients against the running server: skopeo copies images built by umoci and buildah in
//! and out with identical digests; podman pushes and pulls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use common::images::{
    ContainerEnv, multi_platform_index, raw_manifest, run, skopeo_copy, skopeo_copy_all,
    skopeo_inspect, umoci_image,
};

fn digest_of(reference: &str, creds: Option<&str>) -> String {
    common::sha256(raw_manifest(reference, creds).as_bytes())
}

#[test]
fn skopeo_copies_a_multi_layer_image_in_and_out_unchanged() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let source = format!("oci:{}", umoci_image(&layout, "v1", "amd64", 3));
    let destination = format!("docker://{}/team/app:v1", server.addr);
    let creds = server.creds();
    let creds = Some(creds.as_str());
    skopeo_copy(&source, &destination, &server.creds());

    let pushed = digest_of(&destination, creds);
    assert_eq!(pushed, digest_of(&source, None));
    let manifest: serde_json::Value =
        serde_json::from_str(&raw_manifest(&destination, creds)).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);

    let back = format!("oci:{}:v1", work.path().join("back").display());
    skopeo_copy(&destination, &back, &server.creds());
    assert_eq!(digest_of(&back, None), pushed);
    // Every layer came back byte for byte (skopeo verifies digests as it copies).
    let inspect: serde_json::Value =
        serde_json::from_str(&skopeo_inspect(&[], &destination, creds)).unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Labels"]["org.example.name"], "berth-test");
}

#[test]
fn skopeo_copies_a_multi_platform_index_with_all() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let env = ContainerEnv::new(&work.path().join("containers"), &server.addr);
    let source = multi_platform_index(&work.path().join("multi"), &env);
    let destination = format!("docker://{}/team/multi:latest", server.addr);
    let creds = server.creds();
    let creds = Some(creds.as_str());
    skopeo_copy_all(&source, &destination, &server.creds());

    let index_raw = raw_manifest(&destination, creds);
    assert_eq!(
        common::sha256(index_raw.as_bytes()),
        digest_of(&source, None)
    );
    let index: serde_json::Value = serde_json::from_str(&index_raw).unwrap();
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);

    let back = format!("oci:{}:latest", work.path().join("back").display());
    skopeo_copy_all(&destination, &back, &server.creds());
    assert_eq!(raw_manifest(&back, None), index_raw);
    // Each platform's image is there too, by digest.
    for child in index["manifests"].as_array().unwrap() {
        let digest = child["digest"].as_str().unwrap();
        let by_digest = format!("docker://{}/team/multi@{digest}", server.addr);
        assert_eq!(digest_of(&by_digest, creds), digest);
    }
}

#[tokio::test]
async fn podman_pushes_and_pulls() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let env = ContainerEnv::new(&work.path().join("containers"), &server.addr);
    let vars = env.vars();
    let layout = work.path().join("layout");
    let image = umoci_image(&layout, "v1", "amd64", 2);
    let local = "localhost/berth-podman-test:v1";
    // Into podman's own storage, as a locally built image would be.
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci:{image}"),
            &format!("containers-storage:{local}"),
        ],
        &vars,
    );
    let remote = format!("{}/podman/app:v1", server.addr);
    // As with OpenShift: any user name, a token as the password.
    run(
        "podman",
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "anyone",
            "-p",
            &server.admin_token,
            &server.addr,
        ],
        &vars,
    );
    run(
        "podman",
        &[
            "push",
            "--tls-verify=false",
            local,
            &format!("docker://{remote}"),
        ],
        &vars,
    );

    let tags = common::json_of(server.get("/v2/podman/app/tags/list")).await;
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));

    run("podman", &["rmi", "--all", "--force"], &vars);
    run("podman", &["pull", "--tls-verify=false", &remote], &vars);
    let listed = run(
        "podman",
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
        &vars,
    );
    assert!(listed.contains(&remote), "{listed}");
}
