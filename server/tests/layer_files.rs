//! Layer files: real layers (tar built here; gzip, zstd and plain) pushed to Berth and read
//! through the console's server functions and download route: listings, the merged view with
//! whiteouts and opaque directories, text and downloads; hostile layers (traversal names,
//! absolute names, non-UTF-8 names, a 10 GB declared size, very deep paths, a decompression
//! bomb); who may see them; the index read from a checkpoint and kept beside the blob, and
//! gone with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::Arc;

use berth::layers::{LayerLimits, Layers};
use berth::storage::BlobStore;
use berth::storage::fs::FsBlobStore;
use common::{
    OCI_MANIFEST, TestServer, expect_status, grant_user, push_blob, put_manifest, sha256,
    wait_until,
};
use reqwest::StatusCode;
use serde_json::Value;

/// A tar entry as the test writes it: raw name bytes, so names the tar crate's writer refuses
/// (`..`, not UTF-8) can be made.
enum Item<'a> {
    File(&'a [u8], &'a [u8]),
    Dir(&'a [u8]),
    Symlink(&'a [u8], &'a [u8]),
    /// A file whose header declares `size` bytes, followed by only `data`.
    Lying(&'a [u8], u64, &'a [u8]),
}

fn tar_of(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(1000);
        header.set_gid(1000);
        let (name, data, kind, mode): (&[u8], &[u8], tar::EntryType, u32) = match item {
            Item::File(name, data) => (name, data, tar::EntryType::Regular, 0o644),
            Item::Dir(name) => (name, b"", tar::EntryType::Directory, 0o755),
            Item::Symlink(name, target) => {
                header.set_link_name_literal(target).unwrap();
                (name, b"", tar::EntryType::Symlink, 0o777)
            }
            Item::Lying(name, _, data) => (name, data, tar::EntryType::Regular, 0o644),
        };
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(match item {
            Item::Lying(_, size, _) => *size,
            _ => data.len() as u64,
        });
        if name.len() <= 100 {
            header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        } else {
            // Long names through the writer's GNU long-name entry (no `..` in those here).
            let path = std::str::from_utf8(name).unwrap();
            builder.append_data(&mut header, path, data).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// Pushes `layers` (base first) as an image `repository:tag`; answers its digest and the
/// layers' digests.
async fn push_layers(
    server: &TestServer,
    repository: &str,
    tag: &str,
    layers: &[Vec<u8>],
) -> (String, Vec<String>) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    push_blob(server, repository, config).await;
    let mut descriptors = Vec::new();
    let mut digests = Vec::new();
    for layer in layers {
        let digest = push_blob(server, repository, layer).await;
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest, "size": layer.len(),
        }));
        digests.push(digest);
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let response = put_manifest(server, repository, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    (sha256(&manifest), digests)
}

fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn read(client: &reqwest::Client, server: &TestServer, path: &str) -> (StatusCode, Value) {
    let response = client.get(server.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// One layer's listing (`dir`, `search`) as the console asks it.
async fn layer_files(
    client: &reqwest::Client,
    server: &TestServer,
    image: &str,
    layer: &str,
    dir: &str,
    search: &str,
) -> (StatusCode, Value) {
    let path = format!(
        "/console/api/layer-files?namespace=team&stream=app&image={}&layer={}&dir={}&search={}&offset=0",
        enc(image),
        enc(layer),
        enc(dir),
        enc(search)
    );
    read(client, server, &path).await
}

async fn image_files(
    client: &reqwest::Client,
    server: &TestServer,
    image: &str,
    search: &str,
) -> Value {
    let path = format!(
        "/console/api/image-files?namespace=team&stream=app&image={}&dir=&search={}&offset=0",
        enc(image),
        enc(search)
    );
    let (status, body) = read(client, server, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn rows(listing: &Value) -> Vec<(String, String)> {
    listing["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                r["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row<'a>(listing: &'a Value, path: &str) -> &'a Value {
    listing["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {listing}"))
}

fn download_path(image: &str, layer: &str, entry: u64) -> String {
    format!(
        "/console/api/layer-file?namespace=team&stream=app&image={}&layer={}&entry={entry}",
        enc(image),
        enc(layer)
    )
}

#[tokio::test]
async fn layers_list_merge_read_and_download_as_a_pull_allows() {
    let server = TestServer::start();
    let base = gzip(&tar_of(&[
        Item::Dir(b"etc/"),
        Item::File(b"etc/os-release", b"NAME=\"Berth <test>\"\n"),
        Item::File(b"etc/motd", b"hello\n"),
        Item::Dir(b"opt/"),
        Item::File(b"opt/old/a", b"a"),
        Item::File(b"opt/keep", b"k"),
    ]));
    let middle = zstd(&tar_of(&[
        Item::File(b"etc/.wh.motd", b""),
        Item::File(b"opt/.wh..wh..opq", b""),
        Item::File(b"opt/new", b"n"),
        Item::File(b"bin/tool", &[0x7f, b'E', b'L', b'F', 0, 1, 2]),
    ]));
    let top = tar_of(&[Item::File(b"etc/os-release", b"NAME=top\n")]);
    let (image, layers) = push_layers(&server, "team/app", "v1", &[base, middle, top]).await;
    let admin = server.client();

    // One layer, a directory at a time, and searched.
    let (status, root) = layer_files(&admin, &server, &image, &layers[0], "", "").await;
    assert_eq!(status, StatusCode::OK, "{root}");
    assert_eq!(root["compression"], "gzip");
    assert_eq!(
        rows(&root),
        [("etc".into(), "dir".into()), ("opt".into(), "dir".into())]
    );
    let (_, etc) = layer_files(&admin, &server, &image, &layers[0], "etc", "").await;
    let release = row(&etc, "etc/os-release");
    assert_eq!(release["mode"], 0o644);
    assert_eq!(release["uid"], 1000);
    assert_eq!(release["mtime"], 1_700_000_000);
    assert_eq!(
        release["content_digest"],
        sha256(b"NAME=\"Berth <test>\"\n")
    );
    let (_, found) = layer_files(&admin, &server, &image, &layers[1], "", "TOOL").await;
    assert_eq!(rows(&found), [("bin/tool".into(), "file".into())]);
    let (_, middle_root) = layer_files(&admin, &server, &image, &layers[1], "", "").await;
    assert_eq!(middle_root["compression"], "zstd");
    let (_, whiteouts) = layer_files(&admin, &server, &image, &layers[1], "", "wh.").await;
    assert_eq!(
        rows(&whiteouts),
        [
            ("etc/.wh.motd".into(), "whiteout".into()),
            ("opt/.wh..wh..opq".into(), "opaque".into())
        ]
    );

    // The merged view: whiteouts and the opaque directory applied, each file from its layer.
    let merged = image_files(&admin, &server, &image, "/").await;
    let paths: Vec<String> = rows(&merged).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["bin/tool", "etc/os-release", "opt/new"], "{merged}");
    assert_eq!(row(&merged, "etc/os-release")["layer"], 2);
    assert_eq!(row(&merged, "bin/tool")["layer"], 1);
    assert_eq!(
        row(&merged, "etc/os-release")["layer_digest"],
        layers[2].as_str()
    );

    // A text file's content (escaped by the page), a binary one said to be binary.
    let entry = release["entry"].as_u64().unwrap();
    let text_path = format!(
        "/console/api/file-text?namespace=team&stream=app&image={}&layer={}&entry={entry}",
        enc(&image),
        enc(&layers[0])
    );
    let (status, text) = read(&admin, &server, &text_path).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text["text"], "NAME=\"Berth <test>\"\n");
    let tool = row(&found, "bin/tool")["entry"].as_u64().unwrap();
    let binary_path = format!(
        "/console/api/file-text?namespace=team&stream=app&image={}&layer={}&entry={tool}",
        enc(&image),
        enc(&layers[1])
    );
    let (_, binary) = read(&admin, &server, &binary_path).await;
    assert_eq!(binary["text"], Value::Null);

    // A download: an attachment of the exact bytes, never sniffed.
    let response = admin
        .get(server.url(&download_path(&image, &layers[1], tool)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        common::header(&response, "content-type"),
        "application/octet-stream"
    );
    assert_eq!(
        common::header(&response, "x-content-type-options"),
        "nosniff"
    );
    assert_eq!(
        common::header(&response, "content-disposition"),
        "attachment; filename=\"tool\""
    );
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        &[0x7f, b'E', b'L', b'F', 0, 1, 2]
    );

    // A layer of another image, or not a layer at all, is not found through this image.
    let (status, _) = layer_files(&admin, &server, &image, &sha256(b"elsewhere"), "", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Someone who may not pull the stream sees none of it; once they may, they do.
    let stranger = server.user("stranger");
    let (status, refused) = layer_files(&stranger, &server, &image, &layers[0], "", "").await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status} {refused}"
    );
    let (status, _) = read(&stranger, &server, &text_path).await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND);
    let refused = stranger
        .get(server.url(&download_path(&image, &layers[1], tool)))
        .send()
        .await
        .unwrap();
    assert!(
        refused.status() == StatusCode::FORBIDDEN || refused.status() == StatusCode::NOT_FOUND,
        "{}",
        refused.status()
    );
    grant_user(&server, "team", "viewer", "stranger").await;
    let (status, _) = layer_files(&stranger, &server, &image, &layers[0], "", "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn hostile_layers_are_listed_as_data_and_never_become_files() {
    let server = TestServer::start();
    let deep = "d/".repeat(10_000) + "bottom";
    let layer = gzip(&tar_of(&[
        Item::File(b"../etc/passwd", b"root:x:0:0\n"),
        Item::File(b"/abs/file", b"absolute"),
        Item::File(b"caf\xe9.txt", b"latin-1 name"),
        Item::Symlink(b"escape", b"../../../../etc/shadow"),
        Item::File(deep.as_bytes(), b"deep"),
        Item::Lying(b"huge", 10 << 30, b"few bytes"),
    ]));
    let (image, layers) = push_layers(&server, "team/app", "v1", &[layer]).await;
    let admin = server.client();
    let (status, all) = layer_files(&admin, &server, &image, &layers[0], "", "e").await;
    assert_eq!(status, StatusCode::OK, "{all}");

    let passwd = row(&all, "etc/passwd");
    assert_eq!(passwd["stored_as"], "../etc/passwd");
    assert_eq!(row(&all, "abs/file")["stored_as"], "/abs/file");
    assert_eq!(row(&all, "escape")["link_target"], "../../../../etc/shadow");
    let huge = row(&all, "huge");
    assert_eq!(huge["size"], 10u64 << 30);
    assert_eq!(huge["truncated"], true);
    let notes = all["notes"].to_string();
    assert!(notes.contains("could not be read to its end"), "{notes}");
    assert!(
        notes.contains("1 entries with a name longer or deeper"),
        "{notes}"
    );

    // The non-UTF-8 name, shown lossily, still downloads by its entry.
    let (_, latin) = layer_files(&admin, &server, &image, &layers[0], "", "caf").await;
    let latin = &latin["rows"][0];
    assert_eq!(latin["path"], "caf\u{fffd}.txt");
    let entry = latin["entry"].as_u64().unwrap();
    let response = admin
        .get(server.url(&download_path(&image, &layers[0], entry)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        common::header(&response, "content-disposition"),
        "attachment; filename=\"caf_.txt\""
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"latin-1 name");

    // The truncated file is refused with the reason, not a 500.
    let huge_entry = huge["entry"].as_u64().unwrap();
    let response = admin
        .get(server.url(&download_path(&image, &layers[0], huge_entry)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("ends before its declared size")
    );

    // Nothing of the layer became a file name on the server.
    let mut names = Vec::new();
    let mut stack = vec![server.data_dir().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            names.push(entry.file_name().to_string_lossy().into_owned());
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    for name in ["passwd", "etc", "abs", "escape", "huge", "bottom", "d"] {
        assert!(!names.iter().any(|n| n == name), "{name} in {names:?}");
    }
}

#[tokio::test]
async fn a_decompression_bomb_stops_at_the_bound_with_a_message() {
    let server = TestServer::start_with_config("[layers]\nmax_uncompressed_bytes = 4000000\n", &[]);
    // 64 MiB of zeros as 64 gzip members of one MiB each, the first with the tar header.
    let zeros = vec![0u8; 1 << 20];
    let mut header = tar::Header::new_gnu();
    header.set_size(64 << 20);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.as_gnu_mut().unwrap().name[..4].copy_from_slice(b"bomb");
    header.set_cksum();
    let mut first = header.as_bytes().to_vec();
    first.extend_from_slice(&zeros);
    let best = |data: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    };
    let mut layer = best(&first);
    let member = best(&zeros);
    for _ in 1..64 {
        layer.extend_from_slice(&member);
    }
    assert!(layer.len() < 200_000, "{}", layer.len());
    let (image, layers) = push_layers(&server, "team/app", "v1", &[layer]).await;
    let (status, listing) =
        layer_files(&server.client(), &server, &image, &layers[0], "", "").await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    let notes = listing["notes"].to_string();
    assert!(
        notes.contains("this layer expands to more than 4000000 bytes"),
        "{notes}"
    );
    assert_eq!(row(&listing, "bomb")["truncated"], true);
}

#[tokio::test]
async fn the_index_is_kept_beside_the_blob_and_goes_with_it() {
    let server = TestServer::start_with(&["--gc-grace", "1"]);
    let layer = gzip(&tar_of(&[Item::File(b"file", b"content")]));
    let (image, layers) = push_layers(&server, "team/app", "v1", &[layer]).await;
    let (status, _) = layer_files(&server.client(), &server, &image, &layers[0], "", "").await;
    assert_eq!(status, StatusCode::OK);
    let hex = layers[0].trim_start_matches("sha256:");
    let index_dir = server
        .data_dir()
        .join("indexes/sha256")
        .join(&hex[..2])
        .join(hex);
    let blob = server
        .data_dir()
        .join("blobs/sha256")
        .join(&hex[..2])
        .join(hex);
    assert!(index_dir.join("layer-files.v1").is_file());
    expect_status(
        server.delete(&format!("/v2/team/app/manifests/{image}")),
        StatusCode::ACCEPTED,
    )
    .await;
    wait_until("the blob and its index are collected", async || {
        if blob.exists() || index_dir.exists() {
            Err(format!(
                "blob {}, index {}",
                blob.exists(),
                index_dir.exists()
            ))
        } else {
            Ok(())
        }
    })
    .await;
}

/// Text-like bytes that deflate compresses in many blocks.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"abcdefghij klmnop\n"[(state % 18) as usize]
        })
        .collect()
}

#[tokio::test]
async fn a_file_is_read_from_the_checkpoint_before_it_and_the_index_is_built_once() {
    let dir = tempfile::tempdir().unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.path()).await.unwrap());
    let mut items = Vec::new();
    let names: Vec<String> = (0..16).map(|i| format!("part-{i:02}")).collect();
    let parts: Vec<Vec<u8>> = (0..16).map(|i| noise(512 * 1024, i + 1)).collect();
    for (name, part) in names.iter().zip(&parts) {
        items.push(Item::File(name.as_bytes(), part));
    }
    for (compression, layer) in [
        ("gzip", gzip(&tar_of(&items))),
        ("zstd", zstd_frames(&tar_of(&items))),
    ] {
        let digest: berth::oci::Digest = sha256(&layer).parse().unwrap();
        store_blob(&blobs, &digest, &layer).await;
        let limits = LayerLimits {
            checkpoint_spacing_bytes: 1 << 20,
            ..LayerLimits::default()
        };
        let layers = Arc::new(Layers::new(blobs.clone(), limits.clone()));
        // Eight openers at once: one build.
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let (layers, digest) = (layers.clone(), digest.clone());
                tokio::spawn(async move { layers.index(&digest).await.unwrap() })
            })
            .collect();
        for open in opens {
            let index = open.await.unwrap();
            assert_eq!(index.entries.len(), 16, "{compression}");
        }
        assert_eq!(layers.builds(), 1, "{compression}");
        let last = 15;
        let read = layers.read(&digest, last, u64::MAX).await.unwrap();
        assert_eq!(read.bytes, parts[last], "{compression}");
        assert!(
            read.decoded_from > 6 << 20,
            "{compression}: decoding started at {}",
            read.decoded_from
        );
        // Another process (or after a restart) reads the kept index instead of the layer.
        let again = Layers::new(blobs.clone(), limits);
        assert_eq!(again.index(&digest).await.unwrap().entries.len(), 16);
        assert_eq!(again.builds(), 0, "{compression}");
        let first = again.read(&digest, 0, u64::MAX).await.unwrap();
        assert_eq!(first.bytes, parts[0]);
    }
}

/// zstd in frames of 1 MiB, as chunked zstd writers make them.
fn zstd_frames(data: &[u8]) -> Vec<u8> {
    data.chunks(1 << 20).flat_map(zstd).collect()
}

async fn store_blob(blobs: &Arc<dyn BlobStore>, digest: &berth::oci::Digest, data: &[u8]) {
    let id = berth::storage::UploadId(uuid::Uuid::new_v4());
    let body: berth::storage::IncomingStream = Box::pin(futures_util::stream::once({
        let data = bytes::Bytes::copy_from_slice(data);
        async move { Ok(data) }
    }));
    blobs.write_upload_unhashed(id, 0, body).await.unwrap();
    blobs
        .commit_upload(id, data.len() as u64, digest)
        .await
        .unwrap();
}

/// Bytes of the files under `dir` (the console's layer cache on disk).
fn bytes_under(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() {
                bytes_under(&path)
            } else {
                path.metadata().unwrap().len()
            }
        })
        .sum()
}

/// `/console/api/compare-files` of two tags of team/app, every change.
fn compare_files_path(from: &str, to: &str) -> String {
    format!(
        "/console/api/compare-files?namespace=team&stream=app&from={from}&to={to}&platform=&change=&path=&offset=0"
    )
}

#[tokio::test]
async fn in_front_of_a_cluster_layers_come_from_its_registry_with_each_users_token() {
    use common::upstream::InFront;
    // Room for one image's two layers with their indexes, not for a third layer as well.
    const BOUND: u64 = 50_000;
    let config = tempfile::tempdir().unwrap();
    let front = config.path().join("front.toml");
    std::fs::write(
        &front,
        format!(
            "[upstream]\nlayer_cache_bytes = {BOUND}\n\n[layers]\nmax_uncompressed_bytes = 100000\n"
        ),
    )
    .unwrap();
    let pair = InFront::start_configured("", &["--config", front.to_str().unwrap()]);
    let (cluster, console) = (&pair.upstream, &pair.console);
    let base = gzip(&tar_of(&[
        Item::File(b"etc/os-release", b"NAME=base\n"),
        Item::File(b"opt/filler", &noise(20_000, 1)),
    ]));
    let top = tar_of(&[
        Item::File(b"etc/os-release", b"NAME=\"in front\"\n"),
        Item::File(b"opt/more", &noise(20_000, 2)),
    ]);
    let (image, layers) = push_layers(cluster, "team/app", "v1", &[base.clone(), top]).await;
    let other = tar_of(&[Item::File(b"big", &noise(25_000, 3))]);
    let (other_image, other_layers) = push_layers(cluster, "team/app", "v2", &[other]).await;
    // The same base with a small layer of its own: v1 and v4 compared fit in the cache.
    let small = tar_of(&[Item::File(b"opt/tiny", b"tiny\n")]);
    let (_, _) = push_layers(cluster, "team/app", "v4", &[base.clone(), small]).await;
    let huge = tar_of(&[Item::File(b"huge", &noise(120_000, 4))]);
    let (huge_image, huge_layers) = push_layers(cluster, "team/app", "v3", &[huge]).await;
    cluster.add_user("alice", "alice-password", &[]);
    grant_user(cluster, "team", "viewer", "alice").await;
    cluster.add_user("bob", "bob-password", &[]);
    let (alice, _) = pair.sign_in("alice", "alice-password").await;

    // One layer, the merged view, a text and a download, as inside Berth.
    let (status, etc) = layer_files(&alice, console, &image, &layers[1], "etc", "").await;
    assert_eq!(status, StatusCode::OK, "{etc}");
    assert_eq!(etc["compression"], "none");
    let release = row(&etc, "etc/os-release")["entry"].as_u64().unwrap();
    let merged = image_files(&alice, console, &image, "/").await;
    let paths: Vec<String> = rows(&merged).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        ["etc/os-release", "opt/filler", "opt/more"],
        "{merged}"
    );
    assert_eq!(row(&merged, "etc/os-release")["layer"], 1);
    assert_eq!(row(&merged, "opt/filler")["layer"], 0);
    let text_path = format!(
        "/console/api/file-text?namespace=team&stream=app&image={}&layer={}&entry={release}",
        enc(&image),
        enc(&layers[1])
    );
    let (status, text) = read(&alice, console, &text_path).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text["text"], "NAME=\"in front\"\n");
    let (_, base_etc) = layer_files(&alice, console, &image, &layers[0], "etc", "").await;
    let base_release = row(&base_etc, "etc/os-release")["entry"].as_u64().unwrap();
    let download = download_path(&image, &layers[0], base_release);
    let response = alice.get(console.url(&download)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        common::header(&response, "content-disposition"),
        "attachment; filename=\"os-release\""
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"NAME=base\n");
    // Two images' files compared over their merged views, the layers from the registry.
    let (status, files) = read(&alice, console, &compare_files_path("v1", "v4")).await;
    assert_eq!(status, StatusCode::OK, "{files}");
    let changes: Vec<(String, String)> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().into(),
                c["change"].as_str().unwrap().into(),
            )
        })
        .collect();
    let change = |path: &str, change: &str| (path.to_owned(), change.to_owned());
    assert_eq!(
        changes,
        [
            change("etc/os-release", "Changed"),
            change("opt/more", "Removed"),
            change("opt/tiny", "Added")
        ],
        "{files}"
    );
    // Images whose layers together exceed the cache are refused, naming the setting.
    let (status, refused) = read(&alice, console, &compare_files_path("v1", "v2")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused.to_string().contains("[upstream] layer_cache_bytes"),
        "{refused}"
    );
    // A layer the image's manifest does not list is not shown through it.
    let (status, _) = layer_files(&alice, console, &image, &other_layers[0], "", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bob may not pull team/app: the cluster's registry refuses him, though the layers are
    // in the cache now.
    let (bob, _) = pair.sign_in("bob", "bob-password").await;
    let (status, refused) = layer_files(&bob, console, &image, &layers[1], "", "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["Forbidden"]
            .as_str()
            .unwrap()
            .contains("bob may not pull team/app"),
        "{refused}"
    );
    let (status, _) = read(
        &bob,
        console,
        &format!(
            "/console/api/image-files?namespace=team&stream=app&image={}&dir=&search=&offset=0",
            enc(&image)
        ),
    )
    .await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND);
    let (status, _) = read(&bob, console, &compare_files_path("v1", "v4")).await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND);
    let (status, _) = read(&bob, console, &text_path).await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND);
    let refused = bob.get(console.url(&download)).send().await.unwrap();
    assert!(
        refused.status() == StatusCode::FORBIDDEN || refused.status() == StatusCode::NOT_FOUND,
        "{}",
        refused.status()
    );

    // Another image's layer evicts the least recently used; the cache stays in its bound.
    let cache = console.data_dir().join("upstream-layers");
    let blob_of = |digest: &str| {
        let hex = digest.trim_start_matches("sha256:").to_owned();
        cache.join("blobs/sha256").join(&hex[..2]).join(hex)
    };
    assert!(blob_of(&layers[0]).is_file() && blob_of(&layers[1]).is_file());
    let (status, listing) =
        layer_files(&alice, console, &other_image, &other_layers[0], "", "").await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    assert!(blob_of(&other_layers[0]).is_file());
    assert!(
        !blob_of(&layers[1]).is_file(),
        "the least recently used layer is evicted"
    );
    let kept = bytes_under(&cache);
    assert!(kept <= BOUND, "{kept} bytes kept, more than {BOUND}");
    // An evicted layer is fetched again when asked for.
    let (status, _) = layer_files(&alice, console, &image, &layers[1], "", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes_under(&cache) <= BOUND);

    // A layer larger than [layers] allows is refused, with the same words as inside Berth.
    let (status, refused) =
        layer_files(&alice, console, &huge_image, &huge_layers[0], "", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("raise [layers] max_uncompressed_bytes"),
        "{refused}"
    );
}
