//! Pruning and retention against the running server with real clients: skopeo pushes
//! revisions, `berth adm prune images` lists what would go and removes it with --confirm, kept
//! tags still pull and removed digests answer MANIFEST_UNKNOWN; who may prune what; the
//! scheduled pruner; retention policies, their runs, and pull times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

use common::images::{raw_manifest, skopeo_copy, umoci_image};
use common::{
    TestServer, create_namespace, error_code_of, expect_kube_status, grant_user, json_of,
    push_image,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `berth adm prune images ARGS` against `server` with `token`: (success, stdout, stderr).
fn prune_cli(server: &TestServer, token: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["adm", "prune", "images"])
        .args(args)
        .env("BERTH_SERVER", &server.base)
        .env("BERTH_TOKEN", token)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The config and layer digests and sizes of an image manifest.
fn blobs_of(manifest: &str) -> Vec<(String, u64)> {
    let manifest: Value = serde_json::from_str(manifest).unwrap();
    std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_owned(),
                d["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Pushes an image built by umoci as `repository:tag` with skopeo; answers its digest and
/// manifest.
fn skopeo_push(
    server: &TestServer,
    layout: &std::path::Path,
    repository: &str,
    tag: &str,
) -> (String, String) {
    let source = format!("oci:{}", umoci_image(layout, tag, "amd64", 1));
    let destination = format!("docker://{}/{repository}:{tag}", server.addr);
    skopeo_copy(&source, &destination, &server.creds());
    let raw = raw_manifest(&destination, Some(&server.creds()));
    (common::sha256(raw.as_bytes()), raw)
}

/// Posts `body` to `path` as the administrator, expecting 201 Created.
async fn create(server: &TestServer, path: &str, body: &Value) -> Value {
    let response = server.post(path).json(body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn deleted_digests(answer: &Value) -> BTreeSet<String> {
    answer["status"]["imageStreams"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["deletedImages"].as_array().unwrap().iter())
        .map(|i| i["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn skopeo_revisions_are_listed_by_a_dry_run_and_removed_with_confirm() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let creds = server.creds();
    let app = format!("docker://{}/team/app", server.addr);
    // Four revisions of team/app:latest; the second is also other/app:v1 (its blobs are held
    // there too, so they are not freed).
    let mut revisions = Vec::new();
    let mut manifests = HashMap::new();
    for n in 1..=4 {
        let source = format!("oci:{}", umoci_image(&layout, &format!("r{n}"), "amd64", 1));
        skopeo_copy(&source, &format!("{app}:latest"), &creds);
        if n == 2 {
            skopeo_copy(
                &source,
                &format!("docker://{}/other/app:v1", server.addr),
                &creds,
            );
        }
        let raw = raw_manifest(&format!("{app}:latest"), Some(&creds));
        let digest = common::sha256(raw.as_bytes());
        manifests.insert(digest.clone(), raw);
        revisions.push(digest);
    }
    let kept_blobs: BTreeSet<String> = blobs_of(&manifests[&revisions[3]])
        .into_iter()
        .chain(blobs_of(&manifests[&revisions[1]]))
        .map(|(digest, _)| digest)
        .collect();
    let freed: BTreeSet<(String, u64)> = revisions[..3]
        .iter()
        .flat_map(|d| blobs_of(&manifests[d]))
        .filter(|(digest, _)| !kept_blobs.contains(digest))
        .collect();
    let expected_bytes: u64 = freed.iter().map(|(_, size)| size).sum();
    assert!(expected_bytes > 0);

    // The dry run lists the three older revisions and their images, and changes nothing.
    let (ok, out, err) = prune_cli(
        &server,
        &server.admin_token,
        &["--keep-tag-revisions=1", "--keep-younger-than=0s"],
    );
    assert!(ok, "{out}{err}");
    assert!(err.contains("Dry run enabled"), "{err}");
    assert!(
        out.contains("Deleting 3 items from image stream team/app"),
        "{out}"
    );
    for old in &revisions[..3] {
        assert!(
            out.contains(&format!(
                "Deleting manifest link {old} in repository team/app"
            )),
            "{old}: {out}"
        );
    }
    assert!(!out.contains(&revisions[3]), "{out}");
    assert!(!out.contains("other/app"), "{out}");
    assert!(
        out.contains(&format!(
            "({expected_bytes} bytes) in {} blob(s)",
            freed.len()
        )),
        "{expected_bytes}: {out}"
    );
    assert_eq!(
        server
            .get(&format!("/v2/team/app/manifests/{}", revisions[0]))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // The API answers the same; with the default --keep-younger-than (60m) nothing is old
    // enough.
    let answer = create(
        &server,
        "/apis/berth.io/v1/imageprunes",
        &json!({"spec": {"keepTagRevisions": 1, "keepYoungerThan": "0s"}}),
    )
    .await;
    assert_eq!(answer["kind"], "ImagePrune");
    assert_eq!(answer["status"]["dryRun"], true);
    assert_eq!(answer["status"]["deletedItems"], 3);
    assert_eq!(answer["status"]["deletedImages"], 3);
    assert_eq!(answer["status"]["bytesFreed"], expected_bytes);
    let young = create(
        &server,
        "/apis/berth.io/v1/imageprunes",
        &json!({"spec": {"keepTagRevisions": 1}}),
    )
    .await;
    assert_eq!(young["status"]["deletedItems"], 0, "{young}");
    assert_eq!(young["status"]["deletedImages"], 0, "{young}");
    expect_kube_status(
        server
            .post("/apis/berth.io/v1/imageprunes")
            .json(&json!({"spec": {"keepYoungerThan": "an hour"}})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;

    // Confirmed: they go, the kept tag still pulls, the removed digests are unknown.
    let (ok, out, err) = prune_cli(
        &server,
        &server.admin_token,
        &[
            "--keep-tag-revisions=1",
            "--keep-younger-than=0s",
            "--confirm",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(!err.contains("Dry run"), "{err}");
    assert!(
        out.contains("Summary: deleted 3 image stream tag item(s), deleted 3 image(s)"),
        "{out}"
    );
    for old in &revisions[..3] {
        assert_eq!(
            error_code_of(server.get(&format!("/v2/team/app/manifests/{old}"))).await,
            "MANIFEST_UNKNOWN"
        );
    }
    let back = format!("oci:{}:latest", work.path().join("back").display());
    skopeo_copy(&format!("{app}:latest"), &back, &creds);
    let other = format!("oci:{}:v1", work.path().join("other").display());
    skopeo_copy(
        &format!("docker://{}/other/app:v1", server.addr),
        &other,
        &creds,
    );
    let stream =
        json_of(server.get("/apis/image.openshift.io/v1/namespaces/team/imagestreams/app")).await;
    let items = stream["status"]["tags"][0]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["image"], revisions[3].as_str());
    // Nothing more to do.
    let (ok, out, _) = prune_cli(
        &server,
        &server.admin_token,
        &[
            "--keep-tag-revisions=1",
            "--keep-younger-than=0s",
            "--confirm",
        ],
    );
    assert!(ok && out.contains("Summary: deleted 0 objects"), "{out}");
}

/// `--prune-over-size-limit`: every revision and image larger than the namespace's
/// `openshift.io/Image` `max.storage` goes, young as it is; smaller ones stay, and so does the
/// same large image in a namespace without the limit.
#[tokio::test]
async fn images_over_their_namespace_size_limit_go_whatever_their_age() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let creds = server.creds();
    let app = format!("docker://{}/team/app", server.addr);
    // latest: small (one layer), large (three), small; `large` names the large one too.
    let mut pushed = Vec::new();
    let mut sizes = Vec::new();
    for (tag, layers) in [("s1", 1), ("large", 3), ("s2", 1)] {
        let source = format!("oci:{}", umoci_image(&layout, tag, "amd64", layers));
        skopeo_copy(&source, &format!("{app}:latest"), &creds);
        let raw = raw_manifest(&format!("{app}:latest"), Some(&creds));
        pushed.push(common::sha256(raw.as_bytes()));
        sizes.push(blobs_of(&raw).iter().map(|(_, size)| size).sum::<u64>());
        if tag == "large" {
            skopeo_copy(&source, &format!("{app}:large"), &creds);
            skopeo_copy(
                &source,
                &format!("docker://{}/other/app:large", server.addr),
                &creds,
            );
        }
    }
    let large = pushed[1].clone();
    let max = (sizes[0].max(sizes[2]) + sizes[1]) / 2;
    assert!(
        sizes[0] < max && sizes[2] < max && max < sizes[1],
        "{sizes:?}"
    );
    let limit = json!({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "images"},
        "spec": {"limits": [{"type": "openshift.io/Image", "max": {"storage": max.to_string()}}]},
    });
    create(&server, "/api/v1/namespaces/team/limitranges", &limit).await;

    // oc's rule: not with the revision or age flags, from the CLI or the API.
    let (ok, _, err) = prune_cli(
        &server,
        &server.admin_token,
        &["--prune-over-size-limit", "--keep-tag-revisions=1"],
    );
    assert!(!ok && err.contains("--keep-tag-revisions"), "{err}");
    let refused = expect_kube_status(
        server
            .post("/apis/berth.io/v1/imageprunes")
            .json(&json!({"spec": {"pruneOverSizeLimit": true, "keepYoungerThan": "1h"}})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    assert_eq!(
        refused["details"]["causes"][0]["field"], "spec.pruneOverSizeLimit",
        "{refused}"
    );

    // The dry run names the large image in team only; the default rules would remove nothing
    // this young.
    let (ok, out, err) = prune_cli(&server, &server.admin_token, &["--prune-over-size-limit"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!(
            "Deleting manifest link {large} in repository team/app"
        )),
        "{out}"
    );
    assert!(!out.contains("other/app"), "{out}");
    assert!(
        !out.contains(&pushed[0]) && !out.contains(&pushed[2]),
        "{out}"
    );
    let (ok, out, _) = prune_cli(&server, &server.admin_token, &[]);
    assert!(ok && out.contains("Summary: deleted 0 objects"), "{out}");

    // Confirmed: the large image and its revisions go; `latest` still names the newest small
    // one, with the first still in its history; `large` is gone; other/app keeps its copy.
    let (ok, out, err) = prune_cli(
        &server,
        &server.admin_token,
        &["--prune-over-size-limit", "-n", "team", "--confirm"],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Summary: deleted 2 image stream tag item(s), deleted 1 image(s)"),
        "{out}"
    );
    assert_eq!(
        error_code_of(server.get(&format!("/v2/team/app/manifests/{large}"))).await,
        "MANIFEST_UNKNOWN"
    );
    let stream =
        json_of(server.get("/apis/image.openshift.io/v1/namespaces/team/imagestreams/app")).await;
    let tags = stream["status"]["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1, "{stream}");
    assert_eq!(tags[0]["tag"], "latest");
    let items: Vec<&str> = tags[0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["image"].as_str().unwrap())
        .collect();
    assert_eq!(items, [pushed[2].as_str(), pushed[0].as_str()]);
    let back = format!("oci:{}:large", work.path().join("other").display());
    skopeo_copy(
        &format!("docker://{}/other/app:large", server.addr),
        &back,
        &creds,
    );
}

#[tokio::test]
async fn only_cluster_admins_prune_everywhere_and_namespace_admins_only_their_own() {
    let server = TestServer::start();
    let alice_token = server.add_user("alice", "alice-password", &[]);
    let alice = common::client_with_token(&alice_token);
    let bob = server.user("bob");
    create_namespace(&server.client(), &server, "alice-ns").await;
    create_namespace(&server.client(), &server, "bob-ns").await;
    grant_user(&server, "alice-ns", "admin", "alice").await;
    grant_user(&server, "bob-ns", "admin", "bob").await;
    let old = push_image(&server, "alice-ns/app", "v1", "a1").await;
    push_image(&server, "alice-ns/app", "v1", "a2").await;
    push_image(&server, "bob-ns/app", "v1", "b1").await;
    push_image(&server, "bob-ns/app", "v1", "b2").await;
    let spec = json!({"spec": {"keepTagRevisions": 1, "keepYoungerThan": "0s"}});

    // Cluster-wide: Forbidden for a namespace admin, through the API and the CLI.
    let refused = expect_kube_status(
        alice
            .post(server.url("/apis/berth.io/v1/imageprunes"))
            .json(&spec),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("imageprunes.berth.io"),
        "{refused}"
    );
    let (ok, _, err) = prune_cli(&server, &alice_token, &["--keep-younger-than=0s"]);
    assert!(!ok && err.contains("Forbidden"), "{err}");
    // Another namespace: Forbidden, whether pruned or its policies read.
    expect_kube_status(
        alice
            .post(server.url("/apis/berth.io/v1/namespaces/bob-ns/imageprunes"))
            .json(&spec),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    expect_kube_status(
        alice.get(server.url("/apis/berth.io/v1/namespaces/bob-ns/retentionpolicies")),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    // Her own: she prunes it, and sees only it.
    let (ok, out, err) = prune_cli(
        &server,
        &alice_token,
        &[
            "-n",
            "alice-ns",
            "--keep-tag-revisions=1",
            "--keep-younger-than=0s",
            "--confirm",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains(&old) && !out.contains("bob-ns"), "{out}");
    assert_eq!(
        error_code_of(server.get(&format!("/v2/alice-ns/app/manifests/{old}"))).await,
        "MANIFEST_UNKNOWN"
    );
    // Bob's namespace was not touched.
    let bobs =
        json_of(server.get("/apis/image.openshift.io/v1/namespaces/bob-ns/imagestreams/app")).await;
    assert_eq!(
        bobs["status"]["tags"][0]["items"].as_array().unwrap().len(),
        2
    );

    // The scheduled pruner is the cluster administrators'.
    expect_kube_status(
        bob.get(server.url("/apis/berth.io/v1/imagepruners/cluster")),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    expect_kube_status(
        server.get("/apis/berth.io/v1/imagepruners/cluster"),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    expect_kube_status(
        server
            .put("/apis/berth.io/v1/imagepruners/cluster")
            .json(&json!({"spec": {"schedule": "whenever"}})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    let made = json_of(
        server
            .put("/apis/berth.io/v1/imagepruners/cluster")
            .json(&json!({"spec": {"suspend": true, "keepTagRevisions": 5}})),
    )
    .await;
    assert_eq!(made["spec"]["schedule"], "0 0 * * *");
    assert_eq!(made["kind"], "ImagePruner");
}

#[tokio::test]
async fn the_scheduled_pruner_runs_on_its_schedule_and_shows_its_last_run() {
    let server = TestServer::start_with_config("[prune]\nschedule_check_seconds = 1\n", &[]);
    let old = push_image(&server, "team/app", "latest", "s1").await;
    push_image(&server, "team/app", "latest", "s2").await;
    let put = json_of(
        server
            .put("/apis/berth.io/v1/imagepruners/cluster")
            .json(&json!({"spec": {
                "schedule": "* * * * *",
                "keepTagRevisions": 1,
                "keepYoungerThanDuration": "0s"
            }})),
    )
    .await;
    assert!(put["status"].is_null(), "{put}");
    // The next minute's run (within 60 s, then a look a second) removes the old revision and
    // says so.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let run = loop {
        let pruner = json_of(server.get("/apis/berth.io/v1/imagepruners/cluster")).await;
        if !pruner["status"]["lastRun"].is_null() {
            break pruner["status"]["lastRun"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no run yet: {pruner}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(run["dryRun"], false);
    assert_eq!(run["deletedImages"], 1, "{run}");
    assert_eq!(
        error_code_of(server.get(&format!("/v2/team/app/manifests/{old}"))).await,
        "MANIFEST_UNKNOWN"
    );
}

#[tokio::test]
async fn retention_keeps_what_its_rules_name_and_counts_pulls() {
    let server = TestServer::start_with_config(
        "[prune]\npull_flush_seconds = 1\nretention_grace_seconds = 0\n",
        &[],
    );
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let mut digests = HashMap::new();
    for tag in ["v1", "v2", "v3", "release-1"] {
        digests.insert(tag, skopeo_push(&server, &layout, "team/app", tag).0);
        // Pushes at distinct times, so that "most recently pushed" has an order.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let base = "/apis/berth.io/v1/namespaces/team/retentionpolicies";
    create(
        &server,
        base,
        &json!({
            "metadata": {"name": "keep-two"},
            "spec": {
                "repositories": {"include": ["app*"]},
                "rules": [
                    {"tags": {"include": ["v*"]}, "mostRecentlyPushed": 2},
                    {"tags": {"include": ["release-*"]}, "always": true}
                ]
            }
        }),
    )
    .await;
    assert_eq!(
        common::item_names(&json_of(server.get(base)).await),
        ["keep-two"]
    );

    // The dry run lists v1 only, and changes nothing; confirmed, v1 goes and the rest pulls.
    let dry = json_of(
        server
            .post(&format!("{base}/keep-two/run"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(dry["kind"], "RetentionRun");
    assert_eq!(dry["status"]["dryRun"], true);
    assert_eq!(
        deleted_digests(&dry),
        BTreeSet::from([digests["v1"].clone()]),
        "{dry}"
    );
    let confirmed = json_of(
        server
            .post(&format!("{base}/keep-two/run"))
            .json(&json!({"confirm": true})),
    )
    .await;
    assert_eq!(
        deleted_digests(&confirmed),
        BTreeSet::from([digests["v1"].clone()])
    );
    assert_eq!(
        error_code_of(server.get(&format!("/v2/team/app/manifests/{}", digests["v1"]))).await,
        "MANIFEST_UNKNOWN"
    );
    let policy = json_of(server.get(&format!("{base}/keep-two"))).await;
    assert_eq!(policy["status"]["lastRun"]["deletedImages"], 1, "{policy}");

    // A pull is recorded (within a second here); a policy keeping the most recently pulled
    // tag lists the tags never pulled.
    skopeo_copy(
        &format!("docker://{}/team/app:v2", server.addr),
        &format!("oci:{}:v2", work.path().join("pulled").display()),
        &server.creds(),
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    create(
        &server,
        base,
        &json!({
            "metadata": {"name": "pulled"},
            "spec": {"rules": [{"mostRecentlyPulled": 1}], "schedule": "0 3 * * *"}
        }),
    )
    .await;
    let by_pull = json_of(server.post(&format!("{base}/pulled/run")).json(&json!({}))).await;
    assert_eq!(
        deleted_digests(&by_pull),
        BTreeSet::from([digests["v3"].clone(), digests["release-1"].clone()])
    );

    // Specs are checked; policies are deleted.
    expect_kube_status(
        server.put(&format!("{base}/pulled")).json(&json!({
            "spec": {"rules": [{"mostRecentlyPulled": 1, "always": true}]}
        })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    expect_kube_status(server.delete(&format!("{base}/pulled")), StatusCode::OK, "").await;
    expect_kube_status(
        server.get(&format!("{base}/pulled")),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
}

#[tokio::test]
async fn pushes_during_confirmed_prunes_succeed_and_stay_whole() {
    let server = std::sync::Arc::new(TestServer::start());
    let pusher = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut pushed = Vec::new();
            for n in 0..30 {
                pushed.push(push_image(&server, "team/live", "live", &format!("live-{n}")).await);
            }
            pushed
        })
    };
    // Prunes as fast as they go while the pushes run: every revision but the newest is a
    // candidate at once.
    let mut runs = 0;
    while !pusher.is_finished() {
        let answer = create(
            &server,
            "/apis/berth.io/v1/imageprunes",
            &json!({"spec": {"keepTagRevisions": 1, "keepYoungerThan": "0s", "confirm": true}}),
        )
        .await;
        assert!(answer["status"]["errors"].is_null(), "{answer}");
        runs += 1;
    }
    let pushed = pusher.await.unwrap();
    assert!(runs > 1, "{runs}");
    // The tag names the last push, whose manifest and blobs are all there.
    let newest = pushed.last().unwrap();
    let response = server
        .get("/v2/team/live/manifests/live")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let manifest = response.text().await.unwrap();
    assert_eq!(&common::sha256(manifest.as_bytes()), newest);
    for (blob, _) in blobs_of(&manifest) {
        let status = server
            .get(&format!("/v2/team/live/blobs/{blob}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{blob}");
    }
}
