//! kubectl against Berth over HTTPS: discovery (aggregated and legacy), `get` with server-side
//! tables (`-A`, `-o wide/yaml/json`, `--chunk-size`, `--selector`), `describe`, `get -w`,
//! `delete`, namespaces, service accounts, secrets, `auth can-i` and `create token`; and two
//! users, each of whom sees nothing of the other's namespace through these paths. Each test is
//! skipped, saying so, when `/usr/bin/kubectl` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::kube::*;
use common::{TestServer, create_namespace, grant_user, json_of, push_image, wait_until, whoami};
use futures_util::StreamExt;
use serde_json::{Value, json};

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
const AGGREGATED: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

/// The lines from `lines` until one contains `wanted` (within 30 s), that line last.
fn lines_until(lines: &mpsc::Receiver<String>, wanted: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let found = line.contains(wanted);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(err) => panic!("no line with {wanted:?} ({err}); saw {seen:#?}"),
        }
    }
}

/// The table's header and the cells of each row, split at runs of two spaces or more.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

fn row_named<'a>(table: &'a [Vec<String>], column: usize, name: &str) -> &'a Vec<String> {
    table
        .iter()
        .find(|row| row.get(column).is_some_and(|cell| cell == name))
        .unwrap_or_else(|| panic!("no row {name:?} in {table:#?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_answers_kubectl_in_both_forms() {
    if kubectl_missing() {
        return;
    }
    let https = start();
    let server = &https.server;
    let kubectl = Kubectl::new(&https, "admin", &server.admin_token, "default");

    // Aggregated discovery, as kubectl asks for it first.
    for (path, group) in [("/api", ""), ("/apis", "image.openshift.io")] {
        let response = server
            .client()
            .get(server.url(path))
            .header("accept", AGGREGATED)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        let list: Value = response.json().await.unwrap();
        assert_eq!(list["kind"], "APIGroupDiscoveryList");
        let item = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["metadata"]["name"].as_str().unwrap_or("") == group)
            .unwrap_or_else(|| panic!("no group {group:?} in {list}"));
        assert_eq!(item["versions"][0]["version"], "v1");
    }
    let all: Value = server
        .client()
        .get(server.url("/apis"))
        .header("accept", AGGREGATED)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["metadata"]["name"].as_str())
        .collect();
    for group in [
        "image.openshift.io",
        "user.openshift.io",
        "authorization.k8s.io",
        "access.berth.io",
        "berth.io",
    ] {
        assert!(groups.contains(&group), "{group} missing from {groups:?}");
    }
    let streams = all["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "imagestreams")
        .unwrap()
        .clone();
    assert_eq!(streams["shortNames"], json!(["is"]));
    assert_eq!(streams["categories"], json!(["all"]));
    assert_eq!(streams["scope"], "Namespaced");

    // The legacy documents.
    let version = json_of(server.get("/version")).await;
    assert_eq!(version["major"], "1");
    let core = json_of(server.get("/api")).await;
    assert_eq!(core["kind"], "APIVersions");
    assert_eq!(core["versions"], json!(["v1"]));
    let image = json_of(server.get("/apis/image.openshift.io/v1")).await;
    assert_eq!(image["kind"], "APIResourceList");
    assert_eq!(image["groupVersion"], "image.openshift.io/v1");
    let tags = image["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "imagestreamtags")
        .unwrap();
    assert_eq!(tags["shortNames"], json!(["istag"]));
    let group = json_of(server.get("/apis/berth.io")).await;
    assert_eq!(group["preferredVersion"]["groupVersion"], "berth.io/v1");
    let core_v1 = json_of(server.get("/api/v1")).await;
    let names: Vec<&str> = core_v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for name in [
        "namespaces",
        "secrets",
        "serviceaccounts",
        "serviceaccounts/token",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }

    // Nothing under /api, /apis or /openapi answers with the console's page.
    for path in [
        "/apis/nothing.example/v1",
        "/apis/image.openshift.io/v2",
        "/api/v2",
        "/apis/image.openshift.io/v1/namespaces/x/nothing",
        "/openapi/v3/apis/nothing.example/v1",
        "/openapi/v4",
    ] {
        let response = server.get(path).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let status: Value = response.json().await.unwrap();
        assert_eq!(status["kind"], "Status", "{path}");
    }

    // kubectl's own view of it.
    let versions = kubectl.ok(&["api-versions"]);
    for version in [
        "v1",
        "image.openshift.io/v1",
        "user.openshift.io/v1",
        "authorization.k8s.io/v1",
        "access.berth.io/v1",
        "berth.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == version),
            "{version}: {versions}"
        );
    }
    let resources = rows(&kubectl.ok(&[
        "api-resources",
        "--api-group=image.openshift.io",
        "-o",
        "wide",
    ]));
    let is = row_named(&resources, 0, "imagestreams");
    assert_eq!(
        is[1..5],
        ["is", "image.openshift.io/v1", "true", "ImageStream"]
    );
    assert!(
        is[5].contains("watch") && is[5].contains("delete"),
        "{is:?}"
    );
    assert_eq!(is[6], "all");
    let isimage = row_named(&resources, 0, "imagestreamimages");
    assert_eq!(isimage[1], "isimage");
    let server_version: Value =
        serde_json::from_str(&kubectl.ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(server_version["serverVersion"]["minor"], "32");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_gets_describes_watches_and_deletes_image_streams() {
    if kubectl_missing() {
        return;
    }
    let https = start();
    let server = &https.server;
    let admin = server.client();
    create_namespace(&admin, server, "team").await;
    create_namespace(&admin, server, "other").await;
    push_image(server, "team/web", "latest", "web-1").await;
    push_image(server, "team/web", "v1", "web-2").await;
    push_image(server, "team/api", "latest", "api-1").await;
    push_image(server, "other/db", "15", "db-1").await;
    let kubectl = Kubectl::new(&https, "admin", &server.admin_token, "team");

    // `oc get is`'s columns.
    let table = rows(&kubectl.ok(&["get", "is"]));
    assert_eq!(table[0], ["NAME", "IMAGE REPOSITORY", "TAGS", "UPDATED"]);
    assert_eq!(table.len(), 3, "{table:#?}");
    let web = row_named(&table, 0, "web");
    assert_eq!(web[1], format!("{}/team/web", server.addr));
    assert!(web[2] == "v1,latest" || web[2] == "latest,v1", "{web:?}");
    assert!(web[3].ends_with(" ago"), "{web:?}");

    let tags = rows(&kubectl.ok(&["get", "istag"]));
    assert_eq!(tags[0], ["NAME", "IMAGE REFERENCE", "UPDATED"]);
    let latest = row_named(&tags, 0, "web:latest");
    assert!(
        latest[1].starts_with(&format!("{}/team/web@sha256:", server.addr)),
        "{latest:?}"
    );
    let wide = rows(&kubectl.ok(&["get", "istag", "-o", "wide"]));
    assert_eq!(
        wide[0],
        ["NAME", "IMAGE REFERENCE", "UPDATED", "IMAGE NAME"]
    );
    assert!(row_named(&wide, 0, "api:latest")[3].starts_with("sha256:"));

    // Every namespace: kubectl adds the namespace column from each row's metadata.
    let everywhere = rows(&kubectl.ok(&["get", "is", "-A"]));
    assert_eq!(
        everywhere[0],
        ["NAMESPACE", "NAME", "IMAGE REPOSITORY", "TAGS", "UPDATED"]
    );
    assert_eq!(row_named(&everywhere, 1, "db")[0], "other");
    assert_eq!(everywhere.len(), 4, "{everywhere:#?}");

    // The objects as they are.
    let yaml = kubectl.ok(&["get", "is", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: ImageStream") && yaml.contains("name: web"),
        "{yaml}"
    );
    let list: Value = serde_json::from_str(&kubectl.ok(&["get", "is", "-o", "json"])).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    let one: Value =
        serde_json::from_str(&kubectl.ok(&["get", "istag", "web:v1", "-o", "json"])).unwrap();
    assert_eq!(one["kind"], "ImageStreamTag");

    // Pages of one, followed through `continue`.
    let paged = rows(&kubectl.ok(&["get", "is", "--chunk-size=1"]));
    assert_eq!(paged.len(), 3, "{paged:#?}");
    let page = json_of(
        admin
            .get(server.url("/apis/image.openshift.io/v1/namespaces/team/imagestreams?limit=1"))
            .header("accept", TABLE),
    )
    .await;
    assert_eq!(page["kind"], "Table");
    assert_eq!(page["rows"].as_array().unwrap().len(), 1);
    assert!(
        !page["metadata"]["continue"].as_str().unwrap().is_empty(),
        "{page}"
    );

    // Label selectors are refused, saying so, rather than ignored.
    let refused = kubectl.fails(&["get", "is", "--selector", "app=web"]);
    assert!(
        refused.contains("labelSelector is not supported"),
        "{refused}"
    );

    let described = kubectl.ok(&["describe", "is", "web"]);
    assert!(
        described.contains("Name:") && described.contains("web"),
        "{described}"
    );
    assert!(described.contains("ImageStream"), "{described}");

    // A watch, in tables: the current streams, then a new one.
    let (mut watch, lines) = kubectl.spawn(&["get", "is", "-w", "--output-watch-events"]);
    lines_until(&lines, "web");
    push_image(server, "team/fresh", "latest", "fresh-1").await;
    let seen = lines_until(&lines, "fresh");
    assert!(seen.last().unwrap().starts_with("ADDED"), "{seen:#?}");
    watch.kill().unwrap();
    let _ = watch.wait();

    // Bookmarks, when asked for: one at once, carrying a version to resume from.
    let response = admin
        .get(server.url(
            "/apis/image.openshift.io/v1/namespaces/team/imagestreams?watch=true&allowWatchBookmarks=true&resourceVersion=0",
        ))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while !text.contains("BOOKMARK") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), body.next())
            .await
            .expect("a bookmark within 30 s")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let bookmark: Value = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|event| event["type"] == "BOOKMARK")
        .unwrap();
    assert_eq!(bookmark["object"]["kind"], "ImageStream");
    assert!(
        bookmark["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    drop(body);

    let deleted = kubectl.ok(&["delete", "is", "api"]);
    assert!(
        deleted.contains("imagestream.image.openshift.io \"api\" deleted"),
        "{deleted}"
    );
    let left = rows(&kubectl.ok(&["get", "is"]));
    assert!(left.iter().all(|row| row[0] != "api"), "{left:#?}");

    // The core resources Berth keeps.
    let namespaces = rows(&kubectl.ok(&["get", "ns"]));
    assert_eq!(namespaces[0], ["NAME", "STATUS", "AGE"]);
    assert_eq!(row_named(&namespaces, 0, "team")[1], "Active");
    kubectl.ok(&["create", "serviceaccount", "builder"]);
    let accounts = rows(&kubectl.ok(&["get", "serviceaccounts"]));
    assert_eq!(accounts[0][0], "NAME");
    row_named(&accounts, 0, "builder");
    let secret = json!({
        "metadata": {"name": "quay"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": r#"{"auths":{"quay.io":{"auth":"dTpw"}}}"#},
    });
    let created = admin
        .post(server.url("/api/v1/namespaces/team/secrets"))
        .json(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let secrets = rows(&kubectl.ok(&["get", "secrets"]));
    assert_eq!(secrets[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(
        row_named(&secrets, 0, "quay")[1],
        "kubernetes.io/dockerconfigjson"
    );

    // Access reviews and TokenRequest.
    assert_eq!(
        kubectl
            .ok(&["auth", "can-i", "get", "imagestreams", "-n", "team"])
            .trim(),
        "yes"
    );
    assert_eq!(
        kubectl
            .ok(&["auth", "can-i", "update", "imagestreams/layers"])
            .trim(),
        "yes"
    );
    let token = kubectl.ok(&["create", "token", "builder", "-n", "team"]);
    let me = whoami(&common::client_with_token(token.trim()), server).await;
    assert!(
        me["metadata"]["name"].as_str().unwrap().contains("builder"),
        "{me}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_sees_nothing_of_another_namespace_through_kubectl() {
    if kubectl_missing() {
        return;
    }
    let https = start();
    let server = &https.server;
    let admin = server.client();
    create_namespace(&admin, server, "team-a").await;
    create_namespace(&admin, server, "team-b").await;
    let alice_token = server.add_user("alice", "alice-password", &[]);
    let bob_token = server.add_user("bob", "bob-password", &[]);
    grant_user(server, "team-a", "admin", "alice").await;
    grant_user(server, "team-b", "admin", "bob").await;
    push_image(server, "team-a/secret-app", "latest", "a-1").await;
    push_image(server, "team-b/bobs-app", "latest", "b-1").await;
    let alice = Kubectl::new(&https, "alice", &alice_token, "team-a");
    let bob = Kubectl::new(&https, "bob", &bob_token, "team-b");

    // Discovery is the same for both and names no object.
    let bob_client = common::client_with_token(&bob_token);
    let alice_client = common::client_with_token(&alice_token);
    for path in ["/api", "/apis", "/apis/image.openshift.io/v1", "/api/v1"] {
        for accept in [AGGREGATED, "application/json"] {
            let of = |client: &reqwest::Client| {
                client.get(server.url(path)).header("accept", accept).send()
            };
            let (a, b) = (
                of(&alice_client).await.unwrap().text().await.unwrap(),
                of(&bob_client).await.unwrap().text().await.unwrap(),
            );
            assert_eq!(a, b, "{path}");
            assert!(
                !b.contains("team-a") && !b.contains("secret-app"),
                "{path}: {b}"
            );
        }
    }

    // Lists and tables.
    let refused = bob.fails(&["get", "is", "-n", "team-a"]);
    assert!(refused.contains("forbidden"), "{refused}");
    let everywhere = bob.ok(&["get", "is", "-A"]);
    assert!(everywhere.contains("bobs-app"), "{everywhere}");
    assert!(
        !everywhere.contains("team-a") && !everywhere.contains("secret-app"),
        "{everywhere}"
    );
    let json_everywhere = bob.ok(&["get", "is", "-A", "-o", "json"]);
    assert!(!json_everywhere.contains("secret-app"), "{json_everywhere}");
    let namespaces = bob.ok(&["get", "ns"]);
    assert!(
        namespaces.contains("team-b") && !namespaces.contains("team-a"),
        "{namespaces}"
    );
    assert!(
        bob.fails(&["get", "istag", "-n", "team-a"])
            .contains("forbidden")
    );
    bob.fails(&["describe", "is", "secret-app", "-n", "team-a"]);
    let can = bob.output(&["auth", "can-i", "get", "imagestreams", "-n", "team-a"]);
    // kubectl prints the review's reason after the answer: `no - User "bob" holds no role ...`.
    let answer = String::from_utf8_lossy(&can.stdout);
    assert!(answer.starts_with("no"), "{answer}");
    assert!(!can.status.success());
    assert_eq!(
        alice.ok(&["auth", "can-i", "get", "imagestreams"]).trim(),
        "yes"
    );

    // A watch of every namespace: alice's change never reaches bob, his own does.
    let (mut watch, lines) = bob.spawn(&["get", "is", "-A", "-w", "--output-watch-events"]);
    lines_until(&lines, "bobs-app");
    push_image(server, "team-a/second-secret", "latest", "a-2").await;
    push_image(server, "team-b/bobs-second", "latest", "b-2").await;
    let seen = lines_until(&lines, "bobs-second");
    assert!(
        seen.iter()
            .all(|line| !line.contains("team-a") && !line.contains("secret")),
        "{seen:#?}"
    );
    watch.kill().unwrap();
    let _ = watch.wait();
    // And alice still sees her own.
    wait_until("alice's streams", async || {
        let listed = alice.ok(&["get", "is"]);
        if listed.contains("second-secret") {
            Ok(())
        } else {
            Err(listed)
        }
    })
    .await;
}

/// Discovery and the routers agree: every verb discovery declares reaches a handler (no
/// `Status` for an unknown path, no 405), so the table cannot promise what is not served.
#[tokio::test(flavor = "multi_thread")]
async fn every_discovered_resource_is_served() {
    let server = TestServer::start();
    create_namespace(&server.client(), &server, "team").await;
    let mut checked = 0;
    for (list_path, group_version) in [("/api/v1", "v1"), ("/apis", "")] {
        let documents = if group_version.is_empty() {
            let groups = json_of(server.get(list_path)).await;
            groups["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| {
                    g["preferredVersion"]["groupVersion"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect::<Vec<_>>()
        } else {
            vec![group_version.to_owned()]
        };
        for group_version in documents {
            let base = if group_version == "v1" {
                "/api/v1".to_owned()
            } else {
                format!("/apis/{group_version}")
            };
            let resources = json_of(server.get(&base)).await;
            for resource in resources["resources"].as_array().unwrap() {
                let name = resource["name"].as_str().unwrap();
                if name.contains('/') {
                    continue;
                }
                let scope = if resource["namespaced"] == true {
                    "/namespaces/team"
                } else {
                    ""
                };
                let collection = format!("{base}{scope}/{name}");
                let verbs: Vec<&str> = resource["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                let mut requests = Vec::new();
                if verbs.contains(&"list") {
                    requests.push(server.get(&collection));
                }
                if verbs.contains(&"create") {
                    requests.push(server.post(&collection).json(&json!({})));
                }
                for verb in ["get", "update", "patch", "delete"] {
                    if verbs.contains(&verb) {
                        let one = format!("{collection}/probe");
                        requests.push(match verb {
                            "get" => server.get(&one),
                            "update" => server.put(&one).json(&json!({})),
                            "patch" => server
                                .patch(&one)
                                .header("content-type", "application/merge-patch+json")
                                .body("{}"),
                            _ => server.delete(&one),
                        });
                    }
                }
                for request in requests {
                    let response = request.send().await.unwrap();
                    let status = response.status();
                    let url = response.url().clone();
                    let body = response.text().await.unwrap();
                    assert_ne!(status, 405, "{url}: {body}");
                    // An unknown path's `Status` names the path; a missing object is fine.
                    assert!(
                        !body.contains("could not find the requested resource (/"),
                        "{url} is not served: {body}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 40, "{checked}");
}

/// `kubectl patch TARGET --type=TYPE -p BODY`'s arguments.
fn patch<'a>(target: &'a str, patch_type: &'a str, body: &'a str) -> [&'a str; 6] {
    ["patch", target, "--type", patch_type, "-p", body]
}

/// Writes `text` as `name` in the test's folder; answers its path as kubectl takes it.
fn manifest(https: &Https, name: &str, text: &str) -> String {
    let path = https.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn object(kubectl: &Kubectl, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&kubectl.ok(&args)).unwrap()
}

fn spec_tags(stream: &Value) -> Vec<(String, String)> {
    stream["spec"]["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_owned(),
                        t["from"]["name"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const STREAM: &str = "apiVersion: image.openshift.io/v1
kind: ImageStream
metadata:
  name: app
  labels:
    tier: web
spec:
  tags:
  - name: stable
    from:
      kind: ImageStreamTag
      name: base:1
";

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_applies_and_patches_image_streams() {
    if kubectl_missing() {
        return;
    }
    let https = start();
    let server = &https.server;
    let admin = server.client();
    create_namespace(&admin, server, "team").await;
    let base_1 = push_image(server, "team/base", "1", "base-1").await;
    let base_2 = push_image(server, "team/base", "2", "base-2").await;
    let kubectl = Kubectl::new(&https, "admin", &server.admin_token, "team");

    // Client-side apply: a create, then a patch computed from the last applied configuration.
    let file = manifest(&https, "stream.yaml", STREAM);
    let created = kubectl.ok(&["apply", "-f", &file]);
    assert!(
        created.contains("imagestream.image.openshift.io/app created"),
        "{created}"
    );
    let stream = object(&kubectl, &["get", "is", "app"]);
    assert!(
        stream["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string(),
        "{stream}"
    );
    assert_eq!(spec_tags(&stream), [("stable".into(), "base:1".into())]);
    let unchanged = kubectl.ok(&["apply", "-f", &file]);
    assert!(unchanged.contains("app unchanged"), "{unchanged}");

    // A tag added beside the file survives the next apply: tags merge by name.
    kubectl.ok(&patch(
        "is/app",
        "strategic",
        r#"{"spec":{"tags":[{"name":"manual","from":{"kind":"ImageStreamTag","name":"base:2"}}]}}"#,
    ));
    let file = manifest(
        &https,
        "stream.yaml",
        &STREAM.replace("tier: web", "tier: api").replace(
            "      name: base:1\n",
            "      name: base:1\n  - name: prod\n    from:\n      kind: ImageStreamTag\n      name: base:1\n",
        ),
    );
    let configured = kubectl.ok(&["apply", "-f", &file]);
    assert!(
        configured.contains("imagestream.image.openshift.io/app configured"),
        "{configured}"
    );
    let stream = object(&kubectl, &["get", "is", "app"]);
    assert_eq!(stream["metadata"]["labels"]["tier"], "api");
    let mut tags = spec_tags(&stream);
    tags.sort();
    assert_eq!(
        tags,
        [
            ("manual".into(), "base:2".into()),
            ("prod".into(), "base:1".into()),
            ("stable".into(), "base:1".into())
        ]
    );

    // `oc tag`'s effect through a patch of the tag, recorded in its history as an update is.
    kubectl.ok(&patch(
        "istag/app:prod",
        "merge",
        r#"{"tag":{"from":{"kind":"ImageStreamTag","name":"base:2"}}}"#,
    ));
    let prod = object(&kubectl, &["get", "istag", "app:prod"]);
    assert_eq!(prod["image"]["metadata"]["name"], base_2.as_str(), "{prod}");
    let stream = object(&kubectl, &["get", "is", "app"]);
    let history = stream["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == "prod")
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["image"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(history, [base_2.clone(), base_1.clone()]);

    // A merge patch of the stream replaces its tag list; a JSON patch names paths.
    kubectl.ok(&patch("is/app", "merge", r#"{"metadata":{"annotations":{"note":"merged"}},"spec":{"tags":[{"name":"stable","from":{"kind":"ImageStreamTag","name":"base:2"}}]}}"#));
    let stream = object(&kubectl, &["get", "is", "app"]);
    assert_eq!(spec_tags(&stream), [("stable".into(), "base:2".into())]);
    assert_eq!(stream["metadata"]["annotations"]["note"], "merged");
    kubectl.ok(&patch("is/app", "json", r#"[{"op":"add","path":"/metadata/labels/extra","value":"yes"},{"op":"replace","path":"/spec/tags/0/from/name","value":"base:1"}]"#));
    let stream = object(&kubectl, &["get", "is", "app"]);
    assert_eq!(stream["metadata"]["labels"]["extra"], "yes");
    assert_eq!(spec_tags(&stream), [("stable".into(), "base:1".into())]);
    let failed = kubectl.fails(&patch(
        "is/app",
        "json",
        r#"[{"op":"test","path":"/metadata/labels/extra","value":"no"}]"#,
    ));
    assert!(failed.contains("metadata.labels.extra"), "{failed}");

    // label and annotate are patches too.
    kubectl.ok(&["label", "is", "app", "owner=team-a"]);
    kubectl.ok(&["annotate", "is", "app", "reviewed=yes"]);
    let stream = object(&kubectl, &["get", "is", "app"]);
    assert_eq!(stream["metadata"]["labels"]["owner"], "team-a");
    assert_eq!(stream["metadata"]["annotations"]["reviewed"], "yes");

    // A patch that makes the object invalid is a 422 naming the field.
    let invalid = kubectl.fails(&patch(
        "is/app",
        "merge",
        r#"{"spec":{"tags":[{"name":"not a tag!"}]}}"#,
    ));
    assert!(
        invalid.contains("is invalid") && invalid.contains("spec.tags[0].name"),
        "{invalid}"
    );
    let invalid = kubectl.fails(&patch("is/app", "merge", r#"{"spec":{"tags":"none"}}"#));
    assert!(invalid.contains("spec.tags"), "{invalid}");

    // Server-side apply is refused (415), saying what to use instead; kubectl prints it as
    // `error: Server-side apply not available on the server: (server-side apply is not
    // supported by Berth: apply without --server-side, ...)`.
    let refused = kubectl.fails(&["apply", "--server-side", "-f", &file]);
    assert!(
        refused.contains("Server-side apply not available on the server")
            && refused.contains("server-side apply is not supported by Berth"),
        "{refused}"
    );

    // An ImageStreamImport through `kubectl create -f`: answered with its status (here a
    // refusal of the egress policy, which allows no loopback registry by default).
    let import = manifest(
        &https,
        "import.yaml",
        "apiVersion: image.openshift.io/v1
kind: ImageStreamImport
metadata:
  name: imported
spec:
  import: true
  images:
  - from:
      kind: DockerImage
      name: 127.0.0.1:1/vendor/db:15
    to:
      name: '15'
",
    );
    let imported: Value =
        serde_json::from_str(&kubectl.ok(&["create", "-f", &import, "-o", "json"])).unwrap();
    assert_eq!(imported["kind"], "ImageStreamImport");
    assert_eq!(
        imported["status"]["images"][0]["status"]["status"], "Failure",
        "{imported}"
    );

    // Quotas and immutable tag rules take patches too.
    let quota = manifest(
        &https,
        "quota.yaml",
        "apiVersion: v1
kind: ResourceQuota
metadata:
  name: images
spec:
  hard:
    openshift.io/imagestreams: '10'
",
    );
    kubectl.ok(&["apply", "-f", &quota]);
    kubectl.ok(&patch(
        "quota/images",
        "merge",
        r#"{"spec":{"hard":{"berth.io/storage":"1Gi"}}}"#,
    ));
    let patched = object(&kubectl, &["get", "quota", "images"]);
    assert_eq!(
        patched["spec"]["hard"]["berth.io/storage"], "1Gi",
        "{patched}"
    );
    assert_eq!(patched["spec"]["hard"]["openshift.io/imagestreams"], "10");
    let bad_quota = kubectl.fails(&patch(
        "quota/images",
        "merge",
        r#"{"spec":{"hard":{"pods":"3"}}}"#,
    ));
    assert!(bad_quota.contains("spec.hard"), "{bad_quota}");
    let rule = manifest(
        &https,
        "rule.yaml",
        "apiVersion: berth.io/v1
kind: ImmutableTagRule
metadata:
  name: releases
spec:
  tags:
    include: ['v*']
",
    );
    kubectl.ok(&["apply", "-f", &rule]);
    kubectl.ok(&patch(
        "immutabletagrule/releases",
        "merge",
        r#"{"spec":{"disabled":true}}"#,
    ));
    let rule = object(&kubectl, &["get", "immutabletagrule", "releases"]);
    assert_eq!(rule["spec"]["disabled"], true, "{rule}");
    let policy = manifest(
        &https,
        "policy.yaml",
        "apiVersion: berth.io/v1
kind: RetentionPolicy
metadata:
  name: keep-three
spec:
  rules:
  - mostRecentlyPushed: 3
",
    );
    kubectl.ok(&["apply", "-f", &policy]);
    kubectl.ok(&patch(
        "retentionpolicy/keep-three",
        "merge",
        r#"{"spec":{"suspend":true}}"#,
    ));
    let policy = object(&kubectl, &["get", "retentionpolicy", "keep-three"]);
    assert_eq!(policy["spec"]["suspend"], true, "{policy}");
    assert_eq!(policy["spec"]["rules"][0]["mostRecentlyPushed"], 3);
    let pruner = admin
        .put(server.url("/apis/berth.io/v1/imagepruners/cluster"))
        .json(&json!({"metadata": {"name": "cluster"}, "spec": {"keepTagRevisions": 5}}))
        .send()
        .await
        .unwrap();
    assert!(
        pruner.status().is_success(),
        "{}",
        pruner.text().await.unwrap()
    );
    kubectl.ok(&patch(
        "imagepruner/cluster",
        "merge",
        r#"{"spec":{"suspend":true}}"#,
    ));
    let pruner = object(&kubectl, &["get", "imagepruner", "cluster"]);
    assert_eq!(pruner["spec"]["suspend"], true, "{pruner}");
    assert_eq!(pruner["spec"]["keepTagRevisions"], 5);

    // Another tenant may not patch the stream, nor one who may only read it: the refusal
    // names the verb.
    let bob_token = server.add_user("bob", "bob-password", &[]);
    let bob = Kubectl::new(&https, "bob", &bob_token, "bobs");
    assert!(
        bob.fails(&[
            "patch",
            "is",
            "app",
            "-n",
            "team",
            "-p",
            r#"{"metadata":{"labels":{"bob":"x"}}}"#
        ])
        .contains("forbidden")
    );
    let raw = common::client_with_token(&bob_token)
        .patch(server.url("/apis/image.openshift.io/v1/namespaces/team/imagestreams/app"))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"metadata":{"labels":{"bob":"x"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 403);
    let status: Value = raw.json().await.unwrap();
    assert!(
        status["message"].as_str().unwrap().contains("cannot patch"),
        "{status}"
    );
    grant_user(server, "team", "viewer", "bob").await;
    let forbidden = bob.fails(&[
        "patch",
        "is",
        "app",
        "-n",
        "team",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"bob":"was-here"}}}"#,
    ]);
    assert!(
        forbidden.contains("forbidden") && forbidden.contains("cannot patch"),
        "{forbidden}"
    );
    assert!(
        bob.fails(&["apply", "-n", "team", "-f", &file])
            .contains("forbidden")
    );
    let stream = object(&kubectl, &["get", "is", "app"]);
    assert!(stream["metadata"]["labels"].get("bob").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_explains_image_streams_and_validates_fields_on_the_server() {
    if kubectl_missing() {
        return;
    }
    let https = start();
    let server = &https.server;
    create_namespace(&server.client(), server, "team").await;
    push_image(server, "team/base", "1", "base-1").await;
    let kubectl = Kubectl::new(&https, "admin", &server.admin_token, "team");

    let index = json_of(server.get("/openapi/v3")).await;
    let url = index["paths"]["apis/image.openshift.io/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("/openapi/v3/apis/image.openshift.io/v1?hash="));

    let explained = kubectl.ok(&["explain", "imagestream.spec.tags"]);
    assert!(
        explained.contains("KIND:") && explained.contains("ImageStream"),
        "{explained}"
    );
    assert!(
        explained.contains("where each tag of the stream comes from"),
        "{explained}"
    );
    assert!(
        explained.contains("from") && explained.contains("Where the tag points"),
        "{explained}"
    );
    let top = kubectl.ok(&["explain", "is"]);
    assert!(top.contains("spec") && top.contains("status"), "{top}");

    // An unknown field: refused under --validate=strict with the field named, reported under
    // --validate=warn, on create and on the patch of an apply.
    let bad = manifest(
        &https,
        "bad.yaml",
        &STREAM.replace("  tags:\n", "  tagz: []\n  tags:\n"),
    );
    let refused = kubectl.fails(&["apply", "--validate=strict", "-f", &bad]);
    assert!(refused.contains("spec.tagz"), "{refused}");
    let refused = kubectl.fails(&["create", "--validate=strict", "-f", &bad]);
    assert!(refused.contains("spec.tagz"), "{refused}");
    assert!(kubectl.fails(&["get", "is", "app"]).contains("NotFound"));
    let good = manifest(&https, "good.yaml", STREAM);
    kubectl.ok(&["apply", "--validate=strict", "-f", &good]);
    let refused = kubectl.fails(&["apply", "--validate=strict", "-f", &bad]);
    assert!(refused.contains("spec.tagz"), "{refused}");
    // The same through the API: Strict names the field of a merge patch (422), Warn answers a
    // Warning header, Ignore neither.
    let stream = "/apis/image.openshift.io/v1/namespaces/team/imagestreams/app";
    let patch_with = |validation: &str| {
        server
            .patch(&format!("{stream}?fieldValidation={validation}"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"spec":{"tagz":[]}}"#)
            .send()
    };
    let strict = patch_with("Strict").await.unwrap();
    assert_eq!(strict.status(), 422);
    let status: Value = strict.json().await.unwrap();
    assert_eq!(
        status["details"]["causes"][0]["field"], "spec.tagz",
        "{status}"
    );
    let warn = patch_with("Warn").await.unwrap();
    assert_eq!(warn.status(), 200);
    assert_eq!(
        warn.headers()["warning"],
        r#"299 - "unknown field \"spec.tagz\"""#
    );
    let ignore = patch_with("Ignore").await.unwrap();
    assert_eq!(ignore.status(), 200);
    assert!(ignore.headers().get("warning").is_none());
    let warned = kubectl.output(&["apply", "--validate=warn", "-f", &bad]);
    assert!(warned.status.success());
    let stderr = String::from_utf8_lossy(&warned.stderr);
    assert!(
        stderr.contains("Warning") && stderr.contains("spec.tagz"),
        "{stderr}"
    );
}

/// The venv with PyPI's `kubernetes` and `openshift` that `scripts/setup test` makes
/// (`BERTH_KUBE_PYTHON` names another interpreter).
fn kube_python() -> Option<PathBuf> {
    let python = std::env::var_os("BERTH_KUBE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/kube-clients/bin/python3")
        });
    if python.exists() {
        Some(python)
    } else {
        eprintln!(
            "skipped: {} is missing (scripts/setup test installs the Python clients)",
            python.display()
        );
        None
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_dynamic_clients_list_create_patch_and_watch_image_streams() {
    let Some(python) = kube_python() else {
        return;
    };
    let https = start();
    let server = &https.server;
    create_namespace(&server.client(), server, "team").await;
    push_image(server, "team/base", "1", "base-1").await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/kube_clients.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("BERTH_URL", &server.base)
        .env("BERTH_CA", &https.ca)
        .env("BERTH_TOKEN", &server.admin_token)
        .env("BERTH_NAMESPACE", "team")
        .env("HOME", https.dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    for client in ["kubernetes", "openshift"] {
        let seen = &report[client];
        let name = format!("py-{client}");
        assert_eq!(seen["created"], name.as_str(), "{report}");
        assert_eq!(seen["label"], client, "{report}");
        assert_eq!(seen["tags"], json!(["edge", "stable"]), "{report}");
        assert!(
            seen["listed"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == name.as_str()),
            "{report}"
        );
        assert_eq!(
            seen["events"].as_array().unwrap().last().unwrap(),
            &json!(["MODIFIED", name]),
            "{report}"
        );
    }
}
