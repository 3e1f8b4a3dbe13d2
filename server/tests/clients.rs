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

#[tokio::test]
async fn buildah_pushes_an_image_podman_pulls() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let env = ContainerEnv::new(&work.path().join("containers"), &server.addr);
    let vars = env.vars();
    let image = umoci_image(&work.path().join("layout"), "v1", "amd64", 2);
    let local = "localhost/berth-buildah-test:v1";
    // Into the local storage, as an image buildah built would be.
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci:{image}"),
            &format!("containers-storage:{local}"),
        ],
        &vars,
    );
    let remote = format!("{}/buildah/app:v1", server.addr);
    run(
        "buildah",
        &[
            "push",
            "--tls-verify=false",
            "--creds",
            &server.creds(),
            local,
            &format!("docker://{remote}"),
        ],
        &vars,
    );
    let tags = common::json_of(server.get("/v2/buildah/app/tags/list")).await;
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    run("podman", &["rmi", "--all", "--force"], &vars);
    run(
        "podman",
        &[
            "pull",
            "--tls-verify=false",
            "--creds",
            &server.creds(),
            &remote,
        ],
        &vars,
    );
}

/// The Python ORAS client (PyPI `oras` 0.2.43, in `target/tools/oras`): it asks for a token
/// with the scope of the first challenge (a blob's HEAD: pull) and asks again only after a
/// 403, so a push works only because a valid token lacking push is answered 403
/// `insufficient_scope` with the scope to ask for. It pushes a file, pulls it back, and
/// attaches a second artifact to the first (its `subject`), which the referrers API lists.
#[tokio::test]
async fn oras_pushes_pulls_and_attaches() {
    let python = common::infra::installed_tool("oras", "python");
    if !python.is_absolute() {
        panic!("the Python ORAS client is not installed: run scripts/setup test");
    }
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("oras_client.py");
    std::fs::write(&script, ORAS_SCRIPT).unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let output = std::process::Command::new(&python)
        .arg(&script)
        .args([&server.addr, "admin", common::ADMIN_PASSWORD])
        .current_dir(work.path())
        // Its login writes a Docker config: into this test's folder.
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "oras: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Its last line is the script's answer (the client may log before it).
    let stdout = String::from_utf8(output.stdout).unwrap();
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        std::fs::read_to_string(work.path().join("out/notes.txt")).unwrap(),
        "berth oras test\n"
    );
    let subject = result["subject"].as_str().unwrap();
    let listed = common::json_of(server.get(&format!("/v2/team/notes/referrers/{subject}"))).await;
    let manifests = listed["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{listed}");
    assert_eq!(manifests[0]["digest"], result["attached"]);
    assert_eq!(
        manifests[0]["annotations"]["org.example.kind"], "signature",
        "{listed}"
    );
}

/// What the ORAS test runs with the Python client: push, pull, and attach by `subject`; prints
/// the subject's digest and the attached manifest's as JSON.
const ORAS_SCRIPT: &str = r#"
import hashlib, json, os, sys
import oras.client, oras.oci

registry, user, password = sys.argv[1:4]
client = oras.client.OrasClient(hostname=registry, insecure=True)
client.login(username=user, password=password, hostname=registry)
with open("notes.txt", "w") as f:
    f.write("berth oras test\n")
target = f"{registry}/team/notes:v1"
client.push(target=target, files=["notes.txt"], quiet=True)
os.mkdir("out")
client.pull(target=target, outdir="out")
subject = oras.oci.Subject.from_manifest(client.get_manifest(target))
with open("signature.txt", "w") as f:
    f.write("a signature\n")
attached = client.push(
    target=f"{registry}/team/notes:signature",
    files=["signature.txt"],
    subject=subject,
    manifest_annotations={"org.example.kind": "signature"},
    quiet=True,
)
print(json.dumps({
    "subject": subject.digest,
    "attached": attached.headers["Docker-Content-Digest"],
}))
"#;
