//! A namespace's streams as one session last read them, for the views the cluster's API cannot
//! answer a page at a time (filtered, or by last update): search as you type and paging then
//! cost one cheap call (is the list still at this resourceVersion?) instead of the whole list.
//!
//! Entries belong to one session (keyed by its id, which changes at sign-in), are reused only
//! while the cluster, asked with that session's token, says nothing changed since, and only
//! for a few seconds: nothing of one user's reaches another, and a change of access shows
//! within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::api::streams::StreamSummary;

/// How long a list is reused at most.
pub const FRESH_FOR: Duration = Duration::from_secs(10);
/// Entries kept at most (each a namespace's rows for one session).
const ENTRIES: usize = 256;

struct Entry {
    version: String,
    read_at: Instant,
    rows: Arc<Vec<StreamSummary>>,
}

#[derive(Default)]
pub struct StreamListCache {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl StreamListCache {
    /// The rows `session` read of `namespace` at `version`, while fresh.
    pub fn get(
        &self,
        session: &str,
        namespace: &str,
        version: &str,
    ) -> Option<Arc<Vec<StreamSummary>>> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&(session.to_owned(), namespace.to_owned()))?;
        (entry.version == version && !version.is_empty() && entry.read_at.elapsed() < FRESH_FOR)
            .then(|| entry.rows.clone())
    }

    /// Whether `session` holds a fresh list of `namespace` (worth checking the version for).
    pub fn has(&self, session: &str, namespace: &str) -> bool {
        self.entries.lock().is_ok_and(|entries| {
            entries
                .get(&(session.to_owned(), namespace.to_owned()))
                .is_some_and(|entry| entry.read_at.elapsed() < FRESH_FOR)
        })
    }

    pub fn put(
        &self,
        session: &str,
        namespace: &str,
        version: String,
        rows: Arc<Vec<StreamSummary>>,
    ) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= ENTRIES {
            entries.retain(|_, entry| entry.read_at.elapsed() < FRESH_FOR);
        }
        if entries.len() >= ENTRIES
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, entry)| entry.read_at)
                .map(|(key, _)| key.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            (session.to_owned(), namespace.to_owned()),
            Entry {
                version,
                read_at: Instant::now(),
                rows,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(name: &str) -> Arc<Vec<StreamSummary>> {
        Arc::new(vec![StreamSummary {
            name: name.into(),
            tags: 0,
            size: None,
            updated: None,
            latest_tag: None,
        }])
    }

    #[test]
    fn a_list_is_reused_by_its_session_at_its_version_only() {
        let cache = StreamListCache::default();
        cache.put("session-a", "team", "41".into(), rows("app"));
        assert!(cache.has("session-a", "team"));
        assert_eq!(cache.get("session-a", "team", "41").unwrap()[0].name, "app");
        // Another version, another session, another namespace: not reused.
        assert!(cache.get("session-a", "team", "42").is_none());
        assert!(cache.get("session-b", "team", "41").is_none());
        assert!(!cache.has("session-b", "team"));
        assert!(cache.get("session-a", "other", "41").is_none());
        // An empty version (a cluster that gives none) never matches.
        cache.put("session-a", "bare", String::new(), rows("x"));
        assert!(cache.get("session-a", "bare", "").is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = StreamListCache::default();
        for n in 0..(ENTRIES + 10) {
            cache.put(&format!("s{n}"), "team", "1".into(), rows("app"));
        }
        assert!(cache.entries.lock().unwrap().len() <= ENTRIES);
        assert!(cache.has(&format!("s{}", ENTRIES + 9), "team"));
    }
}
