//! What tag immutability rules cost a push: `cargo bench -p berth --bench immutability`.
//!
//! On the embedded store (SQLite in a temporary folder), the median of 400 manifest PUTs
//! (`MetadataStore::put_manifest`, the whole transaction a push's manifest PUT makes) in a
//! namespace with no rules and in one with five (which protect `v1` and not `latest`), pushed
//! to in turn: a push of a new tag (which reads no rule), a push that moves `latest` to another
//! image (which reads the namespace's rules in its transaction and matches them), and a push of
//! another image to `v1` (moved without rules; read, matched and rolled back with them). Then the time to match one tag against five compiled
//! rules. The HTTP layer in front is the same with or without rules.

use std::time::{Duration, Instant};

use berth::oci::Digest;
use berth::oci::{RepositoryName, Tag};
use berth::storage::immutability::{
    CompiledRule, ImmutableTagRuleRecord, ImmutableTagRuleStore, PatternLists, protecting_rule,
};
use berth::storage::sqlite::SqliteMetadata;
use berth::storage::{ImageStreamStore, Labels, MetadataStore, NewManifest, StorageError};
use bytes::Bytes;

const SAMPLES: usize = 400;
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An empty index: a manifest with no references, so pushing needs no blobs.
fn empty_index(seed: &str) -> NewManifest {
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

fn lists(include: &[&str], exclude: &[&str]) -> PatternLists {
    PatternLists {
        include: include.iter().map(|p| p.to_string()).collect(),
        exclude: exclude.iter().map(|p| p.to_string()).collect(),
    }
}

/// Five rules of the shapes people write: releases by version, a few named tags, by stream.
fn five_rules() -> Vec<(&'static str, PatternLists, PatternLists)> {
    vec![
        (
            "a-releases",
            lists(&["**"], &["scratch/**"]),
            lists(&["v*", "release-*"], &["*-rc*"]),
        ),
        (
            "b-stable",
            lists(&["app", "web"], &[]),
            lists(&["{stable,prod}"], &[]),
        ),
        (
            "c-dated",
            lists(&["team/*"], &[]),
            lists(&["20[0-9][0-9]-*"], &[]),
        ),
        ("d-base", lists(&["base-*"], &[]), lists(&["**"], &[])),
        ("e-lts", lists(&["**/lts"], &[]), lists(&["*-lts"], &[])),
    ]
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

/// A store in `dir` with namespace `bench` holding the first `rules` of [`five_rules`], and
/// `bench/app:v1` pushed.
async fn store_with_rules(dir: &std::path::Path, rules: usize) -> SqliteMetadata {
    let store = SqliteMetadata::open(&dir.join("berth.db"))
        .await
        .expect("store");
    store
        .create_namespace("bench", &Labels::new(), &Labels::new())
        .await
        .expect("namespace");
    for (name, repositories, tags) in five_rules().into_iter().take(rules) {
        store
            .create_tag_rule(&ImmutableTagRuleRecord {
                namespace: "bench".into(),
                name: name.into(),
                uid: format!("bench-{rules}-{name}"),
                repositories,
                tags,
                disabled: false,
                resource_version: 0,
                created_at: chrono::Utc::now(),
            })
            .await
            .expect("rule");
    }
    store
        .put_manifest(&app(), &empty_index("first"), Some(&tag("v1")))
        .await
        .expect("first push");
    store
}

fn app() -> RepositoryName {
    "bench/app".parse().expect("name")
}

fn tag(name: &str) -> Tag {
    name.parse().expect("tag")
}

/// The time of one push of image `seed` to `tag`; refusals by a rule count as pushes.
async fn push(store: &SqliteMetadata, tag: &Tag, seed: &str) -> Duration {
    let started = Instant::now();
    match store
        .put_manifest(&app(), &empty_index(seed), Some(tag))
        .await
    {
        Ok(_) | Err(StorageError::TagImmutable(_)) => started.elapsed(),
        Err(err) => panic!("{err}"),
    }
}

/// Median times (new tag, moved `latest`, overwrite of protected `v1`) without rules and with
/// five, the two stores pushed to in turn so that the machine's drift falls on both alike.
async fn pushes() -> [[f64; 3]; 2] {
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let stores = [
        store_with_rules(dirs[0].path(), 0).await,
        store_with_rules(dirs[1].path(), 5).await,
    ];
    let mut samples: [[Vec<Duration>; 3]; 2] = Default::default();
    let (latest, v1) = (tag("latest"), tag("v1"));
    for i in 0..SAMPLES + 20 {
        for (store, times) in stores.iter().zip(&mut samples) {
            let new_tag = tag(&format!("t{i}"));
            let kinds = [(&new_tag, "new"), (&latest, "latest"), (&v1, "v1")];
            for ((tag, kind), times) in kinds.into_iter().zip(times.iter_mut()) {
                times.push(push(store, tag, &format!("{kind}-{i}")).await);
            }
        }
    }
    // The first rounds warm the caches.
    samples.map(|times| times.map(|mut t| median_ms(t.split_off(20))))
}

/// Nanoseconds to find the rule (if any) protecting one tag, among five compiled rules.
fn matching_ns() -> f64 {
    let rules: Vec<_> = five_rules()
        .iter()
        .map(|(name, repositories, tags)| {
            std::sync::Arc::new(CompiledRule::compile(name, repositories, tags).expect("rule"))
        })
        .collect();
    let tags = [
        "latest",
        "v1.2.3",
        "v1.2.3-rc1",
        "2024-06-01",
        "prod",
        "nightly",
    ];
    let rounds = 200_000;
    let started = Instant::now();
    let mut found = 0;
    for round in 0..rounds {
        let tag = tags[round % tags.len()];
        if protecting_rule(&rules, std::hint::black_box("team/app"), tag).is_some() {
            found += 1;
        }
    }
    std::hint::black_box(found);
    started.elapsed().as_secs_f64() * 1e9 / rounds as f64
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        println!("manifest PUT in the store (SQLite), median of {SAMPLES}, milliseconds");
        println!("rules  new tag  moves latest  overwrite of v1");
        for (rules, [new_tag, moved, v1]) in [0, 5].into_iter().zip(pushes().await) {
            let v1_outcome = if rules == 0 { "moves" } else { "refused" };
            println!("{rules:>5}  {new_tag:>7.3}  {moved:>12.3}  {v1:>7.3} ({v1_outcome})");
        }
    });
    println!(
        "matching one tag against five compiled rules: {:.0} ns",
        matching_ns()
    );
}
