//! Berth serving HTTPS itself: skopeo pushes and pulls trusting only the certificate's CA (no
//! insecure flag), and the addresses Berth hands out (the token realm) say https.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::images::{run, umoci_image};
use common::{TestServer, anonymous, expect_status, header, self_signed_tls};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_pushes_and_pulls_over_tls_with_only_the_ca_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (certified, tls_args) = self_signed_tls(dir.path());
    // skopeo reads the CAs to trust for a registry from a folder of `*.crt` files.
    let trust = dir.path().join("certs.d");
    std::fs::create_dir_all(&trust).unwrap();
    std::fs::write(trust.join("ca.crt"), certified.cert.pem()).unwrap();

    let tls_args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&tls_args);
    assert!(server.base.starts_with("https://"), "{}", server.base);

    let challenge = expect_status(
        anonymous().get(server.url("/v2/")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(
        header(&challenge, "www-authenticate")
            .contains(&format!("realm=\"https://{}/auth/token\"", server.addr)),
        "{}",
        header(&challenge, "www-authenticate")
    );

    let image = umoci_image(&dir.path().join("layout"), "v1", "amd64", 1);
    let target = format!("docker://{}/secure/app:v1", server.addr);
    let trust_dir = trust.to_str().unwrap();
    let creds = server.creds();
    run(
        "skopeo",
        &[
            "copy",
            "--dest-cert-dir",
            trust_dir,
            "--dest-creds",
            &creds,
            &format!("oci:{image}"),
            &target,
        ],
        &[],
    );
    let pulled = dir.path().join("pulled");
    run(
        "skopeo",
        &[
            "copy",
            "--src-cert-dir",
            trust_dir,
            "--src-creds",
            &creds,
            &target,
            &format!("oci:{}:v1", pulled.display()),
        ],
        &[],
    );
    assert!(pulled.join("index.json").is_file());

    // Without the CA, the certificate is refused: TLS is really checked.
    let untrusted = std::process::Command::new("skopeo")
        .args(["inspect", "--creds", &creds, &target])
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
}
