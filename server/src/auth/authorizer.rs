//! The one decision function: may this subject do this action on this target? Every surface
//! (registry, image stream API, console, watches and the event stream) asks it.
//!
//! Bindings are held in memory, indexed by scope and subject, so a decision is a handful of hash
//! lookups whatever their number; the index is rebuilt from the store after every change of
//! bindings here, and on every other replica when the change's notification
//! ([`Topic::Bindings`]) reaches it; a slow safety refresh catches writers that notify no one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::model::{Action, Role, Subject, Target};
use crate::config::auth::NamespaceCreation;
use crate::kube::{ApiError, ApiResult, Resource};
use crate::storage::StorageResult;
use crate::storage::auth::{AuthStore, BindingRecord};
use crate::storage::coordination::{Notifier, Topic};

type RoleBySubject = HashMap<String, Role>;

#[derive(Debug, Default)]
struct BindingIndex {
    registry: RoleBySubject,
    namespaces: HashMap<String, RoleBySubject>,
    streams: HashMap<String, HashMap<String, RoleBySubject>>,
}

fn grant(map: &mut RoleBySubject, subject: String, role: Role) {
    let entry = map.entry(subject).or_insert(role);
    *entry = (*entry).max(role);
}

impl BindingIndex {
    fn build(bindings: &[BindingRecord]) -> Self {
        let mut index = BindingIndex::default();
        for binding in bindings {
            let Some(role) = Role::parse(&binding.role) else {
                continue;
            };
            let subject = match (&binding.subject_kind[..], &binding.subject_namespace) {
                ("ServiceAccount", Some(namespace)) => {
                    format!("ServiceAccount:{namespace}:{}", binding.subject_name)
                }
                (kind, _) => format!("{kind}:{}", binding.subject_name),
            };
            match (&binding.namespace, &binding.stream) {
                (None, _) => grant(&mut index.registry, subject, role),
                (Some(namespace), None) => grant(
                    index.namespaces.entry(namespace.clone()).or_default(),
                    subject,
                    role,
                ),
                (Some(namespace), Some(stream)) => grant(
                    index
                        .streams
                        .entry(namespace.clone())
                        .or_default()
                        .entry(stream.clone())
                        .or_default(),
                    subject,
                    role,
                ),
            }
        }
        index
    }

    /// The strongest role the keys hold at the target (inherited from wider scopes).
    fn role(&self, keys: &[String], target: Target<'_>) -> Option<Role> {
        let mut best: Option<Role> = None;
        let mut consider = |map: Option<&RoleBySubject>| {
            if let Some(map) = map {
                for key in keys {
                    if let Some(role) = map.get(key) {
                        best = best.max(Some(*role));
                    }
                }
            }
        };
        consider(Some(&self.registry));
        if let Some(namespace) = target.namespace {
            consider(self.namespaces.get(namespace));
            if let Some(stream) = target.stream {
                consider(self.streams.get(namespace).and_then(|s| s.get(stream)));
            }
        }
        best
    }

    /// The role the keys hold on each stream of a namespace that one of them is bound to by
    /// name, counting wider scopes.
    fn stream_roles(&self, keys: &[String], namespace: &str) -> BTreeMap<String, Role> {
        let Some(streams) = self.streams.get(namespace) else {
            return BTreeMap::new();
        };
        streams
            .iter()
            .filter(|(_, subjects)| keys.iter().any(|k| subjects.contains_key(k)))
            .filter_map(|(stream, _)| {
                self.role(keys, Target::stream(namespace, stream))
                    .map(|role| (stream.clone(), role))
            })
            .collect()
    }
}

/// What a subject may see of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    All,
    Only(BTreeSet<String>),
}

impl Visible {
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(names) => names.contains(name),
        }
    }
}

pub struct Authorizer {
    store: Arc<dyn AuthStore>,
    notifier: Arc<dyn Notifier>,
    index: RwLock<Arc<BindingIndex>>,
    /// Held while the index is rebuilt, so that a rebuild that read the bindings earlier never
    /// replaces one that read them later.
    rebuilding: tokio::sync::Mutex<()>,
    pub namespace_creation: NamespaceCreation,
}

/// How often the index is rebuilt when no notification said to: for writers that notify no
/// replica (`berth user add --cluster-admin` in another process beside a server on SQLite,
/// whose notifier is in-process; a change made with `psql`). Every change made through a
/// replica is seen at once.
const SAFETY_REFRESH: Duration = Duration::from_secs(60);

impl Authorizer {
    pub async fn load(
        store: Arc<dyn AuthStore>,
        notifier: Arc<dyn Notifier>,
        namespace_creation: NamespaceCreation,
    ) -> StorageResult<Arc<Self>> {
        let index = BindingIndex::build(&store.list_all_bindings().await?);
        Ok(Arc::new(Authorizer {
            store,
            notifier,
            index: RwLock::new(Arc::new(index)),
            rebuilding: tokio::sync::Mutex::new(()),
            namespace_creation,
        }))
    }

    /// Rebuilds the index from the store.
    pub async fn reload(&self) -> StorageResult<()> {
        let _turn = self.rebuilding.lock().await;
        let index = Arc::new(BindingIndex::build(&self.store.list_all_bindings().await?));
        if let Ok(mut current) = self.index.write() {
            *current = index;
        }
        Ok(())
    }

    /// After a change of bindings made here: rebuilds the index (so that this replica's next
    /// decision sees it) and tells every other replica to.
    pub async fn changed(&self) -> StorageResult<()> {
        self.reload().await?;
        if let Err(err) = self.notifier.publish(Topic::Bindings, "changed").await {
            // The other replicas see it at their safety refresh.
            tracing::warn!(%err, "notifying other replicas of a binding change failed");
        }
        Ok(())
    }

    /// Keeps the index fresh for bindings changed by other replicas: rebuilt when one says so
    /// (a burst of notices once), when notices may have been lost, and at the safety refresh.
    pub fn spawn_refresh(self: &Arc<Self>) {
        let mut notices = self.notifier.subscribe(Topic::Bindings);
        let authorizer = Arc::downgrade(self);
        tokio::spawn(async move {
            // Changes made between the load and the subscription.
            let mut rebuild = true;
            loop {
                if rebuild {
                    let Some(authorizer) = authorizer.upgrade() else {
                        return;
                    };
                    if let Err(err) = authorizer.reload().await {
                        tracing::warn!(%err, "refreshing role bindings failed");
                    }
                }
                rebuild = match tokio::time::timeout(SAFETY_REFRESH, notices.next()).await {
                    Err(_) => true,
                    Ok(None) => return,
                    Ok(Some(notice)) => {
                        let mut foreign = notice.is_news();
                        while let Some(notice) = notices.try_next() {
                            foreign |= notice.is_news();
                        }
                        foreign
                    }
                };
            }
        });
    }

    fn index(&self) -> Arc<BindingIndex> {
        match self.index.read() {
            Ok(index) => index.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The role a subject holds at a target, counting wider scopes.
    pub fn role(&self, subject: &Subject, target: Target<'_>) -> Option<Role> {
        self.index().role(&subject.binding_keys(), target)
    }

    /// The decision: may `subject` do `action` on `target`?
    pub fn allows(&self, subject: &Subject, action: Action, target: Target<'_>) -> bool {
        self.role(subject, target)
            .is_some_and(|role| role.allows(action))
    }

    /// The guard of every API: the decision, and when it refuses, the one Forbidden
    /// naming `resource` `name`.
    pub fn require(
        &self,
        subject: &Subject,
        action: Action,
        target: Target<'_>,
        resource: Resource,
        name: &str,
    ) -> ApiResult<()> {
        if self.allows(subject, action, target) {
            return Ok(());
        }
        Err(ApiError::forbidden(
            &subject.display_name(),
            action.verb(),
            resource,
            name,
            target.namespace,
        ))
    }

    /// May `subject` create namespace `namespace` (by pushing to it or through the API)?
    pub fn may_create_namespace(&self, subject: &Subject) -> bool {
        match (self.namespace_creation, subject) {
            (NamespaceCreation::Authenticated, Subject::User { .. }) => true,
            _ => self.role(subject, Target::REGISTRY) == Some(Role::ClusterAdmin),
        }
    }

    /// Namespaces the subject may pull from at all (through a namespace or a stream binding).
    pub fn visible_namespaces(&self, subject: &Subject) -> Visible {
        let index = self.index();
        let keys = subject.binding_keys();
        if index.role(&keys, Target::REGISTRY).is_some() {
            return Visible::All;
        }
        let holds = |map: &RoleBySubject| keys.iter().any(|k| map.contains_key(k));
        let mut names: BTreeSet<String> = index
            .namespaces
            .iter()
            .filter(|(_, subjects)| holds(subjects))
            .map(|(namespace, _)| namespace.clone())
            .collect();
        names.extend(
            index
                .streams
                .iter()
                .filter(|(_, streams)| streams.values().any(&holds))
                .map(|(namespace, _)| namespace.clone()),
        );
        Visible::Only(names)
    }

    /// Streams of a namespace the subject may pull.
    pub fn visible_streams(&self, subject: &Subject, namespace: &str) -> Visible {
        let index = self.index();
        let keys = subject.binding_keys();
        if index.role(&keys, Target::namespace(namespace)).is_some() {
            return Visible::All;
        }
        Visible::Only(
            index
                .streams
                .get(namespace)
                .map(|streams| {
                    streams
                        .iter()
                        .filter(|(_, subjects)| keys.iter().any(|k| subjects.contains_key(k)))
                        .map(|(stream, _)| stream.clone())
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// The role a subject holds on each stream of a namespace it is bound to by name (counting
    /// the namespace and registry roles too): what stream-level bindings add to
    /// [`Authorizer::role`] at the namespace.
    pub fn stream_roles(&self, subject: &Subject, namespace: &str) -> BTreeMap<String, Role> {
        self.index()
            .stream_roles(&subject.binding_keys(), namespace)
    }

    /// Binding subjects (`Kind:name`) holding at least `action` at the target, with their role:
    /// the answer to "who can pull or push ns/stream".
    pub fn who_can(&self, action: Action, target: Target<'_>) -> Vec<(String, Role)> {
        let index = self.index();
        let mut found: HashMap<String, Role> = HashMap::new();
        let mut collect = |map: Option<&RoleBySubject>| {
            for (subject, role) in map.into_iter().flatten() {
                if role.allows(action) {
                    let entry = found.entry(subject.clone()).or_insert(*role);
                    *entry = (*entry).max(*role);
                }
            }
        };
        collect(Some(&index.registry));
        if let Some(namespace) = target.namespace {
            collect(index.namespaces.get(namespace));
            if let Some(stream) = target.stream {
                collect(index.streams.get(namespace).and_then(|s| s.get(stream)));
            }
        }
        let mut subjects: Vec<(String, Role)> = found.into_iter().collect();
        subjects.sort();
        subjects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(
        namespace: Option<&str>,
        stream: Option<&str>,
        role: &str,
        kind: &str,
        name: &str,
    ) -> BindingRecord {
        BindingRecord {
            name: format!("{kind}-{name}-{role}"),
            namespace: namespace.map(str::to_owned),
            stream: stream.map(str::to_owned),
            role: role.into(),
            subject_kind: kind.into(),
            subject_name: name.into(),
            subject_namespace: (kind == "ServiceAccount").then(|| "ci".to_owned()),
            created_at: chrono::Utc::now(),
        }
    }

    fn user(name: &str, groups: &[&str]) -> Subject {
        Subject::User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn decisions_follow_scope_and_role() {
        let index = BindingIndex::build(&[
            binding(Some("team"), None, "editor", "User", "alice"),
            binding(Some("team"), Some("app"), "admin", "Group", "ops"),
            binding(
                Some("public"),
                None,
                "viewer",
                "Group",
                "system:unauthenticated",
            ),
            binding(None, None, "cluster-admin", "User", "root"),
            binding(
                Some("team"),
                Some("app"),
                "viewer",
                "ServiceAccount",
                "builder",
            ),
        ]);
        let alice = user("alice", &[]);
        let bob = user("bob", &["ops"]);
        let role = |s: &Subject, t| index.role(&s.binding_keys(), t);
        assert_eq!(
            role(&alice, Target::stream("team", "app")),
            Some(Role::Editor)
        );
        assert_eq!(role(&alice, Target::namespace("other")), None);
        assert_eq!(role(&bob, Target::stream("team", "app")), Some(Role::Admin));
        assert_eq!(role(&bob, Target::stream("team", "other")), None);
        assert_eq!(
            role(&Subject::Anonymous, Target::stream("public", "x")),
            Some(Role::Viewer)
        );
        // What anonymous callers may do, signed-in ones may too.
        assert_eq!(
            role(&user("carol", &[]), Target::stream("public", "x")),
            Some(Role::Viewer)
        );
        assert_eq!(role(&user("carol", &[]), Target::stream("team", "x")), None);
        assert_eq!(
            role(&user("root", &[]), Target::stream("any", "x")),
            Some(Role::ClusterAdmin)
        );
        let builder = Subject::ServiceAccount {
            namespace: "ci".into(),
            name: "builder".into(),
        };
        assert_eq!(
            role(&builder, Target::stream("team", "app")),
            Some(Role::Viewer)
        );
    }

    #[test]
    fn stream_roles_are_those_of_streams_bound_by_name() {
        let index = BindingIndex::build(&[
            binding(Some("team"), None, "viewer", "User", "alice"),
            binding(Some("team"), Some("app"), "editor", "User", "alice"),
            binding(Some("team"), Some("db"), "admin", "Group", "ops"),
            binding(Some("team"), Some("web"), "viewer", "User", "bob"),
        ]);
        let alice = user("alice", &["ops"]);
        let roles = index.stream_roles(&alice.binding_keys(), "team");
        assert_eq!(
            roles.into_iter().collect::<Vec<_>>(),
            [("app".into(), Role::Editor), ("db".into(), Role::Admin)]
        );
        assert!(
            index
                .stream_roles(&alice.binding_keys(), "other")
                .is_empty()
        );
        // A stream binding weaker than the namespace role reports the namespace role.
        let index = BindingIndex::build(&[
            binding(Some("team"), None, "admin", "User", "alice"),
            binding(Some("team"), Some("app"), "viewer", "User", "alice"),
        ]);
        assert_eq!(
            index.stream_roles(&alice.binding_keys(), "team").get("app"),
            Some(&Role::Admin)
        );
    }
}
