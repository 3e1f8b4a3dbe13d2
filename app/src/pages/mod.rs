mod access;
mod image;
mod keys;
mod lifecycle;
mod namespace;
mod namespaces;
mod not_found;
mod prune;
mod secrets;
mod stream;
mod tokens;
mod webhooks;

pub use access::AccessPage;
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
