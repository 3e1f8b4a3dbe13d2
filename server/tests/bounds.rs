//! Bounds on what callers can make the server hold or reveal: `continue` tokens that name only
//! what the caller was shown and cannot be edited, metrics whose series made-up methods cannot
//! multiply, and watches and event streams limited in number per subject and in duration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{
    TestServer, anonymous, create_namespace, expect_kube_status, expect_status, grant, json_of,
    wait_until,
};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

const API: &str = "/apis/image.openshift.io/v1";

async fn send(client: &reqwest::Client, method: &str, url: String, body: Value) -> Value {
    let response = client
        .request(method.parse().unwrap(), url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method}: {status} {body}");
    body
}

/// Every text a token could carry a name in: itself, and its bytes decoded as hex or base64.
fn readings(token: &str) -> Vec<String> {
    let mut texts = vec![token.to_owned()];
    if let Ok(bytes) = hex::decode(token) {
        texts.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    for engine in [
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ] {
        if let Ok(bytes) = engine.decode(token.trim_end_matches('=')) {
            texts.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    texts
}

/// Pages through `path` with `limit=1`, checking that no token reveals a name of `hidden`;
/// returns the names of every item seen, in order.
async fn page_through(
    client: &reqwest::Client,
    server: &TestServer,
    path: &str,
    hidden: &[&str],
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut url = server.url(&format!("{path}?limit=1"));
    for _ in 0..100 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let list: Value = response.json().await.unwrap();
        seen.extend(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        let token = list["metadata"]["continue"].as_str().unwrap_or_default();
        if token.is_empty() {
            return seen;
        }
        for text in readings(token) {
            for name in hidden {
                assert!(
                    !text.contains(name),
                    "the continue token of {path} reveals {name:?}: {text:?}"
                );
            }
        }
        url = server.url(&format!("{path}?limit=1&continue={token}"));
    }
    panic!("{path} never ended");
}

#[tokio::test]
async fn continue_tokens_name_only_what_the_caller_saw() {
    let server = TestServer::start();
    let admin = server.client();
    let bob = server.user("bob");
    for name in ["a-hidden", "b-open", "c-hidden", "d-open", "e-hidden"] {
        create_namespace(&admin, &server, name).await;
    }
    for open in ["b-open", "d-open"] {
        let everyone = json!({"kind": "Group", "name": "system:unauthenticated"});
        grant(&server, open, "viewer", everyone, None).await;
    }
    // Bob's own namespace, which anonymous callers may not see either.
    create_namespace(&bob, &server, "f-bob").await;

    let hidden = ["a-hidden", "c-hidden", "e-hidden"];
    let hidden_from_anonymous = ["a-hidden", "c-hidden", "e-hidden", "f-bob"];
    let seen = page_through(
        &anonymous(),
        &server,
        "/api/v1/namespaces",
        &hidden_from_anonymous,
    )
    .await;
    assert_eq!(seen, ["b-open", "d-open"]);
    let seen = page_through(&bob, &server, "/api/v1/namespaces", &hidden).await;
    assert_eq!(seen, ["b-open", "d-open", "f-bob"]);
    let seen = page_through(&admin, &server, "/api/v1/namespaces", &[]).await;
    assert_eq!(
        seen,
        [
            "a-hidden", "b-open", "c-hidden", "d-open", "e-hidden", "f-bob"
        ]
    );

    // Streams and tags of a namespace where bob may see two streams of five.
    create_namespace(&admin, &server, "mixed").await;
    for stream in ["hidden-1", "hidden-3", "hidden-5", "seen-2", "seen-4"] {
        for tag in ["t1", "t2"] {
            send(
                &admin,
                "PUT",
                server.url(&format!(
                    "{API}/namespaces/mixed/imagestreamtags/{stream}:{tag}"
                )),
                json!({"tag": {"reference": true, "from": {"kind": "DockerImage", "name": format!("quay.io/x/{stream}:{tag}")}}}),
            )
            .await;
        }
    }
    for stream in ["seen-2", "seen-4"] {
        let bob = json!({"kind": "User", "name": "bob"});
        grant(&server, "mixed", "viewer", bob, Some(stream)).await;
    }
    let hidden = ["hidden-1", "hidden-3", "hidden-5"];
    let streams = format!("{API}/namespaces/mixed/imagestreams");
    assert_eq!(
        page_through(&bob, &server, &streams, &hidden).await,
        ["seen-2", "seen-4"]
    );
    assert_eq!(
        page_through(&admin, &server, &streams, &[]).await,
        ["hidden-1", "hidden-3", "hidden-5", "seen-2", "seen-4"]
    );
    let tags = format!("{API}/namespaces/mixed/imagestreamtags");
    assert_eq!(
        page_through(&bob, &server, &tags, &hidden).await,
        ["seen-2:t1", "seen-2:t2", "seen-4:t1", "seen-4:t2"]
    );
    // Every namespace's streams: bob sees his two and nothing of the rest.
    assert_eq!(
        page_through(&bob, &server, &format!("{API}/imagestreams"), &hidden).await,
        ["seen-2", "seen-4"]
    );
}

#[tokio::test]
async fn a_tampered_or_borrowed_continue_token_is_refused() {
    let server = TestServer::start();
    let admin = server.client();
    for name in ["n1", "n2", "n3"] {
        create_namespace(&admin, &server, name).await;
    }
    let list = json_of(admin.get(server.url("/api/v1/namespaces?limit=1"))).await;
    let token = list["metadata"]["continue"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    expect_status(
        admin.get(server.url(&format!("/api/v1/namespaces?limit=1&continue={token}"))),
        StatusCode::OK,
    )
    .await;

    // One character changed, the old hex form of a name, another caller, another list.
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let bob = server.user("bob");
    let cases = [
        (&admin, format!("/api/v1/namespaces?continue={tampered}")),
        (
            &admin,
            format!("/api/v1/namespaces?continue={}", hex::encode("n2")),
        ),
        (&admin, "/api/v1/namespaces?continue=%00%ff".to_owned()),
        (&bob, format!("/api/v1/namespaces?continue={token}")),
        (
            &admin,
            format!("{API}/namespaces/n1/imagestreams?continue={token}"),
        ),
        (&admin, format!("{API}/imagestreams?continue={token}")),
    ];
    for (client, path) in cases {
        expect_kube_status(
            client.get(server.url(&path)),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        )
        .await;
    }
    expect_kube_status(
        anonymous().get(server.url(&format!("/api/v1/namespaces?continue={token}"))),
        StatusCode::BAD_REQUEST,
        "BadRequest",
    )
    .await;
}

async fn scrape(server: &TestServer) -> String {
    anonymous()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn series(metrics: &str) -> Vec<&str> {
    metrics
        .lines()
        .filter(|line| line.starts_with("berth_http_"))
        .collect()
}

#[tokio::test]
async fn made_up_methods_add_no_metrics_series() {
    let server = TestServer::start();
    let client = anonymous();
    let paths = ["/v2/", "/healthz", "/api/v1/namespaces", "/no/such/page"];
    let send_all = async |methods: &[&str]| {
        for method in methods {
            for path in paths {
                let response = client
                    .request(method.parse().unwrap(), server.url(path))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().as_u16() < 500, "{method} {path}");
            }
        }
    };
    scrape(&server).await;
    send_all(&["FOO1", "FOO2", "FOO3"]).await;
    let before = scrape(&server).await;
    send_all(&["BAR1", "BAR2", "BAR3", "BAZ", "X-Y_Z"]).await;
    let after = scrape(&server).await;
    assert_eq!(
        series(&before).len(),
        series(&after).len(),
        "new series:\n{}",
        series(&after)
            .into_iter()
            .filter(|s| !before.contains(s.split(' ').next().unwrap()))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for name in ["FOO", "BAR", "BAZ", "X-Y_Z"] {
        assert!(!after.contains(name), "{name} is a label:\n{after}");
    }
    assert!(after.contains("method=\"other\""), "{after}");
}

#[tokio::test]
async fn watches_are_limited_per_subject() {
    let server = TestServer::start_with(&["--watches-per-subject", "2"]);
    let alice = server.user("alice");
    let watch = server.url("/api/v1/namespaces?watch=true");
    let mut held = Vec::new();
    for _ in 0..2 {
        let response = expect_status(alice.get(&watch), StatusCode::OK).await;
        held.push(response);
    }
    // A third watch, and the console's event stream, are over alice's limit.
    for path in [
        "/api/v1/namespaces?watch=true",
        "/apis/image.openshift.io/v1/imagestreams?watch=true",
        "/console/api/events",
    ] {
        expect_kube_status(
            alice.get(server.url(path)),
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
        )
        .await;
        let again = alice.get(server.url(path)).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(!common::header(&again, "retry-after").is_empty(), "{path}");
    }
    // Others are counted apart: the administrator, and anonymous callers by address.
    expect_status(server.client().get(&watch), StatusCode::OK).await;
    let mut anonymous_watches = Vec::new();
    for _ in 0..2 {
        let response = expect_status(anonymous().get(&watch), StatusCode::OK).await;
        anonymous_watches.push(response);
    }
    expect_status(anonymous().get(&watch), StatusCode::TOO_MANY_REQUESTS).await;

    // A watch closed by its client frees its place.
    drop(held.pop());
    let _reopened = wait_until("the closed watch's place to be freed", async || {
        let response = alice.get(&watch).send().await.unwrap();
        match response.status() {
            StatusCode::OK => Ok(response),
            refused => Err(format!("a new watch answered {refused}")),
        }
    })
    .await;
}

/// Reads a response body to its end; panics unless it ends within `within`.
async fn ends_within(response: reqwest::Response, within: Duration) {
    let mut body = response.bytes_stream();
    tokio::time::timeout(within, async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await
    .expect("the stream ended");
}

#[tokio::test]
async fn a_watch_runs_at_most_the_server_maximum() {
    let server = TestServer::start_with(&["--watch-max-seconds", "2"]);
    let admin = server.client();
    // Asked for an hour, with and without a resourceVersion; and without a timeout.
    for path in [
        "/api/v1/namespaces?watch=true&timeoutSeconds=3600",
        "/apis/image.openshift.io/v1/imagestreams?watch=true&timeoutSeconds=3600&resourceVersion=1",
        "/api/v1/namespaces?watch=true",
        "/console/api/events",
    ] {
        let response = admin.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        ends_within(response, Duration::from_secs(30)).await;
    }
}
