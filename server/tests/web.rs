//! Berth at the HTTP edge, attacked: markup through every path and query parameter of every
//! console page and sign-in page (never in the HTML unescaped; every script carries the nonce
//! of the page's Content-Security-Policy), the return address after sign-in (only this site,
//! never a header built from the raw text), the token realm (never the `Host` header as sent),
//! `X-Forwarded-*` believed only from trusted proxies (the session cookie `Secure` behind
//! one), and connections that stop mid-header closed after the header read timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use app::format::encode;
use common::{
    ADMIN_PASSWORD, TestServer, anonymous, browser, console_session, expect_status, form_fields,
    header, location, push_blob, put_manifest, self_signed_tls, sha256, submit_sign_in_form,
    text_of,
};
use reqwest::StatusCode;

/// Markup meant to break out of text, attributes, `<title>` and raw-text elements.
const PAYLOADS: [&str; 7] = [
    "</title><script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg onload=alert(1)>",
    "\" autofocus onfocus=\"alert(1)",
    "</script><script>alert(1)</script>",
    "</textarea><iframe srcdoc=x>",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
];

/// The console's routes, read from the route table in `app/src/lib.rs` (so a new page is
/// attacked too): `/ns/:namespace/streams/:stream`, ...
fn console_routes() -> Vec<String> {
    let table =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../app/src/lib.rs")).unwrap();
    let routes: Vec<String> = table
        .split("path!(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect();
    assert!(routes.len() >= 9, "the route table: {routes:?}");
    routes
}

/// One element's start tag.
#[derive(Debug)]
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
}

impl Tag {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The start tags of a document as a browser's tokenizer reads them: comments and end tags
/// skipped, the text of `script`, `style`, `title` and `textarea` not read as markup (so a
/// `</title>` inside a title ends it, as it would in a browser).
fn start_tags(html: &str) -> Vec<Tag> {
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut tags = Vec::new();
    let mut at = 0;
    while let Some(offset) = html[at..].find('<') {
        let start = at + offset + 1;
        let rest = &html[start..];
        if let Some(comment) = rest.strip_prefix("!--") {
            at = start + 3 + comment.find("-->").map_or(comment.len(), |end| end + 3);
            continue;
        }
        if rest.starts_with(['!', '/', '?']) {
            at = start + rest.find('>').map_or(rest.len(), |end| end + 1);
            continue;
        }
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        if name_len == 0 {
            at = start;
            continue;
        }
        let name = rest[..name_len].to_ascii_lowercase();
        let mut i = start + name_len;
        let mut attributes = Vec::new();
        loop {
            while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
                i += 1;
            }
            if i >= bytes.len() || bytes[i] == b'>' {
                i += 1;
                break;
            }
            let name_start = i;
            while i < bytes.len() && !b" \t\n\r\x0c/>=".contains(&bytes[i]) {
                i += 1;
            }
            let attribute = html[name_start..i].to_ascii_lowercase();
            let mut value = String::new();
            if i < bytes.len() && bytes[i] == b'=' {
                i += 1;
                if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                    let quote = bytes[i];
                    let end = html[i + 1..]
                        .find(quote as char)
                        .map_or(bytes.len(), |e| i + 1 + e);
                    value = html[i + 1..end].to_owned();
                    i = end + 1;
                } else {
                    let begin = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = html[begin..i].to_owned();
                }
            }
            attributes.push((attribute, value));
        }
        at = i.min(html.len());
        if matches!(name.as_str(), "script" | "style" | "title" | "textarea") {
            let close = format!("</{name}");
            at = lower[at..].find(&close).map_or(html.len(), |end| at + end);
        }
        tags.push(Tag { name, attributes });
    }
    tags
}

/// The script nonce a page's Content-Security-Policy names.
fn policy_nonce(policy: &str) -> Option<String> {
    let script_src = policy
        .split(';')
        .map(str::trim)
        .find(|directive| directive.starts_with("script-src "))?;
    script_src
        .split_whitespace()
        .find_map(|source| source.strip_prefix("'nonce-")?.strip_suffix('\''))
        .map(str::to_owned)
}

/// What every HTML answer must be: served with the security headers, a policy that runs no
/// inline script but the nonce's, and markup whose only scripts carry that nonce, with no
/// event-handler attributes and none of the payloads' elements. `console` pages must also
/// carry the hydration script.
fn check_page(
    what: &str,
    response_headers: &reqwest::header::HeaderMap,
    body: &str,
    console: bool,
) {
    let get = |name: &str| {
        response_headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("referrer-policy"), "same-origin", "{what}");
    let policy = get("content-security-policy");
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy}"
    );
    assert!(policy.contains("object-src 'none'"), "{what}: {policy}");
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("'unsafe-eval'"),
        "{what}: {policy}"
    );
    // A page rendered by the console has a nonce; the sign-in pages run no script at all.
    let nonce = policy_nonce(&policy);
    assert_eq!(nonce.is_some(), console, "{what}: {policy}");
    for payload in PAYLOADS.iter().filter(|p| p.contains('<')) {
        assert!(
            !body.contains(payload),
            "{what}: {payload:?} is in the page unescaped"
        );
    }
    let tags = start_tags(body);
    let titles = tags.iter().filter(|t| t.name == "title").count();
    assert!(titles <= 1, "{what}: {titles} titles");
    let mut hydration = false;
    for tag in &tags {
        assert!(
            !matches!(
                tag.name.as_str(),
                "img" | "iframe" | "object" | "embed" | "base"
            ),
            "{what}: an injected <{}> element",
            tag.name
        );
        for (name, _) in &tag.attributes {
            assert!(
                !name.starts_with("on") && name != "srcdoc",
                "{what}: <{} {name}> is an injected attribute",
                tag.name
            );
        }
        if tag.name == "script" {
            assert!(
                nonce.is_some() && tag.attribute("nonce") == nonce.as_deref(),
                "{what}: a script without the policy's nonce"
            );
            hydration |= tag.attribute("type") == Some("module");
        }
    }
    if console {
        assert!(hydration, "{what}: no hydration script");
    }
}

/// Fetches `path` with `client` and checks the answer (a page, or a redirect).
async fn attack(server: &TestServer, client: &reqwest::Client, path: &str, who: &str) {
    let response = client.get(server.url(path)).send().await.unwrap();
    let status = response.status();
    let what = format!("{who} GET {path} ({status})");
    assert!(!status.is_server_error(), "{what}");
    assert_eq!(
        header(&response, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    if status.is_redirection() {
        // A redirect names a page of this site, percent-encoded.
        let target = header(&response, "location");
        assert!(
            !target.contains('<') && !target.contains('"'),
            "{what}: {target}"
        );
        return;
    }
    let headers = response.headers().clone();
    let html = header(&response, "content-type").starts_with("text/html");
    assert!(html, "{what}: {}", header(&response, "content-type"));
    let body = response.text().await.unwrap();
    check_page(&what, &headers, &body, true);
}

/// Pushes `team/app:v1`, an image whose config and annotations are full of markup (what an
/// image's author controls, shown to everyone who may pull it); answers its digest.
async fn push_hostile_image(server: &TestServer) -> String {
    let payload = PAYLOADS.join(" ");
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "author": payload,
        "config": {
            "Env": [format!("X={payload}")], "Cmd": [payload], "Entrypoint": [payload],
            "WorkingDir": payload, "User": payload, "Labels": {"l": payload, payload.clone(): "v"},
        },
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created": "2024-05-01T09:00:00Z", "created_by": payload, "comment": payload}],
    })
    .to_string();
    let layer = b"a layer".to_vec();
    let config_digest = push_blob(server, "team/app", config.as_bytes()).await;
    let layer_digest = push_blob(server, "team/app", &layer).await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": common::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len(),
                    "annotations": {"org.opencontainers.image.title": payload}}],
        "annotations": {"org.opencontainers.image.description": payload, "x": payload},
    }))
    .unwrap();
    let pushed = put_manifest(server, "team/app", "v1", common::OCI_MANIFEST, &manifest).await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    sha256(&manifest)
}

#[tokio::test(flavor = "multi_thread")]
async fn markup_in_any_page_parameter_stays_text_under_a_nonce_policy() {
    let server = TestServer::start();
    let digest = push_hostile_image(&server).await;
    let (admin, _) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    let anonymous = browser();
    let valid = |param: &str| match param {
        "namespace" => "team".to_owned(),
        "stream" => "app".to_owned(),
        "digest" => digest.clone(),
        "layer" => sha256(b"a layer"),
        other => panic!("a route parameter this test does not know: {other}"),
    };
    let mut paths = Vec::new();
    for route in console_routes() {
        let segments: Vec<&str> = route.split('/').collect();
        let params: Vec<usize> = (0..segments.len())
            .filter(|&i| segments[i].starts_with(':'))
            .collect();
        let path_with = |hostile: &[usize], payload: &str| {
            segments
                .iter()
                .enumerate()
                .map(|(i, segment)| match segment.strip_prefix(':') {
                    Some(_) if hostile.contains(&i) => encode(payload),
                    Some(name) => encode(&valid(name)),
                    None => (*segment).to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/")
        };
        for payload in PAYLOADS {
            // Each parameter alone, then all of them, then every query parameter a page reads
            // (and one none does).
            for &param in &params {
                paths.push(path_with(&[param], payload));
            }
            if params.len() > 1 {
                paths.push(path_with(&params, payload));
            }
            let value = encode(payload);
            let query = [
                "q", "sort", "page", "then", "dir", "in", "offset", "show", "stream", "from", "to",
                "platform", "files", "path", "x",
            ]
            .map(|name| format!("{name}={value}"))
            .join("&");
            let page = match path_with(&[], payload).as_str() {
                "" => "/".to_owned(),
                other => other.to_owned(),
            };
            paths.push(format!("{page}?{query}"));
        }
    }
    // Addresses that are no page: the 404 page.
    for payload in PAYLOADS {
        paths.push(format!("/{}", encode(payload)));
        paths.push(format!("/ns/team/{}/{}", encode(payload), encode(payload)));
    }
    let mut nonces = HashSet::new();
    for path in &paths {
        attack(&server, &anonymous, path, "anonymous").await;
        attack(&server, &admin, path, "admin").await;
    }
    // A new nonce for every page.
    for _ in 0..3 {
        let response = admin.get(server.url("/ns/team")).send().await.unwrap();
        nonces.insert(policy_nonce(&header(&response, "content-security-policy")).unwrap());
    }
    assert_eq!(nonces.len(), 3);
    // The image's markup is on its page, as text.
    let page =
        text_of(admin.get(server.url(&format!("/ns/team/streams/app/images/{digest}")))).await;
    assert!(page.contains("&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
}

/// Pages served at once get their titles: leptos_meta reads a title after the page is rendered,
/// when its route's signals could already be gone (about one page in twenty was a 500 with 16
/// clients at once).
#[tokio::test(flavor = "multi_thread")]
async fn pages_served_at_once_all_render() {
    let server = TestServer::start();
    push_hostile_image(&server).await;
    let (admin, _) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    let pages = [
        "/ns/team",
        "/ns/team/access",
        "/ns/team/webhooks",
        "/ns/team/secrets",
        "/ns/team/lifecycle",
        "/ns/team/streams/app",
    ];
    let clients: Vec<_> = (0..16)
        .map(|n| {
            let (admin, url) = (admin.clone(), server.url(pages[n % pages.len()]));
            tokio::spawn(async move {
                let mut failed = 0;
                for _ in 0..40 {
                    let response = admin.get(&url).send().await.unwrap();
                    if response.status().is_server_error() {
                        failed += 1;
                    }
                    response.bytes().await.unwrap();
                }
                (url, failed)
            })
        })
        .collect();
    for client in clients {
        let (url, failed) = client.await.unwrap();
        assert_eq!(failed, 0, "{failed} of 40 GETs of {url} answered 5xx");
    }
}

/// A page number of any size is a page (past the end, an empty one), never an overflow's panic.
#[tokio::test(flavor = "multi_thread")]
async fn page_numbers_of_any_size_are_pages() {
    let server = TestServer::start();
    push_hostile_image(&server).await;
    let (admin, _) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    for page in [
        "2",
        "9223372036854775807",
        "18446744073709551615",
        "18446744073709551616",
    ] {
        attack(&server, &admin, &format!("/ns/team?page={page}"), "admin").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn markup_in_sign_in_pages_stays_text() {
    let server = TestServer::start();
    let client = browser();
    let callback = server.url("/console/callback");
    for payload in PAYLOADS {
        let value = encode(payload);
        // A refused request: every parameter is the payload.
        let names = [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
            "nonce",
        ];
        let query = names.map(|n| format!("{n}={value}")).join("&");
        let refused = expect_status(
            client.get(server.url(&format!("/oauth/authorize?{query}"))),
            StatusCode::BAD_REQUEST,
        )
        .await;
        let headers = refused.headers().clone();
        check_page(
            "refused authorize",
            &headers,
            &refused.text().await.unwrap(),
            false,
        );

        // A valid request whose free parameters are the payload: the form keeps them.
        let authorize = server.url(&format!(
            "/oauth/authorize?response_type=code&client_id=berth-console&redirect_uri={}&code_challenge={value}&code_challenge_method=S256&state={value}&nonce={value}&scope={value}",
            encode(&callback)
        ));
        let form = expect_status(client.get(&authorize), StatusCode::OK).await;
        let headers = form.headers().clone();
        let policy = header(&form, "content-security-policy");
        // The form posts here and is answered with a redirect to the client's address.
        assert!(
            policy.contains(&format!("form-action 'self' {}", server.base)),
            "{policy}"
        );
        let html = form.text().await.unwrap();
        check_page("sign-in form", &headers, &html, false);
        assert!(form_fields(&html).contains(&("state".to_owned(), payload.to_owned())));

        // A wrong password: the form again, with the user name given.
        let wrong = submit_sign_in_form(
            &client,
            &authorize,
            &server.url("/oauth/authorize"),
            payload,
            "wrong",
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let headers = wrong.headers().clone();
        check_page(
            "failed sign-in",
            &headers,
            &wrong.text().await.unwrap(),
            false,
        );

        // The console's callback refusing the provider's error.
        let started = client
            .get(server.url("/console/login?then=/"))
            .send()
            .await
            .unwrap();
        let state = location(&started)
            .split("state=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        let refused = expect_status(
            client.get(server.url(&format!(
                "/console/callback?state={state}&error={value}&error_description={value}"
            ))),
            StatusCode::BAD_REQUEST,
        )
        .await;
        let headers = refused.headers().clone();
        let body = refused.text().await.unwrap();
        check_page("callback refusal", &headers, &body, false);
        assert!(body.contains("the provider refused the sign-in"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_not_found_page_leaves_the_session_cookie_alone() {
    // Browsers send a host's cookies to all its ports: another Berth's session cookie reaches
    // this one with the request for `/favicon.ico` that its sign-in page makes.
    let server = TestServer::start();
    let response = expect_status(
        anonymous()
            .get(server.url("/apple-touch-icon.png"))
            .header("cookie", "berth_session=AkLYYXGwl-XD4eE0U9e5yg"),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(header(&response, "set-cookie"), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_favicon_is_the_sites_svg_and_leaves_the_session_cookie_alone() {
    let server = TestServer::start();
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = expect_status(
        plain
            .get(server.url("/favicon.ico"))
            .header("cookie", "berth_session=AkLYYXGwl-XD4eE0U9e5yg"),
        StatusCode::PERMANENT_REDIRECT,
    )
    .await;
    assert_eq!(location(&response), "/favicon.svg");
    assert_eq!(header(&response, "set-cookie"), "");
    // The sign-in page names it, so browsers need not guess.
    let login = expect_status(
        plain.get(server.url("/console/login?then=/")),
        StatusCode::SEE_OTHER,
    )
    .await;
    let form = text_of(plain.get(location(&login))).await;
    assert!(
        form.contains(r#"rel="icon" type="image/svg+xml" href="/favicon.svg""#),
        "{form}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_in_pages_are_not_stored() {
    let server = TestServer::start();
    let page = expect_status(anonymous().get(server.url("/")), StatusCode::OK).await;
    assert_ne!(header(&page, "cache-control"), "no-store");
    let (browser, _) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    for path in ["/", "/tokens", "/prune"] {
        let page = browser.get(server.url(path)).send().await.unwrap();
        assert!(
            header(&page, "content-type").starts_with("text/html"),
            "{path}"
        );
        assert_eq!(header(&page, "cache-control"), "no-store", "{path}");
    }
    // A missing page asked by a browser says who is signed in, and is not stored either.
    let missing = browser
        .get(server.url("/no/such/page"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&missing, "cache-control"), "no-store");
    let body = missing.text().await.unwrap();
    assert!(body.contains(r#"data-user="admin""#), "{body}");
    // Server functions answer JSON, which Back does not show.
    let session = expect_status(
        browser.get(server.url("/console/api/session")),
        StatusCode::OK,
    )
    .await;
    assert_ne!(header(&session, "cache-control"), "no-store");
}

/// Signs `user` in through `/console/login?then=<then>` (raw query text) and answers where the
/// callback sends the browser.
async fn return_after_sign_in(server: &TestServer, then: &str) -> reqwest::Response {
    let client = browser();
    let started = client
        .get(server.url(&format!("/console/login?then={then}")))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER, "then={then}");
    let back = submit_sign_in_form(
        &client,
        &location(&started),
        &server.url("/oauth/authorize"),
        "admin",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER, "then={then}");
    client.get(location(&back)).send().await.unwrap()
}

/// A server whose sign-ins are not throttled by this file's many sign-ins.
fn unthrottled(dir: &tempfile::TempDir, args: &[&str]) -> TestServer {
    let config = dir.path().join("berth.toml");
    std::fs::write(&config, "[auth]\nlogin_attempts_per_minute = 1000\n").unwrap();
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    TestServer::start_with(&all)
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_returns_only_to_a_page_of_this_site() {
    let dir = tempfile::tempdir().unwrap();
    let server = unthrottled(&dir, &[]);
    // Tabs and newlines are dropped by browsers (`/\t/evil.example` is `//evil.example`);
    // CR, LF and NUL cannot be in a header at all.
    for hostile in [
        "/%09/evil.example",
        "/%0a/evil.example",
        "%2F%0d%2Fevil.example",
        "/ns%0d%0aSet-Cookie:%20x=1",
        "/%00",
        "//evil.example",
        "/%5C/evil.example",
        "/.//evil.example",
        "https://evil.example",
    ] {
        let done = return_after_sign_in(&server, hostile).await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER, "then={hostile}");
        assert_eq!(location(&done), "/", "then={hostile}");
    }
    let done = return_after_sign_in(&server, "/ns/team%3Fq%3Da%2520b").await;
    assert_eq!(location(&done), "/ns/team?q=a%20b");
}

/// Sends `request` (raw HTTP/1.1) and answers the response's head.
fn raw_request(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

/// The parameters of the `WWW-Authenticate` challenge in a response head, as a client parses
/// them (quoted strings with backslash escapes).
fn challenge(head: &str) -> Vec<(String, String)> {
    let line = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("www-authenticate: ")
                .or_else(|| l.strip_prefix("WWW-Authenticate: "))
        })
        .unwrap_or_else(|| panic!("no challenge in {head}"));
    let mut rest = line.strip_prefix("Bearer ").unwrap();
    let mut params = Vec::new();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').unwrap();
        let mut value = String::new();
        let mut chars = after.strip_prefix('"').unwrap().chars();
        let mut used = name.len() + 2;
        while let Some(c) = chars.next() {
            used += c.len_utf8();
            match c {
                '\\' => {
                    let escaped = chars.next().unwrap();
                    used += escaped.len_utf8();
                    value.push(escaped);
                }
                '"' => break,
                c => value.push(c),
            }
        }
        params.push((name.to_owned(), value));
        rest = rest[used..].trim_start_matches(',');
    }
    params
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_realm_is_this_server_whatever_the_host_header_says() {
    let server = TestServer::start();
    let ask = |host: &str, path: &str| {
        raw_request(
            &server.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
    };
    let realm = |params: &[(String, String)]| {
        params
            .iter()
            .find(|(n, _)| n == "realm")
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    // A quote in Host cannot add parameters; an invalid host is not used at all.
    let injected = challenge(&ask("a\",service=\"x", "/v2/"));
    assert_eq!(
        injected,
        vec![
            ("realm".to_owned(), format!("{}/auth/token", server.base)),
            ("service".to_owned(), "berth".to_owned()),
        ]
    );
    for host in ["evil.example/x", "user@evil.example", "evil.example:99999"] {
        assert_eq!(
            realm(&challenge(&ask(host, "/v2/"))),
            format!("{}/auth/token", server.base),
            "{host}"
        );
    }
    // A valid host is how this client reached the server (another name for it).
    assert_eq!(
        realm(&challenge(&ask("localhost:5000", "/v2/"))),
        "http://localhost:5000/auth/token"
    );
    // The scope is a quoted parameter too.
    let scoped = challenge(&ask(&server.addr, "/v2/team/app/manifests/v1"));
    assert!(
        scoped.contains(&("scope".to_owned(), "repository:team/app:pull".to_owned())),
        "{scoped:?}"
    );

    // With a public URL, that is the realm whatever the request says.
    let pinned = TestServer::start_with(&["--public-url", "https://registry.example/"]);
    let head = raw_request(
        &pinned.addr,
        "GET /v2/ HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        realm(&challenge(&head)),
        "https://registry.example/auth/token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let direct = TestServer::start();
    // The tests' loopback client is the proxy here.
    let proxied = TestServer::start_with(&["--trusted-proxy", "127.0.0.0/8"]);
    let forwarded = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "registry.example"),
    ];
    for (server, trusted) in [(&direct, false), (&proxied, true)] {
        let mut request = anonymous().get(server.url("/v2/"));
        for (name, value) in forwarded {
            request = request.header(name, value);
        }
        let head = request.send().await.unwrap();
        let expected = if trusted {
            "https://registry.example/auth/token".to_owned()
        } else {
            format!("{}/auth/token", server.base)
        };
        assert!(
            header(&head, "www-authenticate").contains(&format!("realm=\"{expected}\"")),
            "{}",
            header(&head, "www-authenticate")
        );

        // The session cookie of a request that came over https (to the proxy) is Secure.
        let login = expect_status(
            browser()
                .get(server.url("/console/login?then=/"))
                .header("x-forwarded-proto", "https"),
            StatusCode::SEE_OTHER,
        )
        .await;
        let cookie = header(&login, "set-cookie");
        assert!(cookie.starts_with("berth_session="), "{cookie}");
        assert_eq!(cookie.contains("; Secure"), trusted, "{cookie}");
        assert!(cookie.contains("HttpOnly"), "{cookie}");
    }
}

/// Whether the server closed `stream` (end of stream, or a reset) before its read timeout.
fn closed_in_time(stream: &mut impl Read) -> bool {
    let mut buffer = [0u8; 256];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) => {
                return !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

const HALF_A_REQUEST: &[u8] = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slo";

#[test]
fn a_connection_that_stops_mid_header_is_closed() {
    let server = TestServer::start_with(&["--header-read-timeout", "1"]);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    // The timeout and a margin; without a timeout the connection stays open.
    let wait = Duration::from_secs(6);
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(HALF_A_REQUEST).unwrap();
    assert!(closed_in_time(&mut stream), "still open after {wait:?}");

    // A request sent whole is answered as ever.
    let head = raw_request(
        &server.addr,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[test]
fn a_tls_connection_that_stops_mid_header_is_closed() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let (certified, mut args) = self_signed_tls(dir.path());
    args.extend(["--header-read-timeout".to_owned(), "1".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(&server.addr).unwrap();
    let wait = Duration::from_secs(6);
    tcp.set_read_timeout(Some(wait)).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    stream.write_all(HALF_A_REQUEST).unwrap();
    stream.flush().unwrap();
    assert!(closed_in_time(&mut stream), "still open after {wait:?}");
}
