mod access;
mod audit;
mod compare;
mod files;
mod image;
mod keys;
mod lifecycle;
mod namespace;
mod namespaces;
mod not_found;
mod prune;
mod secrets;
mod stream;
mod stream_labels;
mod tokens;
mod users;
mod webhooks;

pub use access::AccessPage;
pub use audit::AuditPage;
pub use compare::ComparePage;
pub use files::{ImageFilesPage, LayerFilesPage};
pub use image::ImagePage;
pub use keys::KeysPage;
pub use lifecycle::LifecyclePage;
pub use namespace::NamespacePage;
pub use namespaces::NamespacesPage;
pub use not_found::NotFound;
pub use prune::PrunePage;
pub use secrets::SecretsPage;
pub use stream::StreamPage;
pub use tokens::TokensPage;
pub use users::UsersPage;
pub use webhooks::WebhooksPage;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

/// A page's title, made from its address. On the server it is read once, as the page is made:
/// leptos_meta reads titles after the body is rendered, when the route's signals may already
/// be disposed (under load, a 500 for about one page in twenty). In the browser it follows the
/// address.
fn page_title(text: impl Fn() -> String + Send + Sync + 'static) -> TextProp {
    if cfg!(feature = "ssr") {
        TextProp::from(untrack(text))
    } else {
        TextProp::from(text)
    }
}

/// The `pattern` of a field for a DNS label (namespace and service-account names). Browsers
/// compile patterns with the `v` flag, under which a `-` in a class must be escaped: the plain
/// `[a-z0-9-]` is an invalid expression there, which logs an error and checks nothing.
const DNS_LABEL_PATTERN: &str = r"[a-z0-9]([a-z0-9\-]*[a-z0-9])?";

/// A route parameter (the router has already decoded it).
fn param(name: &'static str) -> Memo<String> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get(name).unwrap_or_default())
}

/// Whether the registry at `host` is plain HTTP on this machine (the commands then say so).
fn insecure(host: &str) -> bool {
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

/// `--tls-verify=false ` for podman and skopeo where the registry is local plain HTTP.
fn tls_flag(host: &str, flag: &str) -> String {
    if insecure(host) {
        format!("{flag}=false ")
    } else {
        String::new()
    }
}

/// The `podman pull` of `reference` (`HOST/namespace/stream:tag` or `…@digest`), with
/// `--tls-verify=false` where the registry is local plain HTTP: the one pull command of every
/// page.
fn podman_pull(reference: &str) -> String {
    let host = reference.split('/').next().unwrap_or_default();
    format!("podman pull {}{reference}", tls_flag(host, "--tls-verify"))
}

/// The `podman login` with a token as the password (the user name is only a label to Berth).
fn podman_login(host: &str, user: &str, token: &str) -> String {
    format!(
        "podman login {}-u {user} -p {token} {host}",
        tls_flag(host, "--tls-verify")
    )
}

#[cfg(test)]
mod tests {
    use super::podman_pull;

    #[test]
    fn pulls_from_a_loopback_registry_skip_tls_verification() {
        assert_eq!(
            podman_pull("127.0.0.1:5000/team/app@sha256:abc"),
            "podman pull --tls-verify=false 127.0.0.1:5000/team/app@sha256:abc"
        );
        assert_eq!(
            podman_pull("registry.example.com/team/app:v1"),
            "podman pull registry.example.com/team/app:v1"
        );
    }
}
