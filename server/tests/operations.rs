//! Operating Berth: health and readiness, metrics, configuration errors at start, `--help`, and
//! graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestServer, expect_status, push_blob, text_of, wait_until};
use reqwest::StatusCode;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::start();
    expect_status(server.get("/healthz"), StatusCode::OK).await;
    expect_status(server.get("/readyz"), StatusCode::OK).await;

    push_blob(&server, "m/repo", b"counted bytes").await;
    expect_status(
        server.post("/v2/m/repo/blobs/uploads/"),
        StatusCode::ACCEPTED,
    )
    .await;
    server.get("/v2/m/repo/tags/list").send().await.unwrap();

    let metrics = text_of(server.get("/metrics")).await;
    for expected in [
        r#"berth_http_requests_total{route="upload_start",method="POST",status="201"} 1"#,
        r#"berth_http_requests_total{route="upload_start",method="POST",status="202"} 1"#,
        r#"berth_http_requests_total{route="tags_list",method="GET",status="200"} 1"#,
        "berth_http_request_duration_seconds_bucket{route=\"upload_start\"",
        "berth_uploads_in_progress 1",
        "berth_http_received_bytes_total",
        "berth_http_sent_bytes_total",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn readiness_fails_when_storage_cannot_be_written() {
    let server = TestServer::start();
    let uploads = server.data_dir().join("uploads");
    std::fs::remove_dir_all(&uploads).unwrap();
    std::fs::write(&uploads, b"not a folder").unwrap();
    let ready = expect_status(server.get("/readyz"), StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(ready.text().await.unwrap().contains("blobs:"));
}

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("BERTH_LISTEN")
        .output()
        .unwrap()
}

#[test]
fn invalid_configuration_stops_berth_with_the_field_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, "[registry]\nmax_manifest_bytes = \"lots\"\n").unwrap();
    let data = dir.path().join("data");
    let serve_with_file = || {
        berth(&[
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ])
    };
    let output = serve_with_file();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("registry.max_manifest_bytes"), "{stderr}");
    assert!(stderr.contains("lots"), "{stderr}");

    let output = berth(&["serve", "--listen", "not-an-address"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen"));

    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--data-dir", data.to_str().unwrap()])
        .env("BERTH_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--log-format"));

    // The administrator's name is checked by identity's own rules, and reported the same way.
    std::fs::write(&file, "[auth]\nbootstrap_admin = \"../admin\"\n").unwrap();
    let output = serve_with_file();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("berth: invalid configuration: auth.bootstrap_admin: "),
        "{stderr}"
    );
    // Nothing was created for a configuration that did not load.
    assert!(!data.exists());
}

#[test]
fn help_explains_every_option() {
    let output = berth(&["serve", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--config",
        "--listen",
        "--data-dir",
        "--storage-url",
        "--log-format",
        "--log-level",
        "--max-manifest-bytes",
        "--site-dir",
        "--shutdown-timeout",
        "BERTH_LISTEN",
        "BERTH_DATA_DIR",
        "BERTH_STORAGE_URL",
    ] {
        assert!(help.contains(option), "--help lacks {option}:\n{help}");
    }
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let mut server = TestServer::start();
    let location = server
        .post("/v2/ns/slow/blobs/uploads/")
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    // A chunk that takes a second to arrive: five pieces, 200 ms apart on purpose, so that the
    // request is still in flight when the server is told to stop.
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = asked.clone();
    let chunks = futures_util::stream::unfold(0, move |i| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if i == 5 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some((Ok::<_, std::io::Error>(vec![b'x'; 1000]), i + 1))
        }
    });
    let url = server.url(&location);
    let client = server.client();
    let upload = tokio::spawn(async move {
        client
            .patch(url)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap()
    });
    // The first piece is out when the client asks for the second.
    wait_until(
        "the upload's second piece to be asked for",
        async || match asked.load(Ordering::SeqCst) {
            asked if asked >= 2 => Ok(()),
            asked => Err(format!("{asked} asked for")),
        },
    )
    .await;
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "berth exited with {status}");
    let response = upload.await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["range"], "0-4999");
}

/// A replica started before its PostgreSQL database exists stays up: `/healthz` answers, and
/// `/readyz` (and everything else) is 503 with the reason, until the database answers.
#[tokio::test]
async fn a_replica_waits_for_its_database_and_says_so_on_readyz() {
    let postgres = common::infra::postgres();
    let port = common::infra::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--log-level", "error", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--database-url")
        .arg(postgres.url("created_later"))
        .env("BERTH_BOOTSTRAP_PASSWORD", common::ADMIN_PASSWORD)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let health = wait_until(
        "the waiting replica to answer /healthz",
        async || match client.get(format!("{base}/healthz")).send().await {
            Ok(response) => Ok(response.status()),
            Err(err) => Err(err.to_string()),
        },
    )
    .await;
    assert_eq!(health, StatusCode::OK);
    for path in ["/readyz", "/v2/"] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(response.headers()["retry-after"], "5");
        let text = response.text().await.unwrap();
        assert!(text.contains("created_later"), "{text}");
    }
    // Once the database exists, the replica starts and is ready.
    postgres.psql("CREATE DATABASE created_later");
    wait_until("the replica to be ready", async || {
        match client.get(format!("{base}/readyz")).send().await {
            Ok(response) if response.status() == StatusCode::OK => Ok(()),
            Ok(response) => Err(response.status().to_string()),
            Err(err) => Err(err.to_string()),
        }
    })
    .await;
    expect_status(client.get(format!("{base}/v2/")), StatusCode::UNAUTHORIZED).await;
    child.kill().unwrap();
    child.wait().unwrap();
}
