//! Webhooks against the running server: a receiver inside the test records what it is sent and
//! answers 500 to each subscription's first delivery, 204 after. Pushes by skopeo arrive in
//! distribution's envelope (and as CloudEvents), signed; the 500 is retried; tags moved through
//! the image stream API arrive as image stream events; the delivery log shows every attempt;
//! only namespace admins manage subscriptions; a pending delivery survives a crash; a delivery
//! that failed for good (or was delivered) is sent again by hand, the same bytes under a new id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::images::{skopeo_copy, umoci_image};
use common::{
    OCI_MANIFEST, TestServer, cause_fields, create_namespace, expect_kube_status, expect_status,
    grant_user, item_names, push_image, send, wait_until,
};
use hmac::{Hmac, KeyInit as _, Mac as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

const DISTRIBUTION_EVENTS: &str = "application/vnd.docker.distribution.events.v1+json";

fn webhooks_path(namespace: &str) -> String {
    format!("/apis/berth.io/v1/namespaces/{namespace}/webhooks")
}

// ---- a receiver ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Received {
    /// The last path segment: which subscription sent it.
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    /// What the receiver answered.
    answered: u16,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone, Default)]
struct Receiver {
    log: Arc<Mutex<Vec<Received>>>,
    /// When set, what every request is answered instead.
    answer: Arc<Mutex<Option<u16>>>,
    /// Requests wait while it is held for writing, before they are answered.
    hold: Arc<tokio::sync::RwLock<()>>,
    /// The body of every answer (empty unless told).
    reply: Arc<Mutex<String>>,
}

/// Answers 500 to the first request at each path, 204 afterwards (unless told otherwise).
async fn receive(
    State(receiver): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (AxumStatus, String) {
    drop(receiver.hold.read().await);
    let told = *receiver.answer.lock().unwrap();
    let mut log = receiver.log.lock().unwrap();
    let answered = if let Some(code) = told {
        AxumStatus::from_u16(code).unwrap()
    } else if log.iter().any(|r| r.path == path) {
        AxumStatus::NO_CONTENT
    } else {
        AxumStatus::INTERNAL_SERVER_ERROR
    };
    log.push(Received {
        path,
        headers,
        body: body.to_vec(),
        answered: answered.as_u16(),
    });
    (answered, receiver.reply.lock().unwrap().clone())
}

impl Receiver {
    /// Serves on `listener`; returns the receiver and its base URL.
    fn serve(listener: tokio::net::TcpListener) -> (Receiver, String) {
        let receiver = Receiver::default();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hooks/{path}", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, base)
    }

    /// Answers every request with `code` from now on.
    fn answer(&self, code: u16) {
        *self.answer.lock().unwrap() = Some(code);
    }

    /// Answers every request with `body` from now on.
    fn reply(&self, body: &str) {
        *self.reply.lock().unwrap() = body.to_owned();
    }

    async fn start() -> (Receiver, String) {
        Self::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until the requests at `path` satisfy `done`; returns them.
    async fn wait_for(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        wait_until(&format!("{what} at {path}"), async || {
            let received = self.at(path);
            if done(&received) {
                return Ok(received);
            }
            let bodies: Vec<String> = received
                .iter()
                .map(|r| format!("{} {}", r.answered, String::from_utf8_lossy(&r.body)))
                .collect();
            Err(format!("received {bodies:#?}"))
        })
        .await
    }
}

fn delivered(received: &[Received]) -> usize {
    received.iter().filter(|r| r.answered == 204).count()
}

// ---- helpers ------------------------------------------------------------------------------------

async fn subscribe(server: &TestServer, namespace: &str, webhook: Value) -> Value {
    let (status, body, _) = send(
        server,
        &server.client(),
        Method::POST,
        &webhooks_path(namespace),
        Some(webhook),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Builds an image with umoci and copies it to Berth with skopeo; returns its digest there.
/// Images of different architectures differ (umoci's layers depend on the architecture only).
async fn push(
    server: &TestServer,
    dir: &std::path::Path,
    repository_tag: &str,
    arch: &str,
) -> String {
    let layout = dir.join("layout");
    let creds = server.creds();
    let destination = format!("docker://{}/{repository_tag}", server.addr);
    let arch = arch.to_owned();
    tokio::task::spawn_blocking(move || {
        let image = umoci_image(&layout, &arch, &arch, 1);
        skopeo_copy(&format!("oci:{image}"), &destination, &creds);
    })
    .await
    .unwrap();
    let (repository, tag) = repository_tag.split_once(':').unwrap();
    let response = expect_status(
        server
            .head(&format!("/v2/{repository}/manifests/{tag}"))
            .header("accept", OCI_MANIFEST),
        StatusCode::OK,
    )
    .await;
    common::header(&response, "docker-content-digest")
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn assert_signed(received: &Received, secret: &str) {
    assert_eq!(
        received.header("x-berth-signature-256"),
        signature(secret, &received.body),
        "signature of {}",
        String::from_utf8_lossy(&received.body)
    );
}

async fn deliveries(server: &TestServer, namespace: &str, name: &str) -> Vec<Value> {
    let (status, body, _) = send(
        server,
        &server.client(),
        Method::GET,
        &format!("{}/{name}/deliveries", webhooks_path(namespace)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "WebhookDeliveryList");
    body["items"].as_array().unwrap().clone()
}

/// Reads the delivery log until its newest delivery satisfies `done`; returns the log.
async fn wait_for_log(
    server: &TestServer,
    namespace: &str,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    wait_until(&format!("{what} in {namespace}/{name}'s log"), async || {
        let log = deliveries(server, namespace, name).await;
        if log.first().is_some_and(&done) {
            Ok(log)
        } else {
            Err(format!("the log {log:#?}"))
        }
    })
    .await
}

/// (number, status code) of a delivery's attempts.
fn attempts(delivery: &Value) -> Vec<(u64, Option<u64>)> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["number"].as_u64().unwrap(), a["statusCode"].as_u64()))
        .collect()
}

// ---- the tests ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_events_are_delivered_and_a_500_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&[
        "--webhook-retry-base-millis",
        "200",
        "--egress-allow",
        "127.0.0.1/32",
    ]);
    create_namespace(&server.client(), &server, "team").await;
    let (receiver, hooks) = Receiver::start().await;

    let ci = subscribe(
        &server,
        "team",
        json!({
            "apiVersion": "berth.io/v1",
            "kind": "Webhook",
            "metadata": {"name": "ci"},
            "spec": {
                "url": format!("{hooks}/hooks/ci"),
                "events": ["push", "imagestream"],
                "format": "distribution",
                "secret": "ci-secret",
            },
        }),
    )
    .await;
    assert_eq!(ci["kind"], "Webhook");
    assert_eq!(ci["apiVersion"], "berth.io/v1");
    assert_eq!(ci["metadata"]["namespace"], "team");
    assert!(ci["metadata"]["uid"].is_string());
    assert_eq!(ci["spec"]["events"], json!(["push", "imagestream"]));
    // A secret given is not echoed.
    assert!(ci["spec"].get("secret").is_none(), "{ci}");

    let cloud = subscribe(
        &server,
        "team",
        json!({
            "metadata": {"name": "cloud"},
            "spec": {"url": format!("{hooks}/hooks/cloud"), "format": "cloudevents"},
        }),
    )
    .await;
    // A secret made for the subscriber is shown this once.
    let cloud_secret = cloud["spec"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(cloud_secret.len(), 64, "{cloud}");
    assert_eq!(cloud["spec"]["events"], json!([]));
    let (status, shown, _) = send(
        &server,
        &server.client(),
        Method::GET,
        &format!("{}/cloud", webhooks_path("team")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(shown["spec"].get("secret").is_none(), "{shown}");
    assert_eq!(shown["spec"]["format"], "cloudevents");
    let (_, list, _) = send(
        &server,
        &server.client(),
        Method::GET,
        &webhooks_path("team"),
        None,
    )
    .await;
    assert_eq!(list["kind"], "WebhookList");
    assert_eq!(item_names(&list), ["ci", "cloud"]);
    assert!(!list.to_string().contains(&cloud_secret));

    // A push: refused once with a 500, then delivered, the same signed bytes both times.
    let v1 = push(&server, dir.path(), "team/app:v1", "amd64").await;
    let received = receiver
        .wait_for("ci", "the push, retried", |r| delivered(r) >= 1)
        .await;
    let (first, second) = (&received[0], &received[1]);
    assert_eq!((first.answered, second.answered), (500, 204));
    assert_eq!(first.body, second.body);
    assert_eq!(
        first.header("x-berth-delivery"),
        second.header("x-berth-delivery")
    );
    assert_eq!(second.header("x-berth-event"), "push");
    assert_eq!(second.header("content-type"), DISTRIBUTION_EVENTS);
    assert_signed(first, "ci-secret");
    assert_signed(second, "ci-secret");
    let envelope = second.json();
    let event = &envelope["events"][0];
    assert_eq!(envelope["events"].as_array().unwrap().len(), 1);
    assert_eq!(event["action"], "push");
    assert!(
        event["id"].is_string() && event["timestamp"].is_string(),
        "{event}"
    );
    let target = &event["target"];
    assert_eq!(target["repository"], "team/app");
    assert_eq!(target["tag"], "v1");
    assert_eq!(target["digest"], v1);
    assert_eq!(target["mediaType"], OCI_MANIFEST);
    assert!(target["size"].as_u64().unwrap() > 0);
    assert_eq!(
        target["url"],
        format!("{}/v2/team/app/manifests/{v1}", server.base)
    );
    assert_eq!(event["source"]["addr"], server.addr);

    // The same push as a CloudEvent to the other subscription, under its own secret.
    let received = receiver
        .wait_for("cloud", "the push, retried", |r| delivered(r) >= 1)
        .await;
    assert_eq!(received[0].answered, 500);
    let cloud_event = &received[1];
    assert_eq!(
        cloud_event.header("content-type"),
        "application/cloudevents+json"
    );
    assert_signed(cloud_event, &cloud_secret);
    let body = cloud_event.json();
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(body["type"], "io.berth.registry.push");
    assert_eq!(body["source"], "/namespaces/team/imagestreams/app");
    assert_eq!(body["id"], event["id"]);
    assert_eq!(body["datacontenttype"], DISTRIBUTION_EVENTS);
    assert_eq!(body["data"], envelope);

    // The delivery log: two attempts, 500 then 204 (recorded once the receiver's answer is
    // read, which may be just after the receiver saw the request).
    let log = wait_for_log(&server, "team", "ci", "the retried push delivered", |d| {
        d["state"] == "delivered"
    })
    .await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["state"], "delivered");
    assert_eq!(log[0]["event"], "push");
    assert_eq!(log[0]["id"], second.header("x-berth-delivery"));
    assert_eq!(attempts(&log[0]), [(1, Some(500)), (2, Some(204))]);
    assert!(log[0].get("nextAttemptTime").is_none(), "{}", log[0]);

    // A second image, then `oc tag` through the image stream API, twice: image stream events
    // with the old and new image, in order.
    let v2 = push(&server, dir.path(), "team/app:v2", "arm64").await;
    for from in ["app:v1", "app:v2"] {
        let (status, body, _) = send(
            &server,
            &server.client(),
            Method::PUT,
            "/apis/image.openshift.io/v1/namespaces/team/imagestreamtags/app:prod",
            Some(json!({"tag": {"from": {"kind": "ImageStreamTag", "name": from}}})),
        )
        .await;
        // Made by the first PUT, moved by the second.
        let expected = if from == "app:v1" {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{body}");
    }
    let received = receiver
        .wait_for("ci", "two tag moves", |r| delivered(r) >= 4)
        .await;
    let sent: Vec<&Received> = received.iter().filter(|r| r.answered == 204).collect();
    assert_eq!(sent[1].json()["events"][0]["target"]["digest"], v2);
    let tags: Vec<Value> = sent[2..].iter().map(|r| r.json()).collect();
    for (received, body) in sent[2..].iter().zip(&tags) {
        assert_eq!(received.header("x-berth-event"), "imagestream");
        assert_eq!(received.header("content-type"), "application/json");
        assert_signed(received, "ci-secret");
        assert_eq!(body["type"], "ImageStreamTagChanged");
        assert_eq!(body["namespace"], "team");
        assert_eq!(body["stream"], "app");
        assert_eq!(body["tag"], "prod");
        assert_eq!(body["reason"], "tag");
    }
    assert_eq!(tags[0]["oldImage"], Value::Null);
    assert_eq!(tags[0]["newImage"], v1);
    assert_eq!(tags[1]["oldImage"], v1);
    assert_eq!(tags[1]["newImage"], v2);
    let log = deliveries(&server, "team", "ci").await;
    assert_eq!(
        log.iter()
            .map(|d| d["event"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["imagestream", "imagestream", "push", "push"],
        "newest first"
    );
    // The CloudEvents subscription wants everything: the tag moves arrive there too.
    let received = receiver
        .wait_for("cloud", "two tag moves", |r| delivered(r) >= 4)
        .await;
    let last = received.last().unwrap().json();
    assert_eq!(last["type"], "io.berth.imagestream.tag");
    assert_eq!(last["subject"], "prod");
    assert_eq!(last["data"]["newImage"], v2);

    // Deleting a subscription takes its log with it.
    let cloud = server.url(&format!("{}/cloud", webhooks_path("team")));
    expect_kube_status(server.client().delete(&cloud), StatusCode::OK, "").await;
    for path in ["/cloud", "/cloud/deliveries"] {
        expect_kube_status(
            server.get(&format!("{}{path}", webhooks_path("team"))),
            StatusCode::NOT_FOUND,
            "NotFound",
        )
        .await;
    }
}

#[tokio::test]
async fn only_namespace_admins_manage_webhooks_and_bad_specs_name_their_fields() {
    let server = TestServer::start_with(common::ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "team").await;
    let hook = json!({"metadata": {"name": "ci"}, "spec": {"url": "http://127.0.0.1:9/hook"}});

    let viewer = server.user("viewer");
    let webhooks = server.url(&webhooks_path("team"));
    let body = expect_kube_status(
        viewer.post(&webhooks).json(&hook),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    assert_eq!(body["details"]["kind"], "webhooks");
    assert_eq!(body["details"]["group"], "berth.io");

    subscribe(&server, "team", hook.clone()).await;
    for path in ["", "/ci", "/ci/deliveries"] {
        expect_kube_status(
            viewer.get(format!("{webhooks}{path}")),
            StatusCode::FORBIDDEN,
            "Forbidden",
        )
        .await;
    }
    expect_kube_status(
        viewer.delete(format!("{webhooks}/ci")),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;

    // Taken names, missing namespaces, and each invalid field named.
    let admin = server.client();
    expect_kube_status(
        admin.post(&webhooks).json(&hook),
        StatusCode::CONFLICT,
        "AlreadyExists",
    )
    .await;
    expect_kube_status(
        admin
            .post(server.url(&webhooks_path("nowhere")))
            .json(&hook),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    let body = expect_kube_status(
        admin.post(&webhooks).json(&json!({
            "metadata": {"name": "Bad_Name"},
            "spec": {
                "url": "http://user:hunter2@127.0.0.1:9/hook",
                "events": ["push", "pull"],
                "format": "xml",
            },
        })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    assert_eq!(
        cause_fields(&body),
        ["metadata.name", "spec.url", "spec.events[1]", "spec.format"]
    );
    // The credentials are not repeated back.
    assert!(!body.to_string().contains("hunter2"), "{body}");
    expect_kube_status(
        admin
            .post(&webhooks)
            .json(&json!({"metadata": {"name": "ftp"}, "spec": {"url": "ftp://127.0.0.1/"}})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    for query in ["limit=0", "limit=many"] {
        expect_kube_status(
            admin.get(format!("{webhooks}/ci/deliveries?{query}")),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_survives_a_crash_and_is_sent_when_the_receiver_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&[
        "--webhook-retry-base-millis",
        "300",
        "--egress-allow",
        "127.0.0.1/32",
    ]);
    create_namespace(&server.client(), &server, "team").await;
    // A port with nobody listening (yet).
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    subscribe(
        &server,
        "team",
        json!({
            "metadata": {"name": "ci"},
            "spec": {"url": format!("http://127.0.0.1:{port}/hooks/ci"), "secret": "s"},
        }),
    )
    .await;
    push(&server, dir.path(), "team/app:v1", "amd64").await;

    // Refused connections are failed attempts, each logged with its error.
    let log = wait_for_log(&server, "team", "ci", "two failed attempts", |d| {
        attempts(d).len() >= 2
    })
    .await;
    assert_eq!(log[0]["state"], "pending", "{log:?}");
    let failed = &log[0]["attempts"][0];
    assert!(failed.get("statusCode").is_none(), "{failed}");
    assert!(!failed["error"].as_str().unwrap().is_empty(), "{failed}");
    assert!(log[0]["nextAttemptTime"].is_string(), "{}", log[0]);

    let server = server.crash_and_restart();
    let (receiver, _) = Receiver::serve(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    let received = receiver
        .wait_for("ci", "the delivery after the restart", |r| {
            delivered(r) >= 1
        })
        .await;
    assert_eq!(received.last().unwrap().header("x-berth-event"), "push");
    assert_signed(received.last().unwrap(), "s");
    let log = wait_for_log(&server, "team", "ci", "the delivery recorded", |d| {
        d["state"] == "delivered"
    })
    .await;
    assert_eq!(log.len(), 1, "delivered once: {log:?}");
    assert_eq!(log[0]["state"], "delivered");
    let numbers = attempts(&log[0]);
    assert!(numbers.len() >= 4, "{numbers:?}");
    assert_eq!(
        numbers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        (1..=numbers.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(numbers.last().unwrap().1, Some(204));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_failed_for_good_is_sent_again_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    // 8 attempts, 20 ms after the first then doubling: failed for good within about 3 s.
    let server = TestServer::start_with(&[
        "--webhook-retry-base-millis",
        "20",
        "--egress-allow",
        "127.0.0.1/32",
    ]);
    create_namespace(&server.client(), &server, "team").await;
    let (receiver, hooks) = Receiver::start().await;
    receiver.answer(500);
    subscribe(
        &server,
        "team",
        json!({
            "metadata": {"name": "ci"},
            "spec": {"url": format!("{hooks}/hooks/ci"), "events": ["push"], "secret": "ci-secret"},
        }),
    )
    .await;
    push(&server, dir.path(), "team/app:v1", "amd64").await;

    let log = wait_for_log(
        &server,
        "team",
        "ci",
        "the delivery to fail for good",
        |d| d["state"] == "failed",
    )
    .await;
    assert_eq!(log.len(), 1, "{log:#?}");
    let failed = &log[0];
    assert_eq!(
        attempts(failed),
        (1..=8).map(|n| (n, Some(500))).collect::<Vec<_>>()
    );
    assert!(failed.get("redeliveryOf").is_none(), "{failed}");
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    let refused = receiver.at("ci");
    assert_eq!(refused.len(), 8);
    let original = refused[0].clone();
    assert_eq!(original.header("x-berth-delivery"), failed_id);
    let redeliver = |id: &str| format!("{}/ci/deliveries/{id}/redeliver", webhooks_path("team"));

    // Only the namespace's admins: an editor, who may push, is refused.
    let editor = server.user("eddie");
    grant_user(&server, "team", "editor", "eddie").await;
    let body = expect_kube_status(
        editor.post(server.url(&redeliver(&failed_id))),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    assert_eq!(body["details"]["kind"], "webhooks");

    // Deliveries it does not have, and subscriptions that do not exist.
    for id in ["999999", "0", "-1", "abc", "+1", "01"] {
        let body = expect_kube_status(
            server.post(&redeliver(id)),
            StatusCode::NOT_FOUND,
            "NotFound",
        )
        .await;
        assert_eq!(body["details"]["kind"], "webhookdeliveries");
        assert_eq!(body["details"]["group"], "berth.io");
        assert_eq!(body["details"]["name"], id);
    }
    let body = expect_kube_status(
        server.post(&format!(
            "{}/nope/deliveries/{failed_id}/redeliver",
            webhooks_path("team")
        )),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    assert_eq!(body["details"]["kind"], "webhooks");

    // The receiver is fixed, but holds its answer a while: the new delivery stays pending.
    receiver.answer(204);
    let held = receiver.hold.clone().write_owned().await;
    let (status, made, _) = send(
        &server,
        &server.client(),
        Method::POST,
        &redeliver(&failed_id),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let made_id = made["id"].as_str().unwrap().to_owned();
    assert_ne!(made_id, failed_id);
    assert_eq!(made["state"], "pending");
    assert_eq!(made["event"], "push");
    assert_eq!(made["eventId"], failed["eventId"]);
    assert_eq!(made["contentType"], DISTRIBUTION_EVENTS);
    assert_eq!(made["redeliveryOf"], failed_id.as_str());
    assert_eq!(made["attempts"], json!([]));
    assert!(made["creationTimestamp"].is_string(), "{made}");

    // A pending delivery is being sent already: a Conflict.
    let body = expect_kube_status(
        server.post(&redeliver(&made_id)),
        StatusCode::CONFLICT,
        "Conflict",
    )
    .await;
    assert_eq!(body["details"]["kind"], "webhookdeliveries");
    assert_eq!(body["details"]["name"], made_id.as_str());
    assert!(
        body["message"].as_str().unwrap().contains("still pending"),
        "{body}"
    );

    // Let go: the receiver gets the very same bytes, signed, under the new id.
    drop(held);
    let received = receiver
        .wait_for("ci", "the redelivery", |r| delivered(r) >= 1)
        .await;
    let sent = received.last().unwrap();
    assert_eq!(received.len(), 9);
    assert_eq!(sent.answered, 204);
    assert_eq!(sent.body, original.body);
    assert_signed(sent, "ci-secret");
    assert_eq!(sent.header("x-berth-delivery"), made_id);
    assert_eq!(sent.header("x-berth-event"), "push");
    assert_eq!(sent.header("content-type"), DISTRIBUTION_EVENTS);
    let log = wait_for_log(&server, "team", "ci", "the redelivery's attempt", |d| {
        d["state"] == "delivered"
    })
    .await;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0]["id"], made_id.as_str());
    assert_eq!(log[0]["redeliveryOf"], failed_id.as_str());
    assert_eq!(attempts(&log[0]), [(1, Some(204))]);
    assert_eq!(log[1]["id"], failed_id.as_str());
    assert_eq!(log[1]["state"], "failed");
    assert_eq!(attempts(&log[1]).len(), 8);

    // A delivered delivery can be sent again too.
    let (status, again, _) = send(
        &server,
        &server.client(),
        Method::POST,
        &redeliver(&made_id),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["redeliveryOf"], made_id.as_str());
    let received = receiver
        .wait_for("ci", "the second redelivery", |r| delivered(r) >= 2)
        .await;
    let last = received.last().unwrap();
    assert_eq!(last.body, original.body);
    assert_signed(last, "ci-secret");
    assert_eq!(
        last.header("x-berth-delivery"),
        again["id"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_internal_addresses_are_refused_at_creation_or_at_delivery() {
    let (receiver, base) = Receiver::start().await;
    // No allow-list: loopback, link-local and private addresses are refused.
    let server = TestServer::start();
    create_namespace(&server.client(), &server, "team").await;
    for url in [
        "http://127.0.0.2:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://2130706433/hook",
        format!("{base}/hooks/literal").as_str(),
    ] {
        let body = expect_kube_status(
            server
                .post(&webhooks_path("team"))
                .json(&json!({"metadata": {"name": "internal"}, "spec": {"url": url}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
        )
        .await;
        let cause = &body["details"]["causes"][0];
        assert_eq!(cause["field"], "spec.url", "{body}");
        assert!(
            cause["message"]
                .as_str()
                .unwrap()
                .contains("is not allowed by the egress policy ([egress] allow)"),
            "{body}"
        );
    }

    // A name is known only when it is resolved: at delivery, where localhost is loopback.
    let port = base.rsplit_once(':').unwrap().1;
    subscribe(
        &server,
        "team",
        json!({"metadata": {"name": "by-name"}, "spec": {"url": format!("http://localhost:{port}/hooks/by-name")}}),
    )
    .await;
    let (status, body, _) = send(
        &server,
        &server.client(),
        Method::POST,
        "/apis/image.openshift.io/v1/namespaces/team/imagestreams",
        Some(json!({"metadata": {"name": "app"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let log = wait_for_log(
        &server,
        "team",
        "by-name",
        "a refused attempt",
        |delivery| !delivery["attempts"].as_array().unwrap().is_empty(),
    )
    .await;
    let error = log[0]["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "(loopback) of localhost is not allowed by the egress policy ([egress] allow)"
        ),
        "{log:#?}"
    );
    assert!(receiver.at("by-name").is_empty());
}

/// Sends `method` with `body` to a webhook's path (`suffix` after its name) as the admin;
/// answers the status and body.
async fn on_webhook(
    server: &TestServer,
    method: Method,
    name: &str,
    suffix: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, body, _) = send(
        server,
        &server.client(),
        method,
        &format!("{}/{name}{suffix}", webhooks_path("team")),
        body,
    )
    .await;
    (status, body)
}

/// Disables or enables `team/ci` by a merge patch, as the admin; the webhook answered.
async fn set_disabled(server: &TestServer, disabled: bool) -> Value {
    expect_status(
        server
            .client()
            .patch(server.url(&format!("{}/ci", webhooks_path("team"))))
            .header("content-type", "application/merge-patch+json")
            .body(json!({"spec": {"disabled": disabled}}).to_string()),
        StatusCode::OK,
    )
    .await
    .json::<Value>()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_an_edit_and_a_disabled_webhook_with_each_answer_kept() {
    let server = TestServer::start_with(&[
        "--webhook-retry-base-millis",
        "200",
        "--egress-allow",
        "127.0.0.1/32",
    ]);
    create_namespace(&server.client(), &server, "team").await;
    let (receiver, hooks) = Receiver::start().await;
    receiver.answer(200);
    receiver.reply(r#"{"accepted":true}"#);
    subscribe(
        &server,
        "team",
        json!({
            "metadata": {"name": "ci"},
            "spec": {"url": format!("{hooks}/hooks/ci"), "events": ["push"], "secret": "ci-secret"},
        }),
    )
    .await;
    // A second subscription, to know when an event has been through the dispatcher.
    subscribe(
        &server,
        "team",
        json!({"metadata": {"name": "witness"}, "spec": {"url": format!("{hooks}/hooks/witness"), "events": ["push"]}}),
    )
    .await;

    // A test event: through the signed path, shown in the log with the body sent and the
    // answer's body.
    let (status, made) = on_webhook(&server, Method::POST, "ci", "/ping", None).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["event"], "ping");
    assert_eq!(made["state"], "pending");
    let pinged = receiver.wait_for("ci", "a ping", |r| !r.is_empty()).await;
    assert_eq!(pinged[0].header("x-berth-event"), "ping");
    assert_eq!(
        pinged[0].header("x-berth-delivery"),
        made["id"].as_str().unwrap()
    );
    assert_eq!(pinged[0].header("content-type"), "application/json");
    assert_signed(&pinged[0], "ci-secret");
    let ping = pinged[0].json();
    assert_eq!(
        (
            &ping["type"],
            &ping["namespace"],
            &ping["webhook"],
            &ping["events"]
        ),
        (
            &json!("Ping"),
            &json!("team"),
            &json!("ci"),
            &json!(["push"])
        )
    );
    let log = wait_for_log(&server, "team", "ci", "the ping delivered", |d| {
        d["state"] == "delivered"
    })
    .await;
    assert_eq!(
        log[0]["body"],
        String::from_utf8(pinged[0].body.clone()).unwrap()
    );
    assert_eq!(
        log[0]["attempts"][0]["responseBody"],
        r#"{"accepted":true}"#
    );
    assert!(log[0]["attempts"][0].get("responseBodyTruncated").is_none());

    // A long answer is kept to its first 4 KiB, and said to be cut.
    receiver.reply(&"x".repeat(10_000));
    on_webhook(&server, Method::POST, "ci", "/ping", None).await;
    let log = wait_for_log(&server, "team", "ci", "a second ping delivered", |d| {
        d["state"] == "delivered" && d["id"] != log[0]["id"]
    })
    .await;
    assert_eq!(
        log[0]["attempts"][0]["responseBody"].as_str().unwrap(),
        "x".repeat(4096)
    );
    assert_eq!(log[0]["attempts"][0]["responseBodyTruncated"], true);
    receiver.reply("");

    // Edited: URL, events and format; the secret is kept. An address the egress policy
    // refuses is refused as at creation, and nothing changes.
    for refused in ["http://169.254.169.254/latest/", "http://127.0.0.2:9/hook"] {
        let (status, body) = on_webhook(
            &server,
            Method::PUT,
            "ci",
            "",
            Some(json!({"spec": {"url": refused}})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(cause_fields(&body), ["spec.url"]);
        assert!(body.to_string().contains("egress policy"), "{body}");
    }
    let (status, edited) = on_webhook(
        &server,
        Method::PUT,
        "ci",
        "",
        Some(json!({
            "metadata": {"name": "ci"},
            "spec": {"url": format!("{hooks}/hooks/moved"), "events": ["push", "delete"], "format": "cloudevents"},
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["spec"]["url"], format!("{hooks}/hooks/moved"));
    assert_eq!(edited["spec"]["events"], json!(["push", "delete"]));
    assert_eq!(edited["spec"]["disabled"], false);
    assert!(edited["spec"].get("secret").is_none(), "{edited}");
    let (status, body) = on_webhook(
        &server,
        Method::PUT,
        "ci",
        "",
        Some(json!({"metadata": {"name": "cd"}, "spec": {"url": format!("{hooks}/hooks/x")}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    on_webhook(&server, Method::POST, "ci", "/ping", None).await;
    let moved = receiver
        .wait_for("moved", "a ping at the new URL", |r| !r.is_empty())
        .await;
    assert_eq!(
        moved[0].header("content-type"),
        "application/cloudevents+json"
    );
    assert_eq!(moved[0].json()["type"], "io.berth.webhook.ping");
    assert_signed(&moved[0], "ci-secret");

    // Disabled (a merge patch): no test events, and no delivery for a push meanwhile.
    let disabled = set_disabled(&server, true).await;
    assert_eq!(disabled["spec"]["disabled"], true);
    assert_eq!(
        disabled["spec"]["format"], "cloudevents",
        "the rest is kept"
    );
    let (status, body) = on_webhook(&server, Method::POST, "ci", "/ping", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
    push_image(&server, "team/app", "v1", "one").await;
    receiver
        .wait_for("witness", "the push", |r| r.len() == 1)
        .await;
    let log = deliveries(&server, "team", "ci").await;
    assert!(log.iter().all(|d| d["event"] == "ping"), "{log:#?}");

    // Enabled again: the next push is delivered, naming its image; the one made while it was
    // disabled never is.
    let enabled = set_disabled(&server, false).await;
    assert_eq!(enabled["spec"]["disabled"], false);
    let v2 = push_image(&server, "team/app", "v2", "two").await;
    let received = receiver
        .wait_for("moved", "the push after enabling", |r| {
            r.iter().any(|r| r.header("x-berth-event") == "push")
        })
        .await;
    let pushes: Vec<&Received> = received
        .iter()
        .filter(|r| r.header("x-berth-event") == "push")
        .collect();
    assert_eq!(pushes.len(), 1);
    let target = &pushes[0].json()["data"]["events"][0]["target"];
    assert_eq!(
        (&target["repository"], &target["tag"], &target["digest"]),
        (&json!("team/app"), &json!("v2"), &json!(v2))
    );
    let log = wait_for_log(&server, "team", "ci", "the push delivered", |d| {
        d["event"] == "push" && d["state"] == "delivered"
    })
    .await;
    assert!(log[0]["body"].as_str().unwrap().contains(&v2));
    assert_eq!(log.iter().filter(|d| d["event"] == "push").count(), 1);

    // A new secret, shown once, signs what follows.
    let (status, made) = on_webhook(&server, Method::POST, "ci", "/secret", None).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["spec"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    let (_, shown) = on_webhook(&server, Method::GET, "ci", "", None).await;
    assert!(shown["spec"].get("secret").is_none(), "{shown}");
    on_webhook(&server, Method::POST, "ci", "/ping", None).await;
    let received = receiver
        .wait_for("moved", "a ping under the new secret", |r| {
            r.iter()
                .filter(|r| r.header("x-berth-event") == "ping")
                .count()
                == 2
        })
        .await;
    assert_signed(received.last().unwrap(), &secret);

    // Only the namespace's admins: a viewer changes nothing.
    let viewer = server.user("viewer");
    grant_user(&server, "team", "viewer", "viewer").await;
    let hook = server.url(&format!("{}/ci", webhooks_path("team")));
    for request in [
        viewer
            .put(&hook)
            .json(&json!({"spec": {"url": format!("{hooks}/hooks/stolen")}})),
        viewer
            .patch(&hook)
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"spec":{"disabled":true}}"#),
        viewer.post(format!("{hook}/ping")),
        viewer.post(format!("{hook}/secret")),
    ] {
        expect_kube_status(request, StatusCode::FORBIDDEN, "Forbidden").await;
    }
    let (_, after) = on_webhook(&server, Method::GET, "ci", "", None).await;
    assert_eq!(after["spec"]["url"], format!("{hooks}/hooks/moved"));
    assert_eq!(after["spec"]["disabled"], false);
    assert_eq!(
        on_webhook(&server, Method::POST, "nothing", "/ping", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
