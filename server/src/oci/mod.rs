//! The OCI vocabulary every other module speaks: content digests, repository names, tags and
//! references, media types. It imports nothing from the rest of Berth.

mod digest;
mod media_types;
mod names;

pub use digest::*;
pub use media_types::*;
pub use names::*;
