//! Secrets at rest, for imports and webhooks alike: the server's key file (`key.rs`), sealing
//! under it with associated data naming what a value belongs to (`sealing.rs`), and the
//! per-namespace credentials for other registries ("pull secrets"): Docker config.json
//! (`docker_config.rs`), the Kubernetes `Secret` object (`object.rs`), the service (`api.rs`)
//! and its routes at `/api/v1/namespaces/{ns}/secrets` (`routes.rs`).

pub mod api;
pub mod docker_config;
pub mod key;
pub mod object;
pub mod routes;
pub mod sealing;
