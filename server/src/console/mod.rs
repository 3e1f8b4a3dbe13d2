//! The console's server side. `local` answers the pages from Berth's own services; the
//! upstream mode (`crate::upstream::console`) answers them from a cluster, building the same
//! views (`views`) and request bodies (`forms`) and reading the same session (`session`). The
//! services' errors become the console's, with their HTTP status, in one place (`errors`).

pub mod diff;
pub mod errors;
pub mod forms;
pub mod local;
pub mod router;
pub mod session;
pub mod views;
