//! A hostile "registry" (or any HTTP service) on a loopback address: each path answers what the
//! test scripts (content, a redirect, a challenge, an endless body), and every request is
//! recorded with its `Authorization` header. It plays what a tenant can point Berth at; real
//! registries play the honest ones.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// What a path answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this content type and body (and its length).
    Content { content_type: String, body: Vec<u8> },
    /// 302 to `location`.
    Redirect(String),
    /// 401 with this `WWW-Authenticate` to a request without `Authorization`; `then` to one
    /// with it.
    Challenge { challenge: String, then: Box<Reply> },
    /// 200 with a chunked body (no `Content-Length`): `prefix`, then filler bytes up to
    /// `total` bytes in 64 KiB chunks; what was handed to the connection is counted.
    Endless {
        content_type: String,
        prefix: Vec<u8>,
        total: u64,
    },
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Clone, Default)]
struct State {
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    sent: Arc<AtomicU64>,
}

pub struct Scripted {
    pub addr: SocketAddr,
    /// `http://addr` or `https://addr`.
    pub base: String,
    state: State,
}

impl Scripted {
    /// Serves plain HTTP on `ip` (any port).
    pub async fn start(ip: &str) -> Self {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = State::default();
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Scripted {
            addr,
            base: format!("http://{addr}"),
            state,
        }
    }

    /// Serves HTTPS on `ip` with a certificate and key (PEM).
    pub async fn start_tls(ip: &str, cert: &str, key: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let config = axum_server::tls_rustls::RustlsConfig::from_pem(
            cert.as_bytes().to_vec(),
            key.as_bytes().to_vec(),
        )
        .await
        .unwrap();
        let state = State::default();
        let app = router(state.clone());
        tokio::spawn(async move {
            axum_server::from_tcp_rustls(listener, config)
                .serve(app.into_make_service())
                .await
                .unwrap()
        });
        Scripted {
            addr,
            base: format!("https://{addr}"),
            state,
        }
    }

    /// `ip:port`, as a pull spec names a registry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn reply(&self, path: &str, reply: Reply) {
        self.state
            .replies
            .lock()
            .unwrap()
            .insert(path.to_owned(), reply);
    }

    /// Puts what `path` answers behind a challenge: 401 with `challenge` until a request
    /// carries credentials (any).
    pub fn challenge(&self, path: &str, challenge: &str) {
        let mut replies = self.state.replies.lock().unwrap();
        let then = replies.remove(path).expect("a scripted path");
        replies.insert(
            path.to_owned(),
            Reply::Challenge {
                challenge: challenge.to_owned(),
                then: Box::new(then),
            },
        );
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Bytes of endless bodies handed to connections so far.
    pub fn sent(&self) -> u64 {
        self.state.sent.load(Ordering::SeqCst)
    }

    /// Serves an OCI image at `repository:tag`: its manifest, config and one layer (whose
    /// blob answers `layer`, the content by default). Returns (manifest digest, layer digest).
    pub fn image(&self, repository: &str, tag: &str, layer: Option<Reply>) -> (String, String) {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let layer_bytes = format!("a layer of {repository}:{tag}").into_bytes();
        let config_digest = super::sha256(&config);
        let layer_digest = super::sha256(&layer_bytes);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": super::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_bytes.len()}],
        }))
        .unwrap();
        let manifest_digest = super::sha256(&manifest);
        let content = |content_type: &str, body: Vec<u8>| Reply::Content {
            content_type: content_type.to_owned(),
            body,
        };
        self.reply(
            &format!("/v2/{repository}/manifests/{tag}"),
            content(super::OCI_MANIFEST, manifest.clone()),
        );
        self.reply(
            &format!("/v2/{repository}/manifests/{manifest_digest}"),
            content(super::OCI_MANIFEST, manifest),
        );
        self.reply(
            &format!("/v2/{repository}/blobs/{config_digest}"),
            content("application/octet-stream", config),
        );
        self.reply(
            &format!("/v2/{repository}/blobs/{layer_digest}"),
            layer.unwrap_or_else(|| content("application/octet-stream", layer_bytes)),
        );
        (manifest_digest, layer_digest)
    }
}

fn router(state: State) -> axum::Router {
    axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let state = state.clone();
        async move { answer(&state, &uri, &headers) }
    })
}

fn answer(state: &State, uri: &Uri, headers: &HeaderMap) -> Response {
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    state.seen.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        authorization: authorization.clone(),
    });
    let reply = state.replies.lock().unwrap().get(uri.path()).cloned();
    let Some(mut reply) = reply else {
        return (StatusCode::NOT_FOUND, "not scripted").into_response();
    };
    if let Reply::Challenge { challenge, then } = reply {
        if authorization.is_none() {
            return (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", challenge)],
                "",
            )
                .into_response();
        }
        reply = *then;
    }
    match reply {
        Reply::Content { content_type, body } => {
            ([("content-type", content_type)], body).into_response()
        }
        Reply::Redirect(location) => {
            (StatusCode::FOUND, [("location", location)], "").into_response()
        }
        Reply::Challenge { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "nested").into_response(),
        Reply::Endless {
            content_type,
            prefix,
            total,
        } => {
            let sent = state.sent.clone();
            let chunks =
                futures_util::stream::unfold((Some(prefix), 0u64), move |(prefix, written)| {
                    let sent = sent.clone();
                    async move {
                        let chunk = match prefix {
                            Some(prefix) => prefix,
                            None if written >= total => return None,
                            None => vec![b' '; 64 * 1024],
                        };
                        sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                        let written = written + chunk.len() as u64;
                        Some((
                            Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)),
                            (None, written),
                        ))
                    }
                });
            ([("content-type", content_type)], Body::from_stream(chunks)).into_response()
        }
    }
}
