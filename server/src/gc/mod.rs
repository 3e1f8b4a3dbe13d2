//! Garbage collection: what Berth frees by itself, online, while it serves: blobs and
//! manifests nothing references any more ([`content`]), upload sessions abandoned for
//! `[gc] upload_ttl_seconds` and their data ([`uploads`]), and the logs' entries past their
//! retention ([`logs`]).

pub mod content;
pub mod logs;
pub mod uploads;

/// The time `age` ago (`None` before the epoch's range).
fn before(age: std::time::Duration) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::Utc::now().checked_sub_signed(chrono::TimeDelta::from_std(age).ok()?)
}
