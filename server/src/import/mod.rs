//! Imports from other registries: the remote client, and the ImageStreamImport flow that
//! records remote images in image streams (with the namespace's credentials from
//! [`crate::secrets`]).

pub mod command;
pub mod importer;
pub mod limits;
pub mod pull_through;
pub mod remote;
