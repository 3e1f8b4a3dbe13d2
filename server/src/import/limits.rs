//! How many fetches from other registries (imported tags, pull-through blobs) run at once per
//! namespace, so that one tenant's slow or numerous remotes cannot hold every worker, and one
//! namespace's queue never delays another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One semaphore per namespace that has fetches running or waiting; idle ones are dropped, so
/// the map holds only busy namespaces.
pub struct NamespaceLimits {
    per_namespace: usize,
    semaphores: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A running fetch's place in its namespace; released when dropped.
pub struct NamespacePermit {
    permit: Option<OwnedSemaphorePermit>,
    semaphore: Option<Arc<Semaphore>>,
    namespace: String,
    semaphores: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl NamespaceLimits {
    /// `per_namespace` fetches at once in each namespace (at least one).
    pub fn new(per_namespace: usize) -> Self {
        NamespaceLimits {
            per_namespace: per_namespace.max(1),
            semaphores: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Waits for a place in `namespace`.
    pub async fn acquire(&self, namespace: &str) -> NamespacePermit {
        let semaphore = {
            let mut semaphores = self
                .semaphores
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            semaphores
                .entry(namespace.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_namespace)))
                .clone()
        };
        // The semaphore is never closed, so acquiring only waits.
        let permit = semaphore.clone().acquire_owned().await.ok();
        NamespacePermit {
            permit,
            semaphore: Some(semaphore),
            namespace: namespace.to_owned(),
            semaphores: Arc::clone(&self.semaphores),
        }
    }

    /// Namespaces with fetches running or waiting (for tests of the upkeep).
    #[cfg(test)]
    fn busy(&self) -> usize {
        self.semaphores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

impl Drop for NamespacePermit {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut semaphores = self
            .semaphores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Every clone is taken under this lock, so the count is exact here: only the map's
        // own reference left means nobody runs or waits in this namespace.
        drop(self.semaphore.take());
        if semaphores
            .get(&self.namespace)
            .is_some_and(|semaphore| Arc::strong_count(semaphore) == 1)
        {
            semaphores.remove(&self.namespace);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_namespace_waits_for_its_own_permits_only_and_idle_ones_are_dropped() {
        let limits = Arc::new(NamespaceLimits::new(1));
        let first = limits.acquire("a").await;
        // Another namespace is not held up by "a".
        let other = limits.acquire("b").await;
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(50), limits.acquire("a")).await;
        assert!(
            blocked.is_err(),
            "a second fetch in \"a\" waits for the first"
        );
        drop(first);
        let second = limits.acquire("a").await;
        assert_eq!(limits.busy(), 2);
        drop(second);
        drop(other);
        assert_eq!(limits.busy(), 0);
    }
}
