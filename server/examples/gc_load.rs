//! Load for bench/gc.sh: fills a running Berth with many small images, deletes some, pushes
//! while garbage collection sweeps, and sums what a bucket holds. Every request goes through
//! the registry API, as a client's would.
//!
//! ```sh
//! cargo build --release -p berth --example gc_load
//! gc_load populate --url http://127.0.0.1:5000 --password PW --namespaces 10 --streams 100 \
//!     --images 100 --out images.tsv
//! gc_load delete --url ... --password PW --list images.tsv        # every second image
//! gc_load push --url ... --password PW --seconds 20               # images/s and MiB/s
//! gc_load bucket-bytes --endpoint http://127.0.0.1:8333 --bucket bench --prefix berth/blobs/
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use futures_util::{StreamExt, TryStreamExt};
use sha2::Digest as _;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Server {
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "admin")]
    user: String,
    #[arg(long)]
    password: String,
    /// Requests in flight at once
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Pushes NAMESPACES x STREAMS x IMAGES images (a config and a layer each, all distinct)
    /// and writes one line per image: repository, manifest, then digest and size of each blob.
    Populate {
        #[command(flatten)]
        server: Server,
        #[arg(long, default_value_t = 10)]
        namespaces: usize,
        #[arg(long, default_value_t = 100)]
        streams: usize,
        #[arg(long, default_value_t = 100)]
        images: usize,
        #[arg(long, default_value_t = 1024)]
        layer_bytes: usize,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Deletes every second image of a populate list by digest; prints how many and the bytes
    /// of their blobs (what garbage collection should free).
    Delete {
        #[command(flatten)]
        server: Server,
        #[arg(long)]
        list: std::path::PathBuf,
    },
    /// Pushes new images (a small config and a LAYER_MIB layer each) for SECONDS; prints the
    /// images and MiB pushed per second, and the bytes of the blobs pushed.
    Push {
        #[command(flatten)]
        server: Server,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 4)]
        layer_mib: usize,
        /// Makes this run's images differ from another run's
        #[arg(long, default_value = "push")]
        seed: String,
    },
    /// Prints the number and total size of the objects under PREFIX in an S3 bucket.
    BucketBytes {
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        bucket: String,
        #[arg(long)]
        prefix: String,
        #[arg(long, env = "AWS_ACCESS_KEY_ID")]
        key: String,
        #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
        secret: String,
    },
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

struct Registry {
    http: reqwest::Client,
    server: Server,
}

impl Registry {
    fn new(server: Server) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(server.concurrency)
            .build()
            .unwrap();
        Arc::new(Registry { http, server })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server.url))
            .basic_auth(&self.server.user, Some(&self.server.password))
    }

    async fn push_blob(&self, repository: &str, data: Vec<u8>) -> String {
        let digest = sha256(&data);
        let path = format!("/v2/{repository}/blobs/uploads/?digest={digest}");
        let response = self
            .request(reqwest::Method::POST, &path)
            .body(data)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "blob push to {repository}");
        digest
    }

    /// Pushes a config and a layer and the manifest naming them as `repository:tag`; answers
    /// the manifest's digest and the blobs' digests and sizes.
    async fn push_image(
        &self,
        repository: &str,
        tag: &str,
        seed: &str,
        layer: Vec<u8>,
    ) -> (String, [(String, usize); 2]) {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["SEED={seed}"]}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        )
        .into_bytes();
        let (config_size, layer_size) = (config.len(), layer.len());
        let config_digest = self.push_blob(repository, config).await;
        let layer_digest = self.push_blob(repository, layer).await;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
        }))
        .unwrap();
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("/v2/{repository}/manifests/{tag}"),
            )
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "manifest push to {repository}");
        (
            sha256(&manifest),
            [(config_digest, config_size), (layer_digest, layer_size)],
        )
    }
}

/// `len` bytes that no other seed gives.
fn layer_of(seed: &str, len: usize) -> Vec<u8> {
    let mut data = seed.as_bytes().to_vec();
    let mut block = sha2::Sha256::digest(seed.as_bytes()).to_vec();
    while data.len() < len {
        data.extend_from_slice(&block);
        block = sha2::Sha256::digest(&block).to_vec();
    }
    data.truncate(len);
    data
}

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Command::Populate {
            server,
            namespaces,
            streams,
            images,
            layer_bytes,
            out,
        } => {
            let concurrency = server.concurrency;
            let registry = Registry::new(server);
            let started = Instant::now();
            let jobs = (0..namespaces)
                .flat_map(|n| (0..streams).flat_map(move |s| (0..images).map(move |i| (n, s, i))));
            let lines: Vec<String> = futures_util::stream::iter(jobs)
                .map(|(n, s, i)| {
                    let registry = registry.clone();
                    async move {
                        let repository = format!("bench-{n}/app-{s}");
                        let seed = format!("{n}-{s}-{i}");
                        let layer = layer_of(&seed, layer_bytes);
                        let (manifest, blobs) = registry
                            .push_image(&repository, &format!("v{i}"), &seed, layer)
                            .await;
                        let [(config, config_size), (layer, layer_size)] = blobs;
                        format!(
                            "{repository}\t{manifest}\t{config}\t{config_size}\t{layer}\t{layer_size}"
                        )
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
            let mut file = std::fs::File::create(out).unwrap();
            for line in &lines {
                writeln!(file, "{line}").unwrap();
            }
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "pushed {} images in {seconds:.1} s ({:.0} images/s)",
                lines.len(),
                lines.len() as f64 / seconds
            );
        }
        Command::Delete { server, list } => {
            let concurrency = server.concurrency;
            let registry = Registry::new(server);
            let text = std::fs::read_to_string(list).unwrap();
            let doomed: Vec<Vec<String>> = text
                .lines()
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, line)| line.split('\t').map(str::to_owned).collect())
                .collect();
            let bytes: u64 = doomed
                .iter()
                .map(|f| f[3].parse::<u64>().unwrap() + f[5].parse::<u64>().unwrap())
                .sum();
            let started = Instant::now();
            futures_util::stream::iter(&doomed)
                .map(|fields| {
                    let registry = registry.clone();
                    async move {
                        let path = format!("/v2/{}/manifests/{}", fields[0], fields[1]);
                        let response = registry
                            .request(reqwest::Method::DELETE, &path)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 202, "{path}");
                    }
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<()>>()
                .await;
            println!(
                "deleted {} images ({} blobs, {bytes} bytes) in {:.1} s",
                doomed.len(),
                doomed.len() * 2,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Push {
            server,
            seconds,
            layer_mib,
            seed,
        } => {
            let concurrency = server.concurrency;
            let registry = Registry::new(server);
            let pushed = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let started = Instant::now();
            let bytes = Arc::new(AtomicU64::new(0));
            let workers = (0..concurrency).map(|worker| {
                let (registry, pushed, seed) = (registry.clone(), pushed.clone(), seed.clone());
                let bytes = bytes.clone();
                tokio::spawn(async move {
                    let mut i = 0;
                    while Instant::now() < deadline {
                        let seed = format!("{seed}-{worker}-{i}");
                        let layer = layer_of(&seed, layer_mib << 20);
                        let (_, blobs) = registry
                            .push_image("bench-push/app", &format!("w{worker}-{i}"), &seed, layer)
                            .await;
                        pushed.fetch_add(1, Ordering::Relaxed);
                        let size: usize = blobs.iter().map(|(_, size)| size).sum();
                        bytes.fetch_add(size as u64, Ordering::Relaxed);
                        i += 1;
                    }
                })
            });
            futures_util::future::join_all(workers).await;
            let images = pushed.load(Ordering::Relaxed) as f64;
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "{:.1} images/s {:.1} MiB/s ({} bytes of blobs)",
                images / elapsed,
                images * layer_mib as f64 / elapsed,
                bytes.load(Ordering::Relaxed)
            );
        }
        Command::BucketBytes {
            endpoint,
            bucket,
            prefix,
            key,
            secret,
        } => {
            use object_store::ObjectStore;
            let _ = rustls::crypto::ring::default_provider().install_default();
            let store = object_store::aws::AmazonS3Builder::new()
                .with_endpoint(&endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_bucket_name(&bucket)
                .with_access_key_id(&key)
                .with_secret_access_key(&secret)
                .build()
                .unwrap();
            let sizes: Vec<u64> = store
                .list(Some(&prefix.as_str().into()))
                .map_ok(|meta| meta.size)
                .try_collect()
                .await
                .unwrap();
            println!("{} {}", sizes.len(), sizes.iter().sum::<u64>());
        }
    }
}
