//! Image stream API latency at scale: `cargo bench -p berth --bench imagestreams`.
//!
//! For N = 1,000, 10,000 and 100,000 it fills one namespace with N streams and one stream with
//! N tags (through the metadata store, as pushes would), serves Berth on loopback and times,
//! over HTTP with keep-alive, the median of 50 requests for: the first page of the stream list,
//! the first page of the tag list, and a GET of the stream with N tags. Then it measures what
//! recording a push in its image stream adds to a manifest PUT: the median PUT of a new
//! manifest by a new tag (which records history and an event) against by digest (which does
//! not). Sizes can be given as arguments: `cargo bench --bench imagestreams -- 1000 10000`.

use std::time::{Duration, Instant};

use berth::config::Config;
use berth::oci::Digest;
use berth::oci::{RepositoryName, Tag};
use berth::storage::sqlite::SqliteMetadata;
use berth::storage::{MetadataStore, NewManifest, PutManifestOutcome};
use bytes::Bytes;

const SAMPLES: usize = 50;
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An empty index: a manifest with no references, so filling needs no blobs.
fn empty_index(seed: usize) -> NewManifest {
    let content = Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[],"annotations":{{"seed":"{seed}"}}}}"#
    ));
    NewManifest {
        digest: Digest::sha256_of(&content),
        media_type: INDEX.into(),
        content,
        artifact_type: None,
        subject: None,
        annotations: None,
        image: None,
        blobs: Vec::new(),
        manifests: Vec::new(),
        pushed_by: None,
    }
}

async fn fill(store: &SqliteMetadata, size: usize) {
    let started = Instant::now();
    let manifest = empty_index(0);
    let latest: Tag = "latest".parse().expect("tag");
    for i in 0..size {
        let repository: RepositoryName = format!("bench/stream-{i:06}").parse().expect("name");
        let outcome = store
            .put_manifest(&repository, &manifest, Some(&latest))
            .await
            .expect("fill streams");
        assert_eq!(outcome, PutManifestOutcome::Stored);
    }
    let big: RepositoryName = "tags/big".parse().expect("name");
    for i in 0..size {
        let tag: Tag = format!("v{i:06}").parse().expect("tag");
        store
            .put_manifest(&big, &manifest, Some(&tag))
            .await
            .expect("fill tags");
    }
    eprintln!(
        "filled {size} streams and {size} tags in {:.1?}",
        started.elapsed()
    );
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

async fn time_get(client: &reqwest::Client, url: &str) -> f64 {
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES + 3 {
        let started = Instant::now();
        let response = client.get(url).send().await.expect("request");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await.expect("body");
        samples.push(started.elapsed());
    }
    // The first requests warm caches.
    median(samples.split_off(3))
}

/// Serves Berth on loopback, and a client that authenticates as its administrator with a
/// personal token (a namespace's streams are its members' to see; a token is checked once and
/// then cached, as a machine's would be).
async fn serve(data: &std::path::Path) -> (String, reqwest::Client, tokio::task::JoinHandle<()>) {
    const PASSWORD: &str = "bench-password";
    let mut config = Config {
        data_dir: data.to_owned(),
        ..Config::default()
    };
    config.auth.bootstrap_password = Some(PASSWORD.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = berth::build_app(&config, address).await.expect("app");
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    let base = format!("http://{address}");
    let made: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/apis/access.berth.io/v1/personaltokens"))
        .basic_auth("admin", Some(PASSWORD))
        .json(&serde_json::json!({"metadata": {"name": "bench"}}))
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token");
    let token = made["status"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client");
    (base, client, server)
}

async fn measure(size: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = SqliteMetadata::open(&dir.path().join("berth.db"))
            .await
            .expect("store");
        fill(&store, size).await;
    }
    let (base, client, server) = serve(dir.path()).await;
    let api = format!("{base}/apis/image.openshift.io/v1/namespaces");
    let streams_100 = time_get(&client, &format!("{api}/bench/imagestreams?limit=100")).await;
    let streams_500 = time_get(&client, &format!("{api}/bench/imagestreams")).await;
    let tags_100 = time_get(&client, &format!("{api}/tags/imagestreamtags?limit=100")).await;
    let one_stream = time_get(&client, &format!("{api}/bench/imagestreams/stream-000000")).await;
    let big_stream = time_get(&client, &format!("{api}/tags/imagestreams/big")).await;
    println!(
        "{size:>7}  {streams_100:>12.2}  {streams_500:>12.2}  {tags_100:>12.2}  {one_stream:>12.2}  {big_stream:>14.2}"
    );
    server.abort();
}

/// Median manifest PUT latency by new tag and by digest, over HTTP.
async fn push_recording() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (base, client, server) = serve(dir.path()).await;
    let mut by_tag = Vec::new();
    let mut by_digest = Vec::new();
    for i in 0..(SAMPLES * 4) {
        let manifest = empty_index(i + 1);
        let (reference, samples) = if i % 2 == 0 {
            (format!("t{i}"), &mut by_tag)
        } else {
            (manifest.digest.to_string(), &mut by_digest)
        };
        let started = Instant::now();
        let response = client
            .put(format!("{base}/v2/push/app/manifests/{reference}"))
            .header("content-type", INDEX)
            .body(manifest.content.clone())
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), 201);
        samples.push(started.elapsed());
    }
    let (tag, digest) = (median(by_tag), median(by_digest));
    println!(
        "manifest PUT, median of {}: by new tag (records history and an event) {tag:.3} ms, by digest {digest:.3} ms; recording adds {:.3} ms",
        SAMPLES * 2,
        tag - digest
    );
    server.abort();
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        println!("median of {SAMPLES} requests, milliseconds, keep-alive, loopback");
        println!(
            "{:>7}  {:>12}  {:>12}  {:>12}  {:>12}  {:>14}",
            "N", "streams p100", "streams p500", "istags p100", "stream GET", "N-tag stream"
        );
        for size in sizes {
            measure(size).await;
        }
        push_recording().await;
    });
}
