//! Garbage collection: what Berth frees by itself, online, while it serves. Today: upload
//! sessions abandoned for `[gc] upload_ttl_seconds` and their data ([`uploads`]).

pub mod uploads;
