//! The egress policy: where Berth's own HTTP calls may go. Every outbound call (imports,
//! scheduled imports and pull-through, bearer token realms, webhook deliveries, OpenID Connect
//! discovery, token and key requests, the upstream console) goes through an [`HttpClient`] made
//! here, so that a URL a tenant writes (a pull spec, a webhook, a registry's redirect or token
//! realm) cannot make Berth reach the network it runs in: its loopback, the pod network, the
//! cloud's metadata service.
//!
//! - Names are resolved by Berth ([`reqwest::dns::Resolve`]), and every address found is
//!   checked: the connection uses only the addresses that passed, so a name that answers a
//!   public address to one lookup and an internal one to the next (DNS rebinding) gets nowhere.
//! - A URL whose host is an address is checked before it is sent and at every redirect hop (a
//!   custom redirect policy); a redirect from https to plain http is refused, and hops are
//!   capped.
//! - Refused unless the operator's allow-list (`[egress] allow`) names them: loopback,
//!   unspecified, link-local, private (RFC 1918), shared (CGNAT), unique-local and site-local,
//!   multicast, broadcast and reserved ranges, IPv6 forms that carry such an IPv4 address
//!   (mapped, compatible, NAT64, 6to4), and the cloud metadata addresses, which only an entry
//!   naming exactly that address opens.
//! - Environment proxies (`HTTP_PROXY`, ...) are ignored: a proxy would resolve and connect
//!   for Berth, past these checks.
//! - An endpoint the operator configured (the OpenID Connect issuer, the upstream cluster's API
//!   and registry) is trusted by its exact origin (scheme, host and port) in the clients that
//!   talk to it; its redirects and the endpoints it names elsewhere go through the policy.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use ipnet::IpNet;
use reqwest::Url;

use crate::config::egress::EgressConfig;
use crate::config::parse_network;

/// How long a connection may take to open, for every outbound call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an address is refused when no allow-list entry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    CloudMetadata,
    Unspecified,
    Loopback,
    Private,
    SharedAddressSpace,
    LinkLocal,
    UniqueLocal,
    SiteLocal,
    Multicast,
    Broadcast,
    Reserved,
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressClass::CloudMetadata => "a cloud metadata address",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::SharedAddressSpace => "shared address space (CGNAT)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::UniqueLocal => "unique local",
            AddressClass::SiteLocal => "site-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved",
        })
    }
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("{}", address_message(host, address, class))]
    Address {
        /// The name asked for, or the address itself.
        host: String,
        address: IpAddr,
        class: AddressClass,
    },
    #[error("{url}: only http and https URLs are allowed")]
    Scheme { url: String },
    #[error("a redirect from https to plain http ({to}) is refused")]
    Downgrade { to: String },
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error(
        "{url} is on a configured host but not at its configured address ({trusted}); only that address is trusted"
    )]
    UntrustedOrigin { url: String, trusted: String },
    #[error(
        "the token realm {realm} is on another host than the registry {registry}; list its host in [egress] token_realm_hosts if it is that registry's token service"
    )]
    RealmHost { realm: String, registry: String },
    #[error(
        "the registry is reached over https, so its token realm {realm} over plain http is refused"
    )]
    RealmDowngrade { realm: String },
}

fn address_message(host: &str, address: &IpAddr, class: &AddressClass) -> String {
    let of = if host.trim_matches(['[', ']']) == address.to_string() {
        String::new()
    } else {
        format!(" of {host}")
    };
    format!(
        "the address {address} ({class}){of} is not allowed by the egress policy ([egress] allow)"
    )
}

/// Why an outbound call failed: refused by the policy, an answer too large, or the transport.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Refused(EgressError),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{}", error_chain(.0))]
    Http(reqwest::Error),
}

impl OutboundError {
    /// A transport error, or the policy's refusal when one is among its causes (the resolver's
    /// and the redirect policy's refusals come back inside reqwest's errors).
    pub fn from_reqwest(err: reqwest::Error) -> Self {
        match refusal_in(&err) {
            Some(refused) => OutboundError::Refused(refused.clone()),
            None => OutboundError::Http(err),
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, OutboundError::Http(err) if err.is_timeout())
    }

    /// Whether the server answered the TLS handshake with something that is not TLS: a
    /// plain-HTTP server, reached as `https`. rustls calls it a "corrupt message of type
    /// InvalidContentType", which tells no one to try plain HTTP. Known by those words: the
    /// error is reqwest's rustls's, whose type Berth's own rustls may not be.
    pub fn is_plain_http_answer(&self) -> bool {
        matches!(self, OutboundError::Http(err)
            if error_chain(err).contains("corrupt message of type InvalidContentType"))
    }
}

/// The policy's refusal among an error's causes, if it is one.
pub fn refusal_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressError> {
    let mut cause = Some(err);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<EgressError>() {
            return Some(refused);
        }
        if let Some(OutboundError::Refused(refused)) = current.downcast_ref::<OutboundError>() {
            return Some(refused);
        }
        cause = current.source();
    }
    None
}

/// An error with its causes: the chain says what happened (refused, TLS, timeout); the top
/// level rarely does.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}

/// The operator's rules for outbound calls.
pub struct EgressPolicy {
    allow: Vec<IpNet>,
    /// Hosts a bearer challenge may name as its token realm besides the registry's own site.
    token_realm_hosts: Vec<String>,
    /// CA certificates trusted besides the built-in roots.
    roots: Vec<reqwest::Certificate>,
}

impl EgressPolicy {
    /// A policy allowing `allow` (networks) besides the public internet.
    pub fn new(allow: Vec<IpNet>, token_realm_hosts: Vec<String>) -> Self {
        EgressPolicy {
            allow,
            token_realm_hosts: token_realm_hosts
                .into_iter()
                .map(|host| host.to_ascii_lowercase())
                .collect(),
            roots: Vec::new(),
        }
    }

    /// The policy `[egress]` describes (checked at start, so errors here name the field too).
    pub fn from_config(config: &EgressConfig) -> anyhow::Result<Arc<Self>> {
        let allow = config
            .allow
            .iter()
            .map(|entry| parse_network(entry).map_err(|why| anyhow::anyhow!("egress.allow: {why}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut policy = EgressPolicy::new(allow, config.token_realm_hosts.clone());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("egress.ca_file: reading {}", path.display()))?;
            policy.roots = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("egress.ca_file: reading {}", path.display()))?;
        }
        Ok(Arc::new(policy))
    }

    /// Whether a connection to `address` is allowed; the class that refuses it otherwise.
    pub fn check(&self, address: IpAddr) -> Result<(), AddressClass> {
        let address = address.to_canonical();
        let embedded = match address {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        // The metadata service opens only to an entry naming exactly its address: allowing a
        // range (169.254.0.0/16 for a link-local service, or everything) does not.
        if let Some(metadata) = [Some(address), embedded]
            .into_iter()
            .flatten()
            .find(|a| is_metadata(*a))
        {
            let named = self.allow.iter().any(|net| {
                net.prefix_len() == net.max_prefix_len()
                    && (net.addr() == metadata || net.addr() == address)
            });
            return if named {
                Ok(())
            } else {
                Err(AddressClass::CloudMetadata)
            };
        }
        if self.allow.iter().any(|net| net.contains(&address)) {
            return Ok(());
        }
        match classify(address) {
            Some(class) => Err(class),
            None => Ok(()),
        }
    }

    /// Whether a bearer challenge's realm may be asked for a token for the registry at
    /// `registry` (with that registry's credentials): the registry's own host, a host of the
    /// same site (`registry-1.docker.io` and `auth.docker.io`; `registry.gitlab.com` and
    /// `gitlab.com`), or a host the operator lists; never plain http for an https registry.
    pub fn check_realm(&self, registry: &Url, realm: &Url) -> Result<(), EgressError> {
        if registry.scheme() == "https" && realm.scheme() != "https" {
            return Err(EgressError::RealmDowngrade {
                realm: realm.to_string(),
            });
        }
        let (Some(registry_host), Some(realm_host)) = (registry.host(), realm.host()) else {
            return Err(EgressError::RealmHost {
                realm: realm.to_string(),
                registry: registry.to_string(),
            });
        };
        let registry_name = registry_host.to_string().to_ascii_lowercase();
        let realm_name = realm_host.to_string().to_ascii_lowercase();
        let same_site = match (&registry_host, &realm_host) {
            (url::Host::Domain(_), url::Host::Domain(_)) => same_site(&registry_name, &realm_name),
            _ => false,
        };
        if registry_name == realm_name || same_site || self.token_realm_hosts.contains(&realm_name)
        {
            Ok(())
        } else {
            Err(EgressError::RealmHost {
                realm: realm.to_string(),
                registry: registry_name,
            })
        }
    }

    /// A client for one surface, under this policy.
    pub fn client(self: &Arc<Self>, user_agent: &str) -> ClientBuilder {
        let mut inner = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(CONNECT_TIMEOUT);
        for root in &self.roots {
            inner = inner.add_root_certificate(root.clone());
        }
        ClientBuilder {
            policy: self.clone(),
            trusted: Vec::new(),
            redirects: 0,
            inner,
        }
    }
}

/// The class of an address that is not on the public internet; `None` for a public one.
pub fn classify(address: IpAddr) -> Option<AddressClass> {
    match address.to_canonical() {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    Some(if is_metadata(IpAddr::V4(ip)) {
        AddressClass::CloudMetadata
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedAddressSpace
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if a == 0 || a >= 240 || (a == 192 && b == 0 && c == 0) || (a == 198 && (b & 0xfe) == 18)
    {
        // "This network", the future-use block, IETF protocol assignments, benchmarking.
        AddressClass::Reserved
    } else {
        return None;
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let segments = ip.segments();
    Some(if is_metadata(IpAddr::V6(ip)) {
        AddressClass::CloudMetadata
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    } else if segments[0] & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if segments[0] & 0xffc0 == 0xfec0 {
        AddressClass::SiteLocal
    } else if segments[0] & 0xfe00 == 0xfc00 {
        AddressClass::UniqueLocal
    } else if segments[0] & 0xff00 == 0xff00 {
        AddressClass::Multicast
    } else if segments[..3] == [0x64, 0xff9b, 1] {
        // Local-use NAT64 (RFC 8215): translated by the site's own gateway.
        AddressClass::Private
    } else if segments[..4] == [0x100, 0, 0, 0] {
        // Discard-only.
        AddressClass::Reserved
    } else {
        return None;
    })
}

/// The IPv4 address an IPv6 address stands for: mapped (`::ffff:a.b.c.d`), translated
/// (`::ffff:0:a.b.c.d`), compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4
/// (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let [.., w, x, y, z] = ip.octets();
    let tail = Ipv4Addr::new(w, x, y, z);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(mapped);
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

/// The instance metadata services of the clouds: AWS (IMDS, ECS and EKS credentials), Azure
/// and GCP (169.254.169.254), Alibaba, Oracle's legacy one.
fn is_metadata(address: IpAddr) -> bool {
    const V4: [Ipv4Addr; 5] = [
        Ipv4Addr::new(169, 254, 169, 254),
        Ipv4Addr::new(169, 254, 170, 2),
        Ipv4Addr::new(169, 254, 170, 23),
        Ipv4Addr::new(100, 100, 100, 200),
        Ipv4Addr::new(192, 0, 0, 192),
    ];
    const V6: [Ipv6Addr; 2] = [
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
    ];
    match address.to_canonical() {
        IpAddr::V4(v4) => V4.contains(&v4),
        IpAddr::V6(v6) => V6.contains(&v6),
    }
}

/// Whether `realm` is the registry's own site: under the registry's host, or under its parent
/// domain when that parent is a site of its own (at least two labels, and not a public suffix
/// such as `co.uk`).
fn same_site(registry: &str, realm: &str) -> bool {
    if realm.ends_with(&format!(".{registry}")) {
        return true;
    }
    let Some((_, parent)) = registry.split_once('.') else {
        return false;
    };
    let labels: Vec<&str> = parent.split('.').collect();
    let public_suffix = labels.len() == 2
        && labels[1].len() == 2
        && matches!(
            labels[0],
            "co" | "com"
                | "net"
                | "org"
                | "gov"
                | "edu"
                | "ac"
                | "or"
                | "ne"
                | "go"
                | "gob"
                | "mil"
        );
    labels.len() >= 2
        && labels.iter().all(|label| !label.is_empty())
        && !public_suffix
        && (realm == parent || realm.ends_with(&format!(".{parent}")))
}

/// How one surface's client is made: its user agent, timeouts and redirects, the endpoints the
/// operator configured for it.
pub struct ClientBuilder {
    policy: Arc<EgressPolicy>,
    trusted: Vec<url::Origin>,
    redirects: usize,
    inner: reqwest::ClientBuilder,
}

impl ClientBuilder {
    /// Trusts the origin of an endpoint the operator configured (not a tenant).
    pub fn trust(mut self, url: &str) -> anyhow::Result<Self> {
        let parsed = Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
        self.trusted.push(parsed.origin());
        Ok(self)
    }

    /// Follows up to `hops` redirects (each checked); none by default, so that a 3xx is the
    /// answer.
    pub fn follow_redirects(mut self, hops: usize) -> Self {
        self.redirects = hops;
        self
    }

    /// Timeouts, CA certificates and the like. What the policy sets (resolver, redirects,
    /// proxies) is set after, so it cannot be changed here.
    pub fn with(
        mut self,
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Self {
        self.inner = configure(self.inner);
        self
    }

    pub fn build(self) -> anyhow::Result<HttpClient> {
        let guard = Arc::new(Guard {
            policy: self.policy,
            trusted: self.trusted,
        });
        let redirects = match self.redirects {
            0 => reqwest::redirect::Policy::none(),
            hops => {
                let guard = guard.clone();
                reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.previous().len() > hops {
                        return attempt.error(EgressError::TooManyRedirects(hops));
                    }
                    if attempt.url().scheme() == "http"
                        && attempt.previous().iter().any(|url| url.scheme() == "https")
                    {
                        let to = attempt.url().to_string();
                        return attempt.error(EgressError::Downgrade { to });
                    }
                    match guard.check_url(attempt.url()) {
                        Ok(()) => attempt.follow(),
                        Err(refused) => attempt.error(refused),
                    }
                })
            }
        };
        let http = self
            .inner
            .dns_resolver(Arc::new(Resolver {
                guard: guard.clone(),
            }))
            .redirect(redirects)
            // A proxy from the environment would resolve and connect past the policy.
            .no_proxy()
            .build()
            .context("making an HTTP client")?;
        Ok(HttpClient { http, guard })
    }
}

/// What a client checks: the policy, and the origins its operator configured.
struct Guard {
    policy: Arc<EgressPolicy>,
    trusted: Vec<url::Origin>,
}

impl Guard {
    fn trusts_name(&self, name: &str) -> bool {
        self.trusted.iter().any(|origin| match origin {
            url::Origin::Tuple(_, url::Host::Domain(domain), _) => {
                domain.eq_ignore_ascii_case(name)
            }
            _ => false,
        })
    }

    /// The checks a URL gets before a request and at each redirect hop: the scheme, a
    /// configured origin, an address in the URL. A name is checked when it is resolved.
    fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Scheme {
                url: url.to_string(),
            });
        }
        let origin = url.origin();
        if self.trusted.contains(&origin) {
            return Ok(());
        }
        let address = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(name)) => {
                // The resolver lets a configured host's names through, so another port or
                // scheme of that host is not reached on the strength of it.
                if self.trusts_name(name) {
                    let trusted = self
                        .trusted
                        .iter()
                        .find(|o| matches!(o, url::Origin::Tuple(_, url::Host::Domain(d), _) if d.eq_ignore_ascii_case(name)))
                        .map(|o| o.ascii_serialization())
                        .unwrap_or_default();
                    return Err(EgressError::UntrustedOrigin {
                        url: url.to_string(),
                        trusted,
                    });
                }
                return Ok(());
            }
            None => {
                return Err(EgressError::Scheme {
                    url: url.to_string(),
                });
            }
        };
        self.policy
            .check(address)
            .map_err(|class| EgressError::Address {
                host: address.to_string(),
                address,
                class,
            })
    }
}

/// Resolves names for a client and keeps only the addresses the policy allows (all of them for
/// a configured host's name).
struct Resolver {
    guard: Arc<Guard>,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if guard.trusts_name(&host) {
                return Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs);
            }
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match guard.policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(class) => {
                        refused.get_or_insert((addr.ip(), class));
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some((address, class))) => Err(Box::new(EgressError::Address {
                    host,
                    address,
                    class,
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// An HTTP client under the egress policy. Requests are made through it (never through the
/// reqwest client inside), so each is checked before it is sent.
#[derive(Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    guard: Arc<Guard>,
}

impl HttpClient {
    pub fn policy(&self) -> &EgressPolicy {
        &self.guard.policy
    }

    /// Whether a URL would be refused before any request: its scheme, or an address in it
    /// that the policy refuses (a name is only known to be refused once it is resolved).
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        self.guard.check_url(url)
    }

    pub fn get(&self, url: impl reqwest::IntoUrl) -> Outbound {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> Outbound {
        self.request(reqwest::Method::POST, url)
    }

    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> Outbound {
        Outbound {
            client: self.clone(),
            builder: self.http.request(method, url),
        }
    }

    /// Sends a request once its URL passed the checks.
    pub async fn execute(
        &self,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, OutboundError> {
        self.guard
            .check_url(request.url())
            .map_err(OutboundError::Refused)?;
        self.http
            .execute(request)
            .await
            .map_err(OutboundError::from_reqwest)
    }
}

/// A request being built (reqwest's builder, whose `send` is this client's).
pub struct Outbound {
    client: HttpClient,
    builder: reqwest::RequestBuilder,
}

impl Outbound {
    fn map(self, change: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        Outbound {
            client: self.client,
            builder: change(self.builder),
        }
    }

    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        reqwest::header::HeaderName: TryFrom<K>,
        <reqwest::header::HeaderName as TryFrom<K>>::Error: Into<axum::http::Error>,
        reqwest::header::HeaderValue: TryFrom<V>,
        <reqwest::header::HeaderValue as TryFrom<V>>::Error: Into<axum::http::Error>,
    {
        self.map(|b| b.header(key, value))
    }

    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        self.map(|b| b.bearer_auth(token))
    }

    pub fn basic_auth(
        self,
        user: impl std::fmt::Display,
        password: Option<impl std::fmt::Display>,
    ) -> Self {
        self.map(|b| b.basic_auth(user, password))
    }

    pub fn query<T: serde::Serialize + ?Sized>(self, query: &T) -> Self {
        self.map(|b| b.query(query))
    }

    pub fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        self.map(|b| b.json(body))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.map(|b| b.body(body))
    }

    /// A deadline for the whole request, its body included.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|b| b.timeout(timeout))
    }

    pub async fn send(self) -> Result<reqwest::Response, OutboundError> {
        let request = self.builder.build().map_err(OutboundError::Http)?;
        self.client.execute(request).await
    }
}

/// A response's body, read as it arrives and refused as soon as it passes `limit` bytes (a
/// `Content-Length` above it is refused before any of it is read).
pub async fn read_bounded(
    response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, OutboundError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(OutboundError::TooLarge(limit));
    }
    let mut body = response.bytes_stream();
    let mut bytes = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(OutboundError::from_reqwest)?;
        if bytes.len().saturating_add(chunk.len()) > limit {
            return Err(OutboundError::TooLarge(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.freeze())
}

/// The largest answer an OAuth or OpenID Connect endpoint may give (discovery, keys, tokens).
const OAUTH_RESPONSE_BYTES: usize = 1024 * 1024;

/// The `oauth2` and `openidconnect` crates' requests (discovery, keys, token exchange) go
/// through the same checks.
impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = OutboundError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, OutboundError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(OutboundError::Http)?;
            let response = self.execute(request).await?;
            let mut answer = oauth2::http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                headers.extend(
                    response
                        .headers()
                        .iter()
                        .map(|(name, value)| (name.clone(), value.clone())),
                );
            }
            let body = read_bounded(response, OAUTH_RESPONSE_BYTES).await?;
            Ok(answer
                .body(body.to_vec())
                .unwrap_or_else(|_| oauth2::http::Response::new(Vec::new())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn policy(allow: &[&str]) -> EgressPolicy {
        EgressPolicy::new(
            allow.iter().map(|a| parse_network(a).unwrap()).collect(),
            Vec::new(),
        )
    }

    #[test]
    fn internal_ipv4_addresses_are_classified() {
        for (address, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Reserved),
            ("10.0.0.1", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::SharedAddressSpace),
            ("100.127.255.254", AddressClass::SharedAddressSpace),
            ("169.254.0.1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::CloudMetadata),
            ("169.254.170.2", AddressClass::CloudMetadata),
            ("100.100.100.200", AddressClass::CloudMetadata),
            ("224.0.0.1", AddressClass::Multicast),
            ("239.255.255.250", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Broadcast),
            ("240.0.0.1", AddressClass::Reserved),
            ("192.0.0.8", AddressClass::Reserved),
            ("198.18.0.1", AddressClass::Reserved),
        ] {
            assert_eq!(classify(ip(address)), Some(class), "{address}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert_eq!(classify(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn ipv6_addresses_and_the_ipv4_forms_they_carry_are_classified() {
        for (address, class) in [
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fe80::1", AddressClass::LinkLocal),
            ("febf::1", AddressClass::LinkLocal),
            ("fec0::1", AddressClass::SiteLocal),
            ("fc00::1", AddressClass::UniqueLocal),
            ("fd12:3456::1", AddressClass::UniqueLocal),
            ("fd00:ec2::254", AddressClass::CloudMetadata),
            ("ff02::1", AddressClass::Multicast),
            // Mapped, translated and compatible forms of internal IPv4 addresses.
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:10.1.2.3", AddressClass::Private),
            ("::ffff:169.254.169.254", AddressClass::CloudMetadata),
            ("::ffff:0:192.168.0.1", AddressClass::Private),
            ("::127.0.0.1", AddressClass::Loopback),
            // NAT64 and 6to4 forms.
            ("64:ff9b::7f00:1", AddressClass::Loopback),
            ("64:ff9b::a9fe:a9fe", AddressClass::CloudMetadata),
            ("64:ff9b::a00:1", AddressClass::Private),
            ("64:ff9b:1::1", AddressClass::Private),
            ("2002:a00:1::", AddressClass::Private),
            ("2002:7f00:1::1", AddressClass::Loopback),
            ("100::1", AddressClass::Reserved),
        ] {
            assert_eq!(classify(ip(address)), Some(class), "{address}");
        }
        for public in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(classify(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn the_allow_list_opens_ranges_but_only_an_exact_entry_opens_metadata() {
        let nothing = policy(&[]);
        assert_eq!(nothing.check(ip("8.8.8.8")), Ok(()));
        assert_eq!(nothing.check(ip("127.0.0.1")), Err(AddressClass::Loopback));

        let lab = policy(&["10.0.0.0/8", "127.0.0.1", "fd00::/8", "169.254.0.0/16"]);
        assert_eq!(lab.check(ip("10.20.30.40")), Ok(()));
        assert_eq!(lab.check(ip("::ffff:10.20.30.40")), Ok(()), "mapped");
        assert_eq!(lab.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(lab.check(ip("127.0.0.2")), Err(AddressClass::Loopback));
        assert_eq!(lab.check(ip("fd12::1")), Ok(()));
        assert_eq!(lab.check(ip("169.254.1.1")), Ok(()));
        assert_eq!(lab.check(ip("192.168.0.1")), Err(AddressClass::Private));
        // NAT64 forms are not opened by the IPv4 entry: a gateway elsewhere translates them.
        assert_eq!(lab.check(ip("64:ff9b::a00:1")), Err(AddressClass::Private));
        // The metadata service stays closed to ranges, even everything.
        for address in ["169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254"] {
            assert_eq!(
                lab.check(ip(address)),
                Err(AddressClass::CloudMetadata),
                "{address}"
            );
        }
        let everything = policy(&["0.0.0.0/0", "::/0"]);
        assert_eq!(everything.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(
            everything.check(ip("169.254.169.254")),
            Err(AddressClass::CloudMetadata)
        );
        let named = policy(&["169.254.169.254/32"]);
        assert_eq!(named.check(ip("169.254.169.254")), Ok(()));
        assert_eq!(named.check(ip("::ffff:169.254.169.254")), Ok(()));
        assert_eq!(
            named.check(ip("169.254.170.2")),
            Err(AddressClass::CloudMetadata)
        );
    }

    #[test]
    fn urls_are_checked_by_scheme_address_and_configured_origin() {
        let policy = Arc::new(policy(&[]));
        let client = policy
            .client("test")
            .trust("https://sso.internal:8443/realms/x")
            .unwrap()
            .trust("http://127.0.0.1:9000")
            .unwrap()
            .build()
            .unwrap();
        let check = |url: &str| client.check_url(&Url::parse(url).unwrap());
        assert_eq!(check("https://registry.example.com/v2/"), Ok(()));
        assert_eq!(check("https://sso.internal:8443/token"), Ok(()));
        assert_eq!(check("http://127.0.0.1:9000/x"), Ok(()));
        assert!(matches!(
            check("http://127.0.0.1:9001/x"),
            Err(EgressError::Address {
                class: AddressClass::Loopback,
                ..
            })
        ));
        assert!(matches!(
            check("http://sso.internal:8443/token"),
            Err(EgressError::UntrustedOrigin { .. })
        ));
        assert!(matches!(
            check("ftp://example.com/"),
            Err(EgressError::Scheme { .. })
        ));
        // Addresses written another way are still addresses.
        for sneaky in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            assert!(
                matches!(check(sneaky), Err(EgressError::Address { .. })),
                "{sneaky}"
            );
        }
        let message = check("http://169.254.169.254/").unwrap_err().to_string();
        assert_eq!(
            message,
            "the address 169.254.169.254 (a cloud metadata address) is not allowed by the egress policy ([egress] allow)"
        );
    }

    #[test]
    fn token_realms_stay_on_the_registry_site_or_a_listed_host() {
        let policy = EgressPolicy::new(Vec::new(), vec!["Auth.Example.net".into()]);
        let check = |registry: &str, realm: &str| {
            policy.check_realm(&Url::parse(registry).unwrap(), &Url::parse(realm).unwrap())
        };
        assert_eq!(
            check(
                "https://registry-1.docker.io",
                "https://auth.docker.io/token"
            ),
            Ok(())
        );
        assert_eq!(
            check("https://registry.gitlab.com", "https://gitlab.com/jwt/auth"),
            Ok(())
        );
        assert_eq!(check("https://quay.io", "https://quay.io/v2/auth"), Ok(()));
        assert_eq!(
            check("https://example.com", "https://auth.example.com/t"),
            Ok(())
        );
        assert_eq!(
            check("http://127.0.0.1:5000", "http://127.0.0.1:5001/t"),
            Ok(())
        );
        assert_eq!(
            check("https://r.example.org", "https://auth.example.net/t"),
            Ok(())
        );
        for (registry, realm) in [
            ("https://registry.example.com", "https://evil.example/token"),
            ("https://r.example.co.uk", "https://evil.co.uk/token"),
            ("https://quay.io", "https://io/token"),
            ("http://127.0.0.1:5000", "http://localhost:5000/t"),
            ("http://127.0.0.1:5000", "http://169.254.169.254/t"),
        ] {
            assert!(
                matches!(check(registry, realm), Err(EgressError::RealmHost { .. })),
                "{registry} {realm}"
            );
        }
        assert!(matches!(
            check(
                "https://registry-1.docker.io",
                "http://auth.docker.io/token"
            ),
            Err(EgressError::RealmDowngrade { .. })
        ));
    }

    #[tokio::test]
    async fn a_name_is_resolved_here_and_its_refused_addresses_are_dropped() {
        let refusing = Arc::new(policy(&[]));
        let resolver = Resolver {
            guard: Arc::new(Guard {
                policy: refusing,
                trusted: Vec::new(),
            }),
        };
        use reqwest::dns::Resolve as _;
        let err = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost resolved under a policy that refuses loopback"),
            Err(err) => err,
        };
        let refused = err
            .downcast_ref::<EgressError>()
            .expect("the policy's refusal");
        assert!(matches!(
            refused,
            EgressError::Address { class: AddressClass::Loopback, host, .. } if host == "localhost"
        ));
        let allowing = Resolver {
            guard: Arc::new(Guard {
                policy: Arc::new(policy(&["127.0.0.1/32"])),
                trusted: Vec::new(),
            }),
        };
        let found: Vec<SocketAddr> = match allowing.resolve("localhost".parse().unwrap()).await {
            Ok(addrs) => addrs.collect(),
            Err(err) => panic!("{err}"),
        };
        assert!(!found.is_empty());
        assert!(
            found.iter().all(|a| a.ip() == ip("127.0.0.1")),
            "only the allowed address is kept: {found:?}"
        );
    }
}
