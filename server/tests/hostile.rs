//! A hostile-input sweep: a few thousand generated requests over every route (the registry, the
//! APIs, sign-in, the console's pages and server functions, operations), with and without
//! credentials, odd methods, injected markup and control characters in every path segment and
//! query value, malformed and absurd bodies and headers. Whatever arrives, Berth answers in the
//! surface's own error format, never with a 5xx, never with the markup unescaped in a page, and
//! is still healthy at the end.
//!
//! The requests come from a seeded generator: `BERTH_HOSTILE_SEED` replays a run, and
//! `BERTH_HOSTILE_REQUESTS` sets how many are sent (default 4,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use common::{OCI_MANIFEST, TestServer, image_manifest, put_manifest, sha256};
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

/// What a page must never contain raw: an element the payloads try to inject.
const MARKER: &str = "<berthx";

/// Values put into path segments, query values, headers and JSON fields.
fn payloads() -> Vec<String> {
    let mut values: Vec<String> = [
        "<berthx>",
        "\"'><berthx onerror=alert(1)>",
        "</title><berthx>",
        "</script><berthx>",
        "javascript:alert(1)",
        "..",
        "../../etc/passwd",
        ".",
        "%2e%2e",
        "\0",
        "a\r\nX-Injected: 1",
        "\t/evil.example",
        "//evil.example",
        "/\\evil.example",
        "\u{202e}gnp.exe",
        "é",
        "-1",
        "0",
        "18446744073709551616",
        "9223372036854775807",
        "1e308",
        "NaN",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "sha256:zz",
        "sha512:",
        "{}",
        "[",
        "%",
        "%zz",
        "~",
        "*",
        "a/b",
        "A",
        "x@y",
        ":",
        "latest",
        "team",
        "app",
        "",
        " ",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    values.push("a".repeat(300));
    values.push("b".repeat(9000));
    values.push(format!("{}<berthx>", "c/".repeat(200)));
    values
}

/// Path segments: everything but unreserved characters encoded, so the payload arrives as the
/// server decodes it.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\')
    .add(b'\'')
    .add(b'^')
    .add(b'|');

/// The routes, with placeholders filled from real objects or payloads: `{ns}`, `{stream}`,
/// `{tag}`, `{digest}`, `{name}`, `{uid}`, `{id}`, `{repo}` (namespace/stream) and `{ref}`.
const ROUTES: &[&str] = &[
    // The registry.
    "/v2/",
    "/v2",
    "/v2/_catalog",
    "/v2/{repo}/manifests/{ref}",
    "/v2/{repo}/blobs/{digest}",
    "/v2/{repo}/blobs/uploads/",
    "/v2/{repo}/blobs/uploads/{uid}",
    "/v2/{repo}/tags/list",
    "/v2/{repo}/referrers/{digest}",
    "/v2/{name}",
    "/auth/token",
    // Image streams and Kubernetes-style APIs.
    "/api/v1/namespaces",
    "/api/v1/namespaces/{ns}",
    "/api/v1/namespaces/{ns}/secrets",
    "/api/v1/namespaces/{ns}/secrets/{name}",
    "/api/v1/namespaces/{ns}/serviceaccounts",
    "/api/v1/namespaces/{ns}/serviceaccounts/{name}",
    "/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
    "/api/v1/namespaces/{ns}/resourcequotas",
    "/api/v1/namespaces/{ns}/resourcequotas/{name}",
    "/api/v1/namespaces/{ns}/limitranges",
    "/api/v1/namespaces/{ns}/limitranges/{name}",
    "/api/v1/{name}",
    "/apis/image.openshift.io/v1",
    "/apis/image.openshift.io/v1/imagestreams",
    "/apis/image.openshift.io/v1/namespaces/{ns}/imagestreams",
    "/apis/image.openshift.io/v1/namespaces/{ns}/imagestreams/{stream}",
    "/apis/image.openshift.io/v1/namespaces/{ns}/imagestreamtags",
    "/apis/image.openshift.io/v1/namespaces/{ns}/imagestreamtags/{stream}:{tag}",
    "/apis/image.openshift.io/v1/namespaces/{ns}/imagestreamimages/{stream}@{digest}",
    "/apis/image.openshift.io/v1/namespaces/{ns}/imagestreammappings",
    "/apis/image.openshift.io/v1/namespaces/{ns}/imagestreamimports",
    "/apis/image.openshift.io/v1/images",
    "/apis/image.openshift.io/v1/images/{digest}",
    "/apis/image.openshift.io/v1/{name}",
    "/apis/access.berth.io/v1",
    "/apis/access.berth.io/v1/personaltokens",
    "/apis/access.berth.io/v1/personaltokens/{uid}",
    "/apis/access.berth.io/v1/rolebindings",
    "/apis/access.berth.io/v1/rolebindings/{name}",
    "/apis/access.berth.io/v1/namespaces/{ns}/rolebindings",
    "/apis/access.berth.io/v1/namespaces/{ns}/rolebindings/{name}",
    "/apis/access.berth.io/v1/namespaces/{ns}/whocan",
    "/apis/access.berth.io/v1/namespaces/{ns}/permissions",
    "/apis/access.berth.io/v1/namespaces/{ns}/serviceaccounts/{name}/tokens",
    "/apis/access.berth.io/v1/namespaces/{ns}/serviceaccounts/{name}/tokens/{uid}",
    "/apis/access.berth.io/v1/auditevents",
    "/apis/user.openshift.io/v1/users",
    "/apis/user.openshift.io/v1/users/~",
    "/apis/user.openshift.io/v1/groups",
    "/apis/user.openshift.io/v1/groups/{name}",
    "/apis/project.openshift.io/v1/projects",
    "/apis/project.openshift.io/v1/projects/{name}",
    "/apis/authorization.k8s.io/v1",
    "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    "/apis/berth.io/v1/namespaces/{ns}/webhooks",
    "/apis/berth.io/v1/namespaces/{ns}/webhooks/{name}",
    "/apis/berth.io/v1/namespaces/{ns}/webhooks/{name}/deliveries",
    "/apis/berth.io/v1/namespaces/{ns}/webhooks/{name}/deliveries/{id}/redeliver",
    "/apis/berth.io/v1/namespaces/{ns}/immutabletagrules",
    "/apis/berth.io/v1/namespaces/{ns}/immutabletagrules/{name}",
    "/apis/{name}",
    // Sign-in.
    "/oauth/authorize",
    "/oauth/token",
    "/oauth/jwks",
    "/oauth/token/implicit",
    "/oauth/token/request",
    "/oauth/authorize?client_id=openshift-challenging-client",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
    "/console/login",
    "/console/callback",
    "/console/logout",
    // The console's pages and server functions.
    "/",
    "/tokens",
    "/ns/{ns}",
    "/ns/{ns}/access",
    "/ns/{ns}/webhooks",
    "/ns/{ns}/secrets",
    "/ns/{ns}/streams/{stream}",
    "/ns/{ns}/streams/{stream}/access",
    "/ns/{ns}/streams/{stream}/images/{digest}",
    "/{name}",
    "/console/api/{name}",
    "/console/api/events",
    "/pkg/{name}",
    // Operations.
    "/healthz",
    "/readyz",
    "/metrics",
];

/// The console's server functions (`/console/api/<name>`).
const SERVER_FUNCTIONS: &[&str] = &[
    "session",
    "change",
    "namespaces",
    "create_namespace",
    "delete_namespace",
    "streams",
    "stream",
    "tag",
    "import",
    "webhooks",
    "create_webhook",
    "delete_webhook",
    "redeliver_webhook",
    "pull_secrets",
    "create_pull_secret",
    "delete_pull_secret",
    "untag",
    "delete_stream",
    "image",
    "access",
    "add_binding",
    "remove_binding",
    "create_service_account",
    "delete_service_account",
    "permissions",
    "create_service_account_token",
    "revoke_service_account_token",
    "tokens",
    "create_token",
    "revoke_token",
    "audit_events",
    "may_read_audit",
    "users",
    "may_list_users",
];

/// Query keys the routes read.
const QUERY_KEYS: &[&str] = &[
    "limit",
    "continue",
    "watch",
    "timeoutSeconds",
    "resourceVersion",
    "fieldSelector",
    "labelSelector",
    "n",
    "last",
    "then",
    "mount",
    "from",
    "digest",
    "artifactType",
    "scope",
    "service",
    "account",
    "namespace",
    "stream",
    "tag",
    "filter",
    "sort",
    "offset",
    "q",
    "page",
    "code",
    "state",
    "client_id",
    "redirect_uri",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "verb",
    "resource",
    "dryRun",
];

/// JSON fields the bodies fill with payloads.
const BODY_FIELDS: &[&str] = &[
    "/metadata/name",
    "/metadata/namespace",
    "/metadata/resourceVersion",
    "/spec/expiresInDays",
    "/spec/expirationSeconds",
    "/spec/url",
    "/spec/secret",
    "/spec/events/0",
    "/spec/tags/include/0",
    "/spec/repositories/exclude/0",
    "/spec/tags/0/name",
    "/spec/tags/0/from/name",
    "/spec/tags/0/from/kind",
    "/spec/tag/from/name",
    "/spec/images/0/from/name",
    "/spec/images/0/from/kind",
    "/spec/images/0/to/name",
    "/spec/repository/from/name",
    "/spec/resourceAttributes/namespace",
    "/spec/resourceAttributes/verb",
    "/spec/namespace",
    "/tag/from/name",
    "/image/dockerImageReference",
    "/users/0",
    "/roleRef/name",
    "/subjects/0/kind",
    "/subjects/0/name",
    "/data/.dockerconfigjson",
    "/stringData/.dockerconfigjson",
    "/type",
    "/schemaVersion",
    "/mediaType",
    "/config/digest",
    "/config/size",
    "/layers/0/digest",
    "/layers/0/size",
    "/manifests/0/digest",
    "/subject/digest",
];

/// Known-good values for placeholders, so that requests reach past the first checks.
struct Objects {
    namespace: String,
    stream: String,
    tag: String,
    manifest: String,
    layer: String,
}

struct Generator {
    rng: StdRng,
    payloads: Vec<String>,
    objects: Objects,
}

/// One generated request.
struct Case {
    template: &'static str,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    credentials: Credentials,
}

#[derive(Debug, Clone, Copy)]
enum Credentials {
    None,
    Admin,
    Tenant,
    Garbage,
    LongBasic,
}

impl Generator {
    fn payload(&mut self) -> String {
        self.payloads.choose(&mut self.rng).unwrap().clone()
    }

    /// A good value half of the time, else a payload.
    fn value(&mut self, good: &str) -> String {
        if self.rng.gen_bool(0.5) {
            good.to_owned()
        } else {
            self.payload()
        }
    }

    fn segment(&mut self, good: &str) -> String {
        let value = self.value(good);
        // Now and then a raw slash or dot segment, which routers treat specially.
        if self.rng.gen_bool(0.1) {
            value
        } else {
            utf8_percent_encode(&value, SEGMENT).to_string()
        }
    }

    fn path(&mut self, template: &str) -> String {
        let mut path = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            path.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            let name = &rest[start + 1..end];
            let (ns, stream) = (self.objects.namespace.clone(), self.objects.stream.clone());
            let filled = match name {
                "ns" => self.segment(&ns),
                "stream" => self.segment(&stream),
                "tag" => {
                    let tag = self.objects.tag.clone();
                    self.segment(&tag)
                }
                "digest" => {
                    let digest = if self.rng.gen_bool(0.5) {
                        self.objects.manifest.clone()
                    } else {
                        self.objects.layer.clone()
                    };
                    self.segment(&digest)
                }
                "repo" => {
                    let first = self.segment(&ns);
                    let second = self.segment(&stream);
                    format!("{first}/{second}")
                }
                "ref" => {
                    let good = if self.rng.gen_bool(0.5) {
                        self.objects.tag.clone()
                    } else {
                        self.objects.manifest.clone()
                    };
                    self.segment(&good)
                }
                "name" if template.starts_with("/console/api/") => {
                    let function = SERVER_FUNCTIONS.choose(&mut self.rng).unwrap().to_string();
                    self.segment(&function)
                }
                "uid" | "id" => self.segment("0b6f8c52-1d7e-4c1b-9c3e-5f0a2a7c9d11"),
                _ => self.segment("default"),
            };
            path.push_str(&filled);
            rest = &rest[end + 1..];
        }
        path.push_str(rest);
        let queries = self.rng.gen_range(0..4);
        // A template may carry a query of its own (the challenging client's id).
        let has_query = path.contains('?');
        for i in 0..queries {
            let key = QUERY_KEYS.choose(&mut self.rng).unwrap();
            let value = self.payload();
            let _ = write!(
                path,
                "{}{key}={}",
                if i == 0 && !has_query { '?' } else { '&' },
                utf8_percent_encode(&value, SEGMENT)
            );
        }
        path
    }

    fn method(&mut self) -> Method {
        const METHODS: &[&str] = &[
            "GET", "GET", "GET", "HEAD", "POST", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
            "TRACE", "PROPFIND", "BERTHX", "CONNECTX",
        ];
        Method::from_bytes(METHODS.choose(&mut self.rng).unwrap().as_bytes()).unwrap()
    }

    fn body(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..10) {
            0 => Vec::new(),
            1 => b"{".to_vec(),
            2 => b"null".to_vec(),
            3 => format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            4 => {
                let mut form = String::new();
                for i in 0..self.rng.gen_range(1..5) {
                    let key = QUERY_KEYS.choose(&mut self.rng).unwrap();
                    let value = self.payload();
                    let _ = write!(
                        form,
                        "{}{key}={}",
                        if i == 0 { "" } else { "&" },
                        utf8_percent_encode(&value, SEGMENT)
                    );
                }
                form.into_bytes()
            }
            5 => vec![0xff, 0xfe, 0x00, b'{'],
            _ => {
                let mut document = json!({
                    "kind": "Anything",
                    "apiVersion": "v1",
                    "metadata": {"name": "hostile"},
                    "spec": {},
                });
                for _ in 0..self.rng.gen_range(1..5) {
                    let field = *BODY_FIELDS.choose(&mut self.rng).unwrap();
                    let value = match self.rng.gen_range(0..6) {
                        0 => json!(u64::MAX),
                        1 => json!(-1),
                        2 => json!(1e300),
                        3 => json!(4_000_000_000u64),
                        4 => json!([self.payload()]),
                        _ => json!(self.payload()),
                    };
                    set_pointer(&mut document, field, value);
                }
                serde_json::to_vec(&document).unwrap()
            }
        }
    }

    fn headers(&mut self) -> Vec<(String, String)> {
        const NAMES: &[&str] = &[
            "accept",
            "content-type",
            "content-range",
            "range",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-forwarded-for",
            "origin",
            "referer",
            "cookie",
            "if-none-match",
            "x-csrf-token",
        ];
        const VALUES: &[&str] = &[
            "application/vnd.oci.image.manifest.v1+json",
            "application/json;as=Table;v=v1;g=meta.k8s.io",
            "text/html",
            "*/*",
            "bytes=0-",
            "bytes=-1",
            "bytes=99999999999999999999-1",
            "bytes 0-18446744073709551615/*",
            "0-18446744073709551615",
            "5-2",
            "https",
            "gopher",
            "evil.example",
            "a\",service=\"x",
            "berth_session=AAAA",
            "\"*\"",
        ];
        let mut headers = Vec::new();
        for _ in 0..self.rng.gen_range(0..3) {
            let name = NAMES.choose(&mut self.rng).unwrap().to_string();
            let value = if self.rng.gen_bool(0.7) {
                VALUES.choose(&mut self.rng).unwrap().to_string()
            } else {
                // Header values cannot carry control characters; the rest of a payload can.
                self.payload().replace(|c: char| c.is_control(), "")
            };
            headers.push((name, value));
        }
        headers
    }

    fn case(&mut self) -> Case {
        let template = *ROUTES.choose(&mut self.rng).unwrap();
        let method = self.method();
        let path = self.path(template);
        let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then(|| self.body());
        let headers = self.headers();
        let credentials = match self.rng.gen_range(0..8) {
            0 | 1 => Credentials::None,
            2 | 3 => Credentials::Admin,
            4 | 5 => Credentials::Tenant,
            6 => Credentials::Garbage,
            _ => Credentials::LongBasic,
        };
        Case {
            template,
            method,
            path,
            headers,
            body,
            credentials,
        }
    }
}

/// Sets `pointer` (`/a/b/0`) in `document`, making objects and arrays on the way.
fn set_pointer(document: &mut Value, pointer: &str, value: Value) {
    let mut target = document;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let next_is_index = parts.get(i + 1).is_some_and(|p| p.parse::<usize>().is_ok());
        let make = || {
            if next_is_index { json!([]) } else { json!({}) }
        };
        target = match part.parse::<usize>() {
            Ok(index) => {
                if !target.is_array() {
                    *target = json!([]);
                }
                let array = target.as_array_mut().unwrap();
                while array.len() <= index {
                    array.push(Value::Null);
                }
                if last {
                    array[index] = value;
                    return;
                }
                if !(array[index].is_object() || array[index].is_array()) {
                    array[index] = make();
                }
                &mut array[index]
            }
            Err(_) => {
                if !target.is_object() {
                    *target = json!({});
                }
                let object = target.as_object_mut().unwrap();
                if last {
                    object.insert((*part).to_owned(), value);
                    return;
                }
                let entry = object.entry((*part).to_owned()).or_insert_with(make);
                if !(entry.is_object() || entry.is_array()) {
                    *entry = make();
                }
                entry
            }
        };
    }
}

/// What was wrong with one answer.
fn judge(case: &Case, path: &str, status: u16, content_type: &str, body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    if status >= 500 {
        return Some(format!("answered {status}"));
    }
    if content_type.starts_with("text/html") && text.contains(MARKER) {
        return Some("injected markup unescaped in an HTML page".into());
    }
    let head = case.method == Method::HEAD;
    if status >= 400 && !head {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        if path.starts_with("/v2") {
            let code = json
                .as_ref()
                .and_then(|j| j["errors"][0]["code"].as_str())
                .unwrap_or_default();
            if code.is_empty() {
                return Some(format!("a {status} without an OCI error body: {text:.200}"));
            }
        } else if path == "/auth/token" {
            if json.is_none() {
                return Some(format!("a {status} without a JSON error body: {text:.200}"));
            }
        } else if path.starts_with("/api/")
            || path.starts_with("/apis/")
            || path == "/api"
            || path == "/apis"
        {
            let kind = json
                .as_ref()
                .and_then(|j| j["kind"].as_str())
                .unwrap_or_default();
            if kind != "Status" {
                return Some(format!("a {status} without a Status body: {text:.200}"));
            }
        }
    }
    None
}

/// Standard methods by name; invented ones as one class.
fn method_class(method: &Method) -> &str {
    match method.as_str() {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method.as_str(),
        _ => "OTHER",
    }
}

/// Sends `case` and judges the answer; streams (watches, the event feed) are judged by their
/// head and first second.
async fn run(
    client: &reqwest::Client,
    server: &TestServer,
    tokens: &(String, String),
    case: &Case,
) -> Option<String> {
    let mut request = client.request(case.method.clone(), server.url(&case.path));
    for (name, value) in &case.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request = match case.credentials {
        Credentials::None => request,
        Credentials::Admin => request.bearer_auth(&tokens.0),
        Credentials::Tenant => request.bearer_auth(&tokens.1),
        Credentials::Garbage => request.header("authorization", "Bearer <berthx>.e30.AAAA"),
        Credentials::LongBasic => request.basic_auth("u".repeat(20_000), Some("x")),
    };
    if let Some(body) = &case.body {
        request = request.body(body.clone());
    }
    let response = match request.send().await {
        Ok(response) => response,
        // The server may close a connection it refuses (a header too large): not a failure,
        // as long as it stays healthy; a timeout is.
        Err(err) if err.is_timeout() => return Some(format!("no answer: {err}")),
        Err(_) => return None,
    };
    let status = response.status().as_u16();
    // The path as sent (a client resolves `..` segments before sending).
    let sent = response.url().path().to_owned();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    let read = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > 4 * 1024 * 1024 {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    })
    .await;
    let streaming = content_type.starts_with("text/event-stream")
        || case.path.contains("watch=")
        || case.path.starts_with("/console/api/events");
    if read.is_err() && !streaming {
        return Some("the body did not end within 2 s".into());
    }
    judge(case, &sent, status, &content_type, &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_hostile_requests_get_no_5xx_and_no_markup() {
    let server = TestServer::start();
    let tenant_token = server.add_user("mallory", "mallory-password-1", &[]);
    // Real objects, so that generated requests reach deep into each route.
    let manifest = image_manifest(&server, "team/app", "hostile").await;
    let response = put_manifest(&server, "team/app", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(response.status(), 201);
    let parsed: Value = serde_json::from_slice(&manifest).unwrap();
    let objects = Objects {
        namespace: "team".into(),
        stream: "app".into(),
        tag: "v1".into(),
        manifest: sha256(&manifest),
        layer: parsed["layers"][0]["digest"].as_str().unwrap().to_owned(),
    };

    let seed: u64 = std::env::var("BERTH_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0be7_7a11);
    let count: usize = std::env::var("BERTH_HOSTILE_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    // A sweep of no requests would pass having judged nothing.
    assert!(count > 0, "BERTH_HOSTILE_REQUESTS must be at least 1");
    let mut generator = Generator {
        rng: StdRng::seed_from_u64(seed),
        payloads: payloads(),
        objects,
    };
    let cases: Vec<Case> = (0..count).map(|_| generator.case()).collect();

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let tokens = Arc::new((server.admin_token.clone(), tenant_token));
    let failures: Vec<(String, String)> = futures_util::stream::iter(cases.iter())
        .map(|case| {
            let (client, server, tokens) = (&client, &server, Arc::clone(&tokens));
            async move {
                run(client, server, &tokens, case).await.map(|why| {
                    // Grouped by route and kind of fault, one example each.
                    let kind = why.split(':').next().unwrap_or_default().to_owned();
                    let group = format!("{} {}: {kind}", case.template, method_class(&case.method));
                    let example = format!(
                        "{} {} ({:?}{}): {why}",
                        case.method,
                        case.path.chars().take(200).collect::<String>(),
                        case.credentials,
                        if case.headers.is_empty() {
                            String::new()
                        } else {
                            format!(", headers {:?}", case.headers)
                        }
                    );
                    (group, example)
                })
            }
        })
        .buffer_unordered(8)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;

    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(
        health.status(),
        200,
        "the server is not healthy after the sweep"
    );
    let mut groups: std::collections::BTreeMap<String, (usize, String)> = Default::default();
    for (group, example) in &failures {
        let entry = groups.entry(group.clone()).or_insert((0, example.clone()));
        entry.0 += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {count} requests (seed {seed}) were answered wrongly, in {} groups:\n{}",
        failures.len(),
        groups.len(),
        groups
            .iter()
            .map(|(group, (n, example))| format!("[{n}] {group}\n      e.g. {example}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
