//! Berth at the HTTP edge, the same for every surface (registry, APIs, console, sign-in pages):
//!
//! - how a request arrived ([`Arrival`]): over https or not, the host it asked for and the
//!   client's address, with `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-For`
//!   believed only from a configured trusted proxy;
//! - the address clients reach Berth at ([`Arrival::base_url`]): `--public-url` when set, else
//!   the request's scheme and its host when that is a valid `host[:port]`, else the listen
//!   address; never a header's text as it came;
//! - the security headers of every answer ([`edge`]): `X-Content-Type-Options: nosniff` on all;
//!   on HTML a Content-Security-Policy that runs only scripts of this site and the inline script
//!   carrying the request's nonce ([`PageNonce`], which the console's pages are rendered with),
//!   `X-Frame-Options: DENY` and `Referrer-Policy: same-origin`; on anything else a policy that
//!   lets nothing run, should a browser ever render it;
//! - `Secure` on the cookies of a request that came over https, Berth's own TLS or a trusted
//!   proxy's.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Request};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ipnet::IpNet;
use rand::RngCore as _;

/// What every HTML answer says of framing and referrers.
const FRAME_OPTIONS: HeaderValue = HeaderValue::from_static("DENY");
const REFERRER_POLICY: HeaderValue = HeaderValue::from_static("same-origin");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
/// The policy of answers that are not pages (JSON, blobs, files): a browser opening one runs
/// nothing and frames nothing.
const INERT_POLICY: HeaderValue =
    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; sandbox");

/// What the edge knows of the deployment, from the configuration.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Peers whose `X-Forwarded-*` headers are believed.
    trusted_proxies: Vec<IpNet>,
    /// Berth serves TLS itself.
    tls: bool,
    /// `--public-url`, without a trailing slash.
    public_url: Option<String>,
    /// The listen address, for a request that names no valid host.
    listen: String,
}

impl Edge {
    pub fn new(config: &crate::config::Config, listen: SocketAddr) -> Self {
        Edge {
            trusted_proxies: config.http.trusted_proxy_networks(),
            tls: config.tls.is_some(),
            public_url: config
                .auth
                .public_url
                .as_deref()
                .map(|url| url.trim_end_matches('/').to_owned()),
            listen: listen.to_string(),
        }
    }

    fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|peer| self.trusted_proxies.iter().any(|net| net.contains(&peer)))
    }

    /// How `parts` reached Berth.
    fn arrival(self: &Arc<Self>, parts: &Parts) -> Arrival {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let via_proxy = self.trusts(peer);
        let forwarded = |name: &str| {
            via_proxy
                .then(|| last_value(&parts.headers, name))
                .flatten()
        };
        let https = self.tls
            || forwarded("x-forwarded-proto")
                .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        // Kept as sent and checked when an address is made from it (rarely: a 401's realm, a
        // sign-in), not on every request.
        let asked = match forwarded("x-forwarded-host") {
            Some(host) => HeaderValue::from_str(host).ok(),
            None => parts.headers.get(header::HOST).cloned().or_else(|| {
                let authority = parts.uri.authority()?;
                HeaderValue::from_str(authority.as_str()).ok()
            }),
        };
        let client = if via_proxy {
            self.client_behind_proxies(&parts.headers).or(peer)
        } else {
            peer
        };
        Arrival {
            edge: self.clone(),
            https,
            asked,
            client,
        }
    }

    /// The client's address in `X-Forwarded-For`: the nearest one that is not a trusted proxy
    /// (read from the right, since a client can write whatever it likes on the left).
    fn client_behind_proxies(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect::<Option<Vec<_>>>()?;
        hops.iter()
            .rev()
            .find(|hop| !self.trusts(Some(**hop)))
            .or(hops.first())
            .copied()
    }
}

/// The last of a header's comma-separated values: the one the nearest proxy added.
fn last_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(name)
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// `host[:port]` as a client may name Berth: a DNS name, an IPv4 address or a bracketed IPv6
/// address, and a port; lower-cased. Anything else (user info, quotes, spaces, paths) is not a
/// host, and `None`.
pub fn valid_host(text: &str) -> Option<String> {
    let (host, port) = split_host_port(text)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => is_dns_name(host),
    };
    let port_ok = port.is_none_or(|port| {
        !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    (host_ok && port_ok).then(|| text.to_ascii_lowercase())
}

fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, rest) = text.split_at(end + 1);
        match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        }
    } else {
        Some(match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        })
    }
}

/// Letters, digits and inner hyphens in dot-separated labels (an IPv4 address is one too).
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// How one request reached Berth, as far as Berth can tell.
#[derive(Debug, Clone)]
pub struct Arrival {
    edge: Arc<Edge>,
    /// The client used https: to Berth's own TLS, or to a trusted proxy that says so.
    pub https: bool,
    /// The `host[:port]` the client asked for, as sent.
    asked: Option<HeaderValue>,
    /// The client's address: the peer's, or behind trusted proxies the one they forwarded.
    pub client: Option<IpAddr>,
}

impl Arrival {
    /// How `parts` reached Berth: as the edge found it, or (for a request that did not pass
    /// the edge) from the connection and `Host` alone.
    pub fn of(parts: &Parts) -> Arrival {
        match parts.extensions.get::<Arrival>() {
            Some(arrival) => arrival.clone(),
            None => Arc::new(Edge {
                trusted_proxies: Vec::new(),
                tls: false,
                public_url: None,
                listen: "localhost".to_owned(),
            })
            .arrival(parts),
        }
    }

    /// The `host[:port]` the client asked for, when it is a valid one.
    pub fn host(&self) -> Option<String> {
        valid_host(self.asked.as_ref()?.to_str().ok()?)
    }

    /// Where this client reaches Berth (`scheme://host[:port]`, no trailing slash): the public
    /// URL when configured, else the address the request came to.
    pub fn base_url(&self) -> String {
        if let Some(url) = &self.edge.public_url {
            return url.clone();
        }
        let scheme = if self.https { "https" } else { "http" };
        let host = self.host().unwrap_or_else(|| self.edge.listen.clone());
        format!("{scheme}://{host}")
    }
}

/// The client's address alone, as [`Arrival::client`] says it: the connection's, or behind a
/// trusted proxy the one it forwarded.
pub fn client_address(parts: &Parts) -> Option<IpAddr> {
    match parts.extensions.get::<Arrival>() {
        Some(arrival) => arrival.client,
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip()),
    }
}

/// As an extractor: how the request arrived (never refused).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Arrival {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Arrival::of(parts))
    }
}

/// The script nonce of the page answering one request, made when a page is rendered (a
/// request that renders none, such as a registry request, pays nothing for it): named by the
/// answer's Content-Security-Policy and carried by the page's inline scripts (the console's
/// hydration script and data).
#[derive(Debug, Clone, Default)]
pub struct PageNonce(Arc<OnceLock<Arc<str>>>);

impl PageNonce {
    fn get_or_make(&self) -> Arc<str> {
        self.0.get_or_init(|| new_script_nonce().into()).clone()
    }

    /// The nonce, when the page was rendered with one.
    fn made(&self) -> Option<&str> {
        self.0.get().map(|nonce| &**nonce)
    }
}

/// 192 random bits, base64url: a nonce no page can guess from another's.
fn new_script_nonce() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A page's form may post to this origin besides Berth's own (the sign-in form, whose answer
/// redirects to the OAuth client's registered address, and Chromium checks `form-action` on
/// that redirect too).
#[derive(Debug, Clone)]
pub struct FormTarget(pub String);

/// A form target from a URL: its origin, or nothing for a URL that has none.
pub fn form_target(url: &str) -> Option<FormTarget> {
    let origin = reqwest::Url::parse(url).ok()?.origin();
    origin
        .is_tuple()
        .then(|| FormTarget(origin.ascii_serialization()))
}

/// The Content-Security-Policy of a page: scripts of this site and the inline ones with the
/// nonce (when the page was rendered with one; none inline otherwise), WebAssembly compiled by
/// them; styles, images and connections to this site only; no plugins, no `<base>`, forms
/// posted here (or to `form_target`), never framed.
pub fn page_policy(nonce: Option<&str>, form_target: Option<&FormTarget>) -> String {
    let nonce = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    let form_target = form_target.map(|t| format!(" {}", t.0)).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{nonce} 'wasm-unsafe-eval'; style-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'{form_target}; \
         frame-ancestors 'none'"
    )
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("text/html")
                || essence.eq_ignore_ascii_case("application/xhtml+xml")
                || essence.eq_ignore_ascii_case("image/svg+xml")
        })
}

/// The edge of every request: notes how it arrived and gives it a place for a page nonce, then
/// sets the security headers of its answer and makes its cookies `Secure` when it came over
/// https.
///
/// A tower layer rather than `middleware::from_fn`, which clones the service below it and
/// boxes a `Next` on every request; this runs on every request of every surface.
#[derive(Clone)]
pub struct EdgeLayer(Arc<Edge>);

impl EdgeLayer {
    pub fn new(edge: Edge) -> Self {
        EdgeLayer(Arc::new(edge))
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EdgeService {
            edge: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct EdgeService<S> {
    edge: Arc<Edge>,
    inner: S,
}

impl<S> tower::Service<Request> for EdgeService<S>
where
    S: tower::Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let arrival = self.edge.arrival(&parts);
        let https = arrival.https;
        let nonce = PageNonce::default();
        parts.extensions.insert(arrival);
        parts.extensions.insert(nonce.clone());
        let answer = self.inner.call(Request::from_parts(parts, body));
        Box::pin(async move {
            let mut response = answer.await?;
            secure_answer(&mut response, &nonce, https);
            Ok(response)
        })
    }
}

/// The security headers of every answer, and `Secure` cookies for one that came over https.
fn secure_answer(response: &mut Response, nonce: &PageNonce, https: bool) {
    let form_target = response.extensions_mut().remove::<FormTarget>();
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    if is_html(headers) {
        if let Ok(policy) = HeaderValue::from_str(&page_policy(nonce.made(), form_target.as_ref()))
        {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        headers.insert(header::X_FRAME_OPTIONS, FRAME_OPTIONS);
        headers.insert(header::REFERRER_POLICY, REFERRER_POLICY);
    } else {
        headers.insert(header::CONTENT_SECURITY_POLICY, INERT_POLICY);
    }
    if https {
        secure_cookies(headers);
    }
}

/// Adds `Secure` to every cookie set without it (the session layer decides it once, at start,
/// from the configuration; behind a TLS-terminating proxy only the request tells).
fn secure_cookies(headers: &mut HeaderMap) {
    let set_cookie = HeaderName::from_static("set-cookie");
    if !headers.contains_key(&set_cookie) {
        return;
    }
    let cookies: Vec<HeaderValue> = headers.get_all(&set_cookie).iter().cloned().collect();
    headers.remove(&set_cookie);
    for value in cookies {
        let secured = value
            .to_str()
            .ok()
            .and_then(|text| tower_sessions::cookie::Cookie::parse(text.to_owned()).ok())
            .and_then(|mut cookie| {
                cookie.set_secure(true);
                HeaderValue::from_str(&cookie.to_string()).ok()
            });
        headers.append(&set_cookie, secured.unwrap_or(value));
    }
}

/// Gives the page being rendered the nonce of its Content-Security-Policy (leptos_axum makes a
/// nonce of its own otherwise, which the policy would not name). Called in the context of every
/// console render.
pub fn provide_page_nonce() {
    use leptos::prelude::{provide_context, use_context};
    if let Some(nonce) =
        use_context::<Parts>().and_then(|parts| parts.extensions.get::<PageNonce>().cloned())
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.get_or_make()));
    }
}

/// A parameter of an HTTP challenge (`realm="..."`) as a quoted string: `"` and `\` escaped;
/// a control character (which no header may carry) dropped.
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hosts_are_hosts() {
        for (text, host) in [
            ("registry.example", Some("registry.example")),
            ("Registry.Example:5000", Some("registry.example:5000")),
            ("127.0.0.1:5000", Some("127.0.0.1:5000")),
            ("[::1]:5000", Some("[::1]:5000")),
            ("[::1]", Some("[::1]")),
            ("localhost", Some("localhost")),
            ("example.com.", Some("example.com.")),
            ("a\",service=\"x", None),
            ("evil.example/auth", None),
            ("user@evil.example", None),
            ("evil example", None),
            ("host:0", None),
            ("host:65536", None),
            ("host:", None),
            ("host:80:80", None),
            ("[::1", None),
            ("[::1]x", None),
            ("[nothing]:80", None),
            ("-bad.example", None),
            ("", None),
            ("a..b", None),
            ("ex%61mple.com", None),
        ] {
            assert_eq!(valid_host(text).as_deref(), host, "{text:?}");
        }
    }

    #[test]
    fn challenge_parameters_are_quoted_strings() {
        assert_eq!(quoted("http://a/auth/token"), r#""http://a/auth/token""#);
        assert_eq!(quoted(r#"a",service="x"#), r#""a\",service=\"x""#);
        assert_eq!(quoted("back\\slash\r\n"), r#""back\\slash""#);
    }

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::builder().uri("/v2/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    fn edge(proxies: &[&str], public_url: Option<&str>) -> Arc<Edge> {
        Arc::new(Edge {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            tls: false,
            public_url: public_url.map(str::to_owned),
            listen: "127.0.0.1:5000".into(),
        })
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let forwarded = [
            ("host", "internal:5000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "registry.example"),
            ("x-forwarded-for", "203.0.113.9, 198.51.100.7, 10.0.0.3"),
        ];
        let direct = edge(&[], None).arrival(&parts("198.51.100.1:4000", &forwarded));
        assert!(!direct.https);
        assert_eq!(direct.base_url(), "http://internal:5000");
        assert_eq!(direct.client, Some("198.51.100.1".parse().unwrap()));

        let proxied = edge(&["10.0.0.0/8"], None).arrival(&parts("10.0.0.2:4000", &forwarded));
        assert!(proxied.https);
        assert_eq!(proxied.base_url(), "https://registry.example");
        // The nearest address the trusted proxies did not add; the left one is the client's word.
        assert_eq!(proxied.client, Some("198.51.100.7".parse().unwrap()));

        let spoofed = edge(&["10.0.0.0/8"], None).arrival(&parts(
            "10.0.0.2:4000",
            &[
                ("host", "a\",service=\"x"),
                ("x-forwarded-proto", "https, http"),
            ],
        ));
        assert!(!spoofed.https, "the proxy's own (last) value counts");
        assert_eq!(spoofed.base_url(), "http://127.0.0.1:5000");

        let pinned = edge(&[], Some("https://registry.example"))
            .arrival(&parts("198.51.100.1:4000", &[("host", "evil.example")]));
        assert_eq!(pinned.base_url(), "https://registry.example");
    }

    #[test]
    fn cookies_of_https_requests_are_secure() {
        let mut headers = HeaderMap::new();
        headers.append(
            "set-cookie",
            HeaderValue::from_static("berth_session=abc; HttpOnly; SameSite=Lax; Path=/"),
        );
        headers.append("set-cookie", HeaderValue::from_static("other=1; Secure"));
        secure_cookies(&mut headers);
        let values: Vec<&str> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(values.len(), 2);
        assert!(values.iter().all(|v| v.contains("Secure")), "{values:?}");
        assert!(values[0].starts_with("berth_session=abc") && values[0].contains("HttpOnly"));
    }

    #[test]
    fn form_targets_are_origins() {
        assert_eq!(
            form_target("http://127.0.0.1:5081/console/callback?x=1").map(|t| t.0),
            Some("http://127.0.0.1:5081".to_owned())
        );
        assert!(form_target("not a url").is_none());
    }
}
