//! The console in front of a cluster: a second Berth, started with its embedded defaults, plays
//! the cluster (same image stream API, access reviews and OAuth). People sign in through it,
//! the console's pages are answered by it with their token, and its permissions decide.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::upstream::InFront;
use common::{
    TestServer, anonymous, expect_json, expect_kube_status, expect_status, grant_user, json_of,
    push_image, tag_form,
};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn read(browser: &reqwest::Client, console: &TestServer, path: &str) -> (StatusCode, Value) {
    let response = browser.get(console.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn change(
    browser: &reqwest::Client,
    console: &TestServer,
    endpoint: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = browser
        .post(console.url(&format!("/console/api/{endpoint}")))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The cluster's own view of a tag's current image.
async fn upstream_tag(upstream: &TestServer, namespace: &str, name: &str) -> String {
    let tag = json_of(upstream.get(&format!(
        "/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreamtags/{name}"
    )))
    .await;
    tag["image"]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn browse_tag_and_roll_back_through_the_cluster() {
    let pair = InFront::start();
    let first = push_image(&pair.upstream, "team/app", "v1", "one").await;
    let second = push_image(&pair.upstream, "team/app", "v1", "two").await;
    // Time passes on purpose: times are kept to the second, and team/db must sort as newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    push_image(&pair.upstream, "team/db", "latest", "db").await;
    let (browser, csrf) = pair.sign_in_admin().await;
    let console = &pair.console;

    let (status, namespaces) = read(&browser, console, "/console/api/namespaces").await;
    assert_eq!(status, StatusCode::OK, "{namespaces}");
    assert!(
        namespaces["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ns| ns["name"] == "team"),
        "{namespaces}"
    );
    // Counting would take a call per namespace: the cluster's list does not say.
    assert_eq!(namespaces["namespaces"][0]["streams"], Value::Null);
    assert_eq!(namespaces["can_create"], true);

    let (status, page) = read(
        &browser,
        console,
        "/console/api/streams?namespace=team&filter=&sort=updated&offset=0",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 2);
    assert_eq!(page["streams"][0]["name"], "db", "newest first: {page}");
    assert_eq!(page["streams"][1]["latest_tag"], "v1");
    assert_eq!(page["permissions"]["push"], true);
    // Pull secrets are the cluster's `create secrets`; access stays the cluster's business.
    assert_eq!(page["permissions"]["manage_secrets"], true);
    let (_, filtered) = read(
        &browser,
        console,
        "/console/api/streams?namespace=team&filter=ap&sort=name&offset=0",
    )
    .await;
    assert_eq!(filtered["total"], 1);

    let (status, stream) = read(
        &browser,
        console,
        "/console/api/stream?namespace=team&stream=app",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stream}");
    assert_eq!(stream["tags"][0]["name"], "v1");
    assert_eq!(stream["tags"][0]["digest"], second.as_str());
    let history: Vec<&str> = stream["tags"][0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["image"].as_str().unwrap())
        .collect();
    assert_eq!(history, [second.as_str(), first.as_str()]);
    assert_eq!(stream["permissions"]["delete"], true);
    // Access is the cluster's business in this mode.
    assert_eq!(stream["permissions"]["manage_access"], false);

    // The image page: the cluster's metadata, and the manifest and config from its registry
    // (through its bearer-token challenge, with the user's token as the password).
    let (status, image) = read(
        &browser,
        console,
        &format!("/console/api/image?namespace=team&stream=app&digest={second}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{image}");
    assert_eq!(image["tags"], json!(["v1"]));
    assert!(!image["layers"].as_array().unwrap().is_empty(), "{image}");
    // As the registry stores it, byte for byte (its digest is of these bytes).
    let raw_manifest = image["raw_manifest"].as_str().unwrap();
    assert!(raw_manifest.contains("\"schemaVersion\":2"), "{image}");
    assert_eq!(common::sha256(raw_manifest.as_bytes()), second, "{image}");
    assert!(image["raw_config"].as_str().is_some(), "{image}");

    // `oc tag`, then a rollback, as the cluster records them.
    let (status, answer) = change(
        &browser,
        console,
        "tag",
        &tag_form(&csrf, "team", "app", "stable", "v1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        upstream_tag(&pair.upstream, "team", "app:stable").await,
        second
    );
    let (status, answer) = change(
        &browser,
        console,
        "tag",
        &tag_form(&csrf, "team", "app", "v1", &first),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(upstream_tag(&pair.upstream, "team", "app:v1").await, first);
    // Without the session's CSRF token nothing is sent upstream.
    let (status, _) = change(
        &browser,
        console,
        "untag",
        &[
            ("csrf", "wrong"),
            ("namespace", "team"),
            ("stream", "app"),
            ("tag", "stable"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = change(
        &browser,
        console,
        "untag",
        &[
            ("csrf", &csrf),
            ("namespace", "team"),
            ("stream", "app"),
            ("tag", "stable"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A missing stream is the cluster's 404; a name cannot reach another path of the API.
    let (status, _) = read(
        &browser,
        console,
        "/console/api/stream?namespace=team&stream=absent",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = read(
        &browser,
        console,
        "/console/api/stream?namespace=team&stream=..%2F..%2F..%2Fapi%2Fv1%2Fnamespaces",
    )
    .await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
        "{status}"
    );
}

#[tokio::test]
async fn a_viewer_sees_no_write_controls_and_the_cluster_refuses_them() {
    let pair = InFront::start();
    push_image(&pair.upstream, "team/app", "v1", "one").await;
    push_image(&pair.upstream, "other/secret", "v1", "two").await;
    pair.upstream.add_user("vera", "vera-password", &[]);
    grant_user(&pair.upstream, "team", "viewer", "vera").await;
    let (browser, csrf) = pair.sign_in("vera", "vera-password").await;
    let console = &pair.console;

    let (_, namespaces) = read(&browser, console, "/console/api/namespaces").await;
    let names: Vec<&str> = namespaces["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ns| ns["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team"], "the cluster shows vera only hers");
    let (_, stream) = read(
        &browser,
        console,
        "/console/api/stream?namespace=team&stream=app",
    )
    .await;
    assert_eq!(
        stream["permissions"],
        json!({"pull": true, "push": false, "delete": false, "manage_access": false, "manage_secrets": false})
    );
    // Were the controls forged, the cluster refuses, and the page says so.
    let (status, refused) = change(
        &browser,
        console,
        "tag",
        &tag_form(&csrf, "team", "app", "stable", "v1"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["Forbidden"].as_str().unwrap().contains("vera"),
        "{refused}"
    );
    let (status, _) = read(
        &browser,
        console,
        "/console/api/stream?namespace=other&stream=secret",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_expired_cluster_token_sends_the_user_back_to_sign_in() {
    let pair = InFront::start_with("access_token_seconds = 3");
    push_image(&pair.upstream, "team/app", "v1", "one").await;
    pair.upstream.add_user("alice", "alice-password", &[]);
    grant_user(&pair.upstream, "team", "editor", "alice").await;
    let (browser, _) = pair.sign_in("alice", "alice-password").await;
    let console = &pair.console;
    let (status, _) = read(&browser, console, "/console/api/namespaces").await;
    assert_eq!(status, StatusCode::OK);

    // Time passes on purpose: the cluster's access tokens last three seconds here (the
    // shortest that outlives a sign-in and one read on a loaded machine), and this one must
    // expire.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (status, answer) = read(&browser, console, "/console/api/namespaces").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer, json!("SignInRequired"));
    // The session has ended here too, and a page sends the browser to sign in again.
    let (_, session) = read(&browser, console, "/console/api/session").await;
    assert_eq!(session["user"], Value::Null);
    let page = browser
        .get(console.url("/ns/team/streams/app"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FOUND, "a redirect to sign in");
    assert_eq!(
        common::location(&page),
        "/console/login?then=%2Fns%2Fteam%2Fstreams%2Fapp"
    );
}

#[tokio::test]
async fn a_push_to_the_cluster_shows_live() {
    let pair = InFront::start();
    push_image(&pair.upstream, "team/app", "v1", "one").await;
    let (browser, _) = pair.sign_in_admin().await;
    let response = expect_status(
        browser.get(pair.console.url("/console/api/events")),
        StatusCode::OK,
    )
    .await;
    let mut body = response.bytes_stream();
    let pushed = push_image(&pair.upstream, "team/app", "v2", "two").await;
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains(&pushed) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{text}");
    let data = text
        .lines()
        .find(|line| line.starts_with("data:") && line.contains(&pushed))
        .unwrap();
    let change: Value = serde_json::from_str(data.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(change["namespace"], "team");
    assert_eq!(change["name"], "app");
    assert_eq!(change["tag"], "v2");
    assert_eq!(change["reason"], "push");
}

/// The live feed in front of a cluster counts against the user's watches and ends after the
/// longest watch.
#[tokio::test]
async fn live_feeds_are_limited_per_user_and_in_duration() {
    let pair = InFront::start_configured(
        "",
        &["--watches-per-subject", "2", "--watch-max-seconds", "2"],
    );
    let (browser, _) = pair.sign_in_admin().await;
    let feed = pair.console.url("/console/api/events");
    let first = browser.get(&feed).send().await.unwrap();
    let second = browser.get(&feed).send().await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    expect_kube_status(
        browser.get(&feed),
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
    )
    .await;
    for feed in [first, second] {
        let mut body = feed.bytes_stream();
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(Ok(_)) = body.next().await {}
        })
        .await
        .expect("the feed ended");
    }
}

#[tokio::test]
async fn the_console_forwards_only_what_it_needs() {
    let pair = InFront::start();
    let console = &pair.console;
    let client = anonymous();
    // No registry, API or token endpoint of its own.
    for path in [
        "/v2/",
        "/apis/image.openshift.io/v1/namespaces/team/imagestreams",
        "/api/v1/namespaces",
        "/auth/token",
    ] {
        let response = client.get(console.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // Without a session the pages' data asks for a sign-in, and the live feed is refused.
    let (status, answer) = read(&client, console, "/console/api/namespaces").await;
    assert_eq!(
        (status, answer),
        (StatusCode::UNAUTHORIZED, json!("SignInRequired"))
    );
    expect_status(
        client.get(console.url("/console/api/events")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // A body larger than any form of the console's is refused before it is read.
    // (The answer can beat the end of the upload, which then meets a closed connection: a
    // client of its own, so no later request is sent on that connection.)
    let large = anonymous()
        .post(console.url("/console/api/tag"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await;
    match large {
        Ok(answer) => assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(err) => assert!(err.is_request(), "{err}"),
    }
    // Ready while the cluster answers.
    expect_status(client.get(console.url("/readyz")), StatusCode::OK).await;
}

#[tokio::test]
async fn a_registry_that_refuses_the_bearer_gets_its_challenge_answered() {
    use berth::import::remote::{RemoteReference, RemoteRegistry};
    let upstream = TestServer::start();
    let digest = push_image(&upstream, "team/app", "v1", "one").await;
    // A registry that wants its own token flow (as most do) refuses the cluster token as a
    // bearer: the 401's challenge is answered with the token as the password, as `podman
    // login -u any -p TOKEN` does, and the read goes through.
    let loopback = berth::config::parse_network("127.0.0.1").unwrap();
    let policy = std::sync::Arc::new(berth::egress::EgressPolicy::new(vec![loopback], Vec::new()));
    let http = berth::import::remote::http_client(&policy).unwrap();
    let credentials = Some(("any".to_owned(), upstream.admin_token.clone()));
    let registry = RemoteRegistry::new(http.clone(), &upstream.addr, true, credentials)
        .with_bearer("not-a-token-this-registry-takes");
    let reference =
        RemoteReference::parse(&format!("{}/team/app@{digest}", upstream.addr)).unwrap();
    let manifest = registry.manifest(&reference).await.unwrap();
    assert_eq!(manifest.digest.to_string(), digest);
    // Without credentials to answer with, the refusal stands.
    let anonymous = RemoteRegistry::new(http, &upstream.addr, true, None).with_bearer("nope");
    assert!(anonymous.manifest(&reference).await.is_err());
}

#[tokio::test]
async fn a_namespace_page_reads_only_as_much_of_the_cluster_list_as_it_shows() {
    let pair = InFront::start();
    push_image(&pair.upstream, "many/seed", "v1", "seed").await;
    let create_stream = async |name: &str| {
        let streams = "/apis/image.openshift.io/v1/namespaces/many/imagestreams";
        let stream = json!({"metadata": {"name": name}});
        expect_status(
            pair.upstream.post(streams).json(&stream),
            StatusCode::CREATED,
        )
        .await;
    };
    for n in 0..60 {
        create_stream(&format!("s{n:02}")).await;
    }
    let (browser, _) = pair.sign_in_admin().await;
    let console = &pair.console;
    // By name: the list's first items, and the total from remainingItemCount.
    let (status, second_page) = read(
        &browser,
        console,
        "/console/api/streams?namespace=many&filter=&sort=name&offset=50",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second_page}");
    assert_eq!(second_page["total"], 61);
    let names: Vec<&str> = second_page["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "s50", "s51", "s52", "s53", "s54", "s55", "s56", "s57", "s58", "s59", "seed"
        ]
    );
    // Filtered or by last update: the whole list, filtered and sorted here.
    let (_, filtered) = read(
        &browser,
        console,
        "/console/api/streams?namespace=many&filter=s5&sort=name&offset=0",
    )
    .await;
    assert_eq!(filtered["total"], 10);
    // Typing on reads this session's copy while the cluster's list is unchanged; a change
    // there shows at once.
    create_stream("s5x").await;
    let (_, filtered) = read(
        &browser,
        console,
        "/console/api/streams?namespace=many&filter=s5&sort=name&offset=0",
    )
    .await;
    assert_eq!(filtered["total"], 11, "{filtered}");
    // Another user's session never gets this one's copy.
    pair.upstream.add_user("nell", "nell-password", &[]);
    let (nell, _) = pair.sign_in("nell", "nell-password").await;
    let (status, _) = read(
        &nell,
        console,
        "/console/api/streams?namespace=many&filter=s5&sort=name&offset=0",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, updated) = read(
        &browser,
        console,
        "/console/api/streams?namespace=many&filter=&sort=updated&offset=0",
    )
    .await;
    assert_eq!(updated["total"], 62);
    assert_eq!(
        updated["streams"][0]["name"], "seed",
        "the one with an image first"
    );
}

#[tokio::test]
async fn pull_secrets_are_kept_in_the_cluster() {
    let pair = InFront::start();
    push_image(&pair.upstream, "team/app", "v1", "one").await;
    let (browser, csrf) = pair.sign_in_admin().await;
    let console = &pair.console;
    let password = "cluster-held-pa55word";
    let (status, created) = change(
        &browser,
        console,
        "create_pull_secret",
        &[
            ("csrf", &csrf),
            ("namespace", "team"),
            ("name", "quay"),
            ("registry", "quay.io"),
            ("username", "robot"),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["registries"], json!(["quay.io"]));

    // The cluster holds it, as `oc create secret docker-registry` would have made it.
    let secret = expect_json(
        pair.upstream.get("/api/v1/namespaces/team/secrets/quay"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");

    let (status, list) = read(
        &browser,
        console,
        "/console/api/pull_secrets?namespace=team",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "quay");
    assert_eq!(list[0]["registries"], json!(["quay.io"]));
    assert!(!list[0]["created"].as_str().unwrap().is_empty(), "{list}");
    let text = format!("{created}{list}");
    assert!(
        !text.contains(password) && !text.contains("robot"),
        "{text}"
    );

    // The cluster's refusal of a bad name is said as the cluster says it.
    let (status, refused) = change(
        &browser,
        console,
        "create_pull_secret",
        &[
            ("csrf", &csrf),
            ("namespace", "team"),
            ("name", "Not_A_Name"),
            ("registry", "quay.io"),
            ("username", "robot"),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["Invalid"]
            .as_str()
            .unwrap()
            .contains("metadata.name"),
        "{refused}"
    );

    let (status, answer) = change(
        &browser,
        console,
        "delete_pull_secret",
        &[("csrf", &csrf), ("namespace", "team"), ("name", "quay")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, list) = read(
        &browser,
        console,
        "/console/api/pull_secrets?namespace=team",
    )
    .await;
    assert_eq!(list, json!([]));
}
