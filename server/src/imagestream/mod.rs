//! Image streams: the registry's content as OpenShift's `image.openshift.io/v1` resources.
//! Namespaces hold image streams; repository `ns/stream` is stream `stream` in namespace `ns`.
//!
//! `model.rs` holds the resource shapes, `service.rs` the rules, `routes.rs` the HTTP surface
//! (with watches), `error.rs` the mapping of every error to a `Status`, and `image.rs` what is
//! read of an image at push time.

pub mod image;
pub mod model;
pub mod routes;
pub mod service;

pub use service::ImageStreamApi;
