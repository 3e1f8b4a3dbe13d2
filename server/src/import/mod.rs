//! Imports from other registries: the remote client, per-namespace credentials, and the
//! ImageStreamImport flow that records remote images in image streams.

pub mod command;
pub mod importer;
pub mod limits;
pub mod pull_through;
pub mod remote;
pub mod secrets;
