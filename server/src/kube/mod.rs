//! What every Kubernetes-style API of Berth shares: object metadata, lists with opaque
//! `continue` tokens, watch streams, `Status` errors and the one way they are answered; API
//! discovery from the one table of resource types, and their `Table`s for `kubectl get`. It sits
//! below everything that serves such an API and imports nothing of Berth but `oci`.

pub mod discovery;
mod error;
pub mod fields;
mod http;
mod meta;
mod paging;
pub mod patch;
mod protobuf;
mod quantity;
mod resource;
pub mod table;

pub use error::*;
pub use fields::{FieldValidation, Warnings};
pub use http::*;
pub use meta::*;
pub use paging::*;
pub use patch::Patch;
pub use quantity::*;
pub use resource::*;
