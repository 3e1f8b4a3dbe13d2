//! Berth with its blobs in S3 (SeaweedFS's gateway, or Garage with `BERTH_TEST_S3=garage`),
//! set by `--storage-url s3://…` and `[storage.s3]` in a configuration file, or by
//! `BERTH_STORAGE_URL` and the `AWS_*` variables, and its metadata in SQLite (in PostgreSQL with
//! `BERTH_TEST_STORAGE=postgres-s3`): skopeo pushes and pulls, a chunked upload through the API
//! that survives a kill, redirects to presigned URLs, and a 256 MiB blob streamed in and out
//! with the server's memory staying flat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::images::{raw_manifest, skopeo_copy, umoci_image};
use common::infra::{Haproxy, PrivateCa, s3 as test_s3};
use common::{Storage, TestServer, expect_status, header, location, sha256};
use futures_util::StreamExt;
use reqwest::StatusCode;
use sha2::Digest as _;
use std::path::Path;

/// Writes `file`, a configuration naming the test bucket's region and keys, the bucket reached
/// at `endpoint`, and these more `[storage.s3]` lines.
fn write_s3_config(file: &Path, redirect: bool, endpoint: &str, more: &str) {
    let s3 = test_s3();
    std::fs::write(
        file,
        format!(
            "[storage]\nredirect = {redirect}\n[storage.s3]\nendpoint = {endpoint:?}\n\
             region = {:?}\naccess_key_id = {:?}\nsecret_access_key = {:?}\n{more}",
            s3.region, s3.access_key_id, s3.secret_access_key
        ),
    )
    .unwrap();
}

/// Berth on a fresh prefix of the test bucket, and that prefix: the storage URL as a flag and
/// the bucket's address and keys in the configuration file.
fn start_on_s3(redirect: bool) -> (TestServer, String, tempfile::TempDir) {
    start_on_s3_at(&test_s3().endpoint, redirect, "", &[])
}

/// [`start_on_s3`] with the bucket reached at `endpoint`, `more` lines in `[storage.s3]` and
/// these environment variables.
fn start_on_s3_at(
    endpoint: &str,
    redirect: bool,
    more: &str,
    env: &[(&str, &str)],
) -> (TestServer, String, tempfile::TempDir) {
    let s3 = test_s3();
    let prefix = s3.prefix();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("berth.toml");
    write_s3_config(&config, redirect, endpoint, more);
    let url = format!("s3://{}/{prefix}", s3.bucket);
    let server = TestServer::start_with_env(
        &["--config", config.to_str().unwrap(), "--storage-url", &url],
        env,
    );
    (server, prefix, dir)
}

/// Berth on a fresh prefix of the test bucket, configured by environment variables only:
/// `BERTH_STORAGE_URL` and the standard `AWS_*` ones.
fn start_on_s3_from_the_environment() -> (TestServer, String) {
    let s3 = test_s3();
    let prefix = s3.prefix();
    let url = format!("s3://{}/{prefix}", s3.bucket);
    let server = TestServer::start_with_env(
        &[],
        &[
            ("BERTH_STORAGE_URL", &url),
            ("AWS_ENDPOINT", &s3.endpoint),
            ("AWS_REGION", &s3.region),
            ("AWS_ACCESS_KEY_ID", &s3.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key),
        ],
    );
    (server, prefix)
}

/// The keys under `prefix` in the test bucket.
async fn keys_under(prefix: &str) -> Vec<String> {
    common::bucket_objects(prefix)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// The key of blob `digest` (`sha256:…`) under `prefix`.
fn blob_key(prefix: &str, digest: &str) -> String {
    let hex = &digest[7..];
    format!("{prefix}/blobs/sha256/{}/{hex}", &hex[..2])
}

fn blob_keys(keys: &[String]) -> Vec<&String> {
    keys.iter().filter(|key| key.contains("/blobs/")).collect()
}

/// skopeo pushes an image of `layers` layers built by umoci to `repository` and pulls it back
/// unchanged.
fn skopeo_round_trip(server: &TestServer, repository: &str, layers: usize) {
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(&work.path().join("layout"), "v1", "amd64", layers);
    let source = format!("oci:{layout}");
    let destination = format!("docker://{}/{repository}:v1", server.addr);
    skopeo_copy(&source, &destination, &server.creds());
    let back = format!("oci:{}:v1", work.path().join("back").display());
    skopeo_copy(&destination, &back, &server.creds());
    assert_eq!(
        sha256(raw_manifest(&back, None).as_bytes()),
        sha256(raw_manifest(&source, None).as_bytes())
    );
}

#[test]
fn a_wrong_storage_url_or_a_missing_bucket_stops_berth_at_start() {
    let s3 = test_s3();
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-secret-that-must-not-show";
    let serve = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["serve", "--listen", "127.0.0.1:0", "--storage-url", url])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("AWS_ENDPOINT", &s3.endpoint)
            .env("AWS_REGION", &s3.region)
            .env("AWS_ACCESS_KEY_ID", &s3.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("BERTH_LOG_LEVEL", "debug")
            .output()
            .unwrap()
    };
    let output = serve("gs://bucket/berth");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("storage.url") && stderr.contains("s3://BUCKET/PREFIX"),
        "{stderr}"
    );
    // A bucket that is not there, or a key that does not work: the bucket and the endpoint are
    // named, the secret is not.
    for url in [
        "s3://no-such-bucket/berth",
        &format!("s3://{}/berth", s3.bucket),
    ] {
        let output = serve(url);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let bucket = url[5..].split('/').next().unwrap();
        assert!(
            stderr.contains(&format!("the bucket \"{bucket}\" at {}", s3.endpoint)),
            "{stderr}"
        );
        assert!(!stderr.contains(secret), "{stderr}");
        assert!(!String::from_utf8_lossy(&output.stdout).contains(secret));
    }
}

#[test]
fn skopeo_pushes_and_pulls_with_blobs_in_the_bucket() {
    let (server, prefix, _config) = start_on_s3(false);
    skopeo_round_trip(&server, "team/app", 3);
    // Three layers and the config are in the bucket, nothing under uploads/, and no blob
    // folder in the data folder (which holds the database unless it is PostgreSQL).
    let keys = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(keys_under(&prefix));
    assert_eq!(blob_keys(&keys).len(), 4, "{keys:?}");
    assert!(
        !keys.iter().any(|key| key.contains("/uploads/")),
        "{keys:?}"
    );
    assert!(!server.data_dir().join("blobs").exists());
    if *server.storage() == Storage::Embedded {
        assert!(server.data_dir().join("berth.db").is_file());
    }
}

/// The test bucket behind HAProxy answering HTTPS with a certificate of a private CA (as a
/// MinIO, Ceph or Garage behind an internal CA is): the proxy, the CA, and the `https://`
/// endpoint.
fn bucket_behind_a_private_ca() -> (Haproxy, PrivateCa, String) {
    let ca = PrivateCa::new();
    let backend = test_s3().endpoint.trim_start_matches("http://").to_owned();
    let proxy = Haproxy::start_tls(&[&backend], &ca.server_pem);
    let endpoint = format!("https://127.0.0.1:{}", proxy.port);
    (proxy, ca, endpoint)
}

#[test]
fn a_bucket_behind_a_private_ca_is_used_with_its_ca_file_or_aws_ca_bundle() {
    let (_proxy, ca, endpoint) = bucket_behind_a_private_ca();
    let (server, prefix, _config) = start_on_s3_at(
        &endpoint,
        false,
        &format!("ca_file = {:?}\n", ca.ca_file),
        &[],
    );
    skopeo_round_trip(&server, "team/private-ca", 2);
    drop(server);
    // Two layers and the config went through the proxy into the bucket.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let keys = runtime.block_on(keys_under(&prefix));
    assert_eq!(blob_keys(&keys).len(), 3, "{keys:?}");

    // The same CA named by AWS_CA_BUNDLE, as the AWS tools read it.
    let (server, prefix, _config) = start_on_s3_at(
        &endpoint,
        false,
        "",
        &[("AWS_CA_BUNDLE", ca.ca_file.to_str().unwrap())],
    );
    let data = b"through a private CA".to_vec();
    let digest = runtime.block_on(common::push_blob(&server, "team/bundle", &data));
    let keys = runtime.block_on(keys_under(&prefix));
    assert_eq!(blob_keys(&keys), vec![&blob_key(&prefix, &digest)]);
}

#[test]
fn without_the_private_ca_or_with_a_wrong_ca_file_berth_does_not_start() {
    let (_proxy, ca, endpoint) = bucket_behind_a_private_ca();
    let s3 = test_s3();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("berth.toml");
    let url = format!("s3://{}/berth", s3.bucket);
    // `berth serve` with `more` in [storage.s3], and AWS_CA_BUNDLE as given (unset for None).
    let serve = |more: &str, aws_ca_bundle: Option<&Path>| {
        write_s3_config(&config, false, &endpoint, more);
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--storage-url", &url])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"));
        match aws_ca_bundle {
            Some(bundle) => command.env("AWS_CA_BUNDLE", bundle),
            None => command.env_remove("AWS_CA_BUNDLE"),
        };
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A Berth that trusts the endpoint wrongly would serve on: fail rather than wait.
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Berth started with {more:?} and AWS_CA_BUNDLE={aws_ca_bundle:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status.code(), stderr)
    };

    // The platform's roots alone, or with the system's bundle as AWS_CA_BUNDLE (as this
    // machine sets it): the certificate is refused, and the message says so.
    let system_bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
    for bundle in [None, Some(system_bundle).filter(|file| file.is_file())] {
        let (code, stderr) = serve("", bundle);
        assert_eq!(code, Some(1), "{stderr}");
        // Berth's own last word (rustls logs the refusal too), with the cause.
        let said = stderr.lines().rfind(|line| line.starts_with("berth: "));
        assert!(
            said.is_some_and(|said| said
                .contains(&format!("the bucket \"{}\" at {endpoint}", s3.bucket))
                && said.contains("invalid peer certificate")),
            "{stderr}"
        );
    }

    // A CA file that cannot be used stops Berth before anything else, naming the file.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let not_pem = dir.path().join("not-pem.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let not_a_certificate = dir.path().join("not-a-certificate.pem");
    std::fs::write(
        &not_a_certificate,
        "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, reason) in [
        (&missing, "cannot be read"),
        (&empty, "holds no certificate"),
        (&not_pem, "holds no certificate"),
        (&not_a_certificate, "cannot be a root"),
    ] {
        let (code, stderr) = serve(&format!("ca_file = {file:?}\n"), Some(&ca.ca_file));
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("storage.s3.ca_file: {}", file.display()))
                && stderr.contains(reason),
            "{stderr}"
        );
    }
    let (code, stderr) = serve("", Some(&missing));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "AWS_CA_BUNDLE: {} cannot be read",
            missing.display()
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_chunked_upload_continues_after_a_kill_and_lands_in_the_bucket() {
    let (server, prefix) = start_on_s3_from_the_environment();
    let content: Vec<u8> = (0..9_000_123u32).map(|i| (i % 251) as u8).collect();
    let response = expect_status(
        server.post("/v2/team/chunked/blobs/uploads/"),
        StatusCode::ACCEPTED,
    )
    .await;
    let upload = location(&response);
    let patch = |server: &TestServer, upload: &str, range: std::ops::Range<usize>| {
        server
            .patch(upload)
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{}-{}", range.start, range.end - 1),
            )
            .body(content[range].to_vec())
    };
    // A small chunk (less than an S3 part), then the server dies.
    let response = expect_status(patch(&server, &upload, 0..1000), StatusCode::ACCEPTED).await;
    assert_eq!(header(&response, "range"), "0-999");
    let server = server.crash_and_restart();
    // The next chunks go to the new process: one larger than a part, one small.
    let response = expect_status(
        patch(&server, &upload, 1000..8_500_000),
        StatusCode::ACCEPTED,
    )
    .await;
    let upload = location(&response);
    expect_status(
        patch(&server, &upload, 8_500_000..content.len()),
        StatusCode::ACCEPTED,
    )
    .await;
    let digest = sha256(&content);
    expect_status(
        server.put(&format!("{upload}?digest={digest}")),
        StatusCode::CREATED,
    )
    .await;
    let response = expect_status(
        server.get(&format!("/v2/team/chunked/blobs/{digest}")),
        StatusCode::OK,
    )
    .await;
    assert!(response.bytes().await.unwrap() == content);
    let response = expect_status(
        server
            .get(&format!("/v2/team/chunked/blobs/{digest}"))
            .header("range", "bytes=8388600-8388615"),
        StatusCode::PARTIAL_CONTENT,
    )
    .await;
    assert!(response.bytes().await.unwrap() == content[8_388_600..8_388_616]);
    let keys = keys_under(&prefix).await;
    assert_eq!(blob_keys(&keys), vec![&blob_key(&prefix, &digest)]);
    assert!(
        !keys.iter().any(|key| key.contains("/uploads/")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn blob_gets_redirect_to_presigned_urls_after_the_access_checks() {
    let (server, _prefix, _config) = start_on_s3(true);
    let data = b"served by the bucket".to_vec();
    let digest = common::push_blob(&server, "team/redirected", &data).await;
    let path = format!("/v2/team/redirected/blobs/{digest}");
    let response = expect_status(server.get(&path), StatusCode::TEMPORARY_REDIRECT).await;
    assert_eq!(header(&response, "docker-content-digest"), digest);
    let target = location(&response);
    assert!(target.starts_with(&test_s3().endpoint), "{target}");
    // A client that follows redirects gets the bytes, ranges included.
    let following = reqwest::Client::new();
    let fetched = following.get(&target).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap(), data);
    let ranged = following
        .get(&target)
        .header("range", "bytes=10-12")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.bytes().await.unwrap(), &data[10..13]);
    // HEAD is answered here; nobody without access gets a URL.
    let head = expect_status(server.head(&path), StatusCode::OK).await;
    assert_eq!(header(&head, "content-length"), data.len().to_string());
    let refused = common::anonymous()
        .get(server.url(&path))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get("location").is_none());
    let stranger = server.user("stranger");
    let denied = stranger.get(server.url(&path)).send().await.unwrap();
    assert!(
        matches!(
            denied.status(),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ),
        "{}",
        denied.status()
    );
    assert!(denied.headers().get("location").is_none());
}

#[test]
fn skopeo_pulls_through_redirects() {
    let (server, _prefix, _config) = start_on_s3(true);
    // skopeo follows each blob's 307 to the S3 store and checks the digests.
    skopeo_round_trip(&server, "team/redirect", 2);
}

/// `len` bytes in 1 MiB chunks, made as they are sent.
fn generated(len: usize) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    const CHUNK: usize = 1 << 20;
    futures_util::stream::unfold(
        (0usize, 0x2545_F491_4F6C_DD1Du64),
        move |(at, mut state)| async move {
            if at >= len {
                return None;
            }
            let chunk: Vec<u8> = (0..CHUNK.min(len - at))
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let next = at + chunk.len();
            Some((Ok(Bytes::from(chunk)), (next, state)))
        },
    )
}

/// The server's resident memory now, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

/// Samples the server's resident memory every 20 ms until dropped; `peak` answers the most.
struct RssSampler {
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        use std::sync::atomic::Ordering;
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, done) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                seen.fetch_max(rss_mib(pid), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        RssSampler { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test]
async fn a_256_mib_blob_streams_in_and_out_with_flat_memory() {
    const LEN: usize = 256 << 20;
    let (server, _prefix, _config) = start_on_s3(false);
    let mut hasher = sha2::Sha256::new();
    let mut content = std::pin::pin!(generated(LEN));
    while let Some(chunk) = content.next().await {
        hasher.update(chunk.unwrap());
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let before = rss_mib(server.pid());
    let sampler = RssSampler::start(server.pid());

    // As docker and skopeo push: one streamed PATCH, then PUT with the digest.
    let response = expect_status(
        server.post("/v2/team/large/blobs/uploads/"),
        StatusCode::ACCEPTED,
    )
    .await;
    let response = expect_status(
        server
            .patch(&location(&response))
            .body(reqwest::Body::wrap_stream(generated(LEN))),
        StatusCode::ACCEPTED,
    )
    .await;
    expect_status(
        server.put(&format!("{}?digest={digest}", location(&response))),
        StatusCode::CREATED,
    )
    .await;
    let response = expect_status(
        server.get(&format!("/v2/team/large/blobs/{digest}")),
        StatusCode::OK,
    )
    .await;
    let mut hasher = sha2::Sha256::new();
    let mut received = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        received += chunk.len();
        hasher.update(&chunk);
    }
    assert_eq!(received, LEN);
    assert_eq!(format!("sha256:{}", hex::encode(hasher.finalize())), digest);
    let peak = sampler.peak();
    eprintln!("server RSS: {before} MiB before, at most {peak} MiB while 256 MiB went in and out");
    // Parts of 8 MiB, two being sent and one filling, and reads of a few MiB in flight.
    assert!(
        peak < before + 64,
        "RSS reached {peak} MiB, from {before} MiB"
    );
}
