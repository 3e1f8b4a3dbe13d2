//! The rules of image streams, written once for every SQL backend: how a push or a change moves
//! tags (with history items, and the spec tags that track them), when a stream's generation goes
//! up, and which events are appended (whose ids become resourceVersions).
//!
//! A backend implements [`StreamTx`], the statements these rules need, on a connection inside a
//! transaction it began and commits; the rules never begin or commit. Each primitive is one
//! small statement (or two that always go together), so a backend holds SQL only.
//!
//! Tag immutability is enforced here, for every change at once ([`Protection`]): a tag that
//! names an image and that a rule of its namespace protects is not moved to another image
//! (a push, `oc tag`, a mapping, an import, a stream's update) nor removed (untag, through the
//! registry or the API), and the image it names (or any image of its index), its stream and
//! its namespace are not deleted; the change fails with [`StorageError::TagImmutable`] and its
//! transaction is rolled back. A tag that tracks another keeps its image instead of following
//! it. Re-pushing the image a tag names, or a new tag, changes nothing protected.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::immutability::{CompiledRule, EnforcedRuleRow, ImmutableTag, protecting_rule};
use super::lifecycle::{PruneOutcome, PruneStep};
use super::quota_rules::{Admission, QuotaTx};
use super::rows::to_json;
use super::{
    EventKind, EventType, Labels, NamespaceRecord, Presence, StorageError, StorageResult,
    StreamChange, StreamChangeError, StreamRecord, TagTarget,
};
use crate::oci::{Digest, RepositoryName, Tag};

/// An event to append to the log.
pub(super) struct NewEvent<'a> {
    pub kind: EventKind,
    pub event_type: EventType,
    pub namespace: &'a str,
    pub name: &'a str,
    pub reason: &'a str,
    pub tag: Option<&'a str>,
    pub old_image: Option<String>,
    pub new_image: Option<String>,
    pub object: Option<String>,
}

impl<'a> NewEvent<'a> {
    pub fn namespace(event_type: EventType, name: &'a str, reason: &'a str) -> Self {
        NewEvent {
            kind: EventKind::Namespace,
            event_type,
            namespace: name,
            name,
            reason,
            tag: None,
            old_image: None,
            new_image: None,
            object: None,
        }
    }

    pub fn stream(event_type: EventType, repository: &'a RepositoryName, reason: &'a str) -> Self {
        NewEvent {
            kind: EventKind::ImageStream,
            event_type,
            namespace: repository.namespace(),
            name: repository.stream(),
            reason,
            tag: None,
            old_image: None,
            new_image: None,
            object: None,
        }
    }
}

/// What a change to a stream checks and bumps: its repository id (the stream's key), its
/// generation and its resourceVersion.
#[derive(sqlx::FromRow)]
pub(super) struct StreamState {
    pub repository_id: i64,
    pub generation: i64,
    pub resource_version: i64,
}

/// Where a tag points after a move.
pub(super) struct TagPoint<'a> {
    pub digest: Option<&'a Digest>,
    pub external_reference: Option<&'a str>,
    pub generation: i64,
    /// Who moved the tag (a push, `oc tag`, a rollback), for its history item.
    pub actor: Option<&'a str>,
}

/// Where a tag points now: a row of `tags`.
#[derive(sqlx::FromRow)]
pub(super) struct TagRow {
    pub digest: Option<String>,
    pub external_reference: Option<String>,
    pub generation: i64,
}

impl TagRow {
    /// The image it names, as events say it: the digest, else the external reference.
    pub fn into_image(self) -> Option<String> {
        self.digest.or(self.external_reference)
    }

    /// Whether it names an image (a tag with only conditions names none).
    fn names_image(&self) -> bool {
        self.digest.is_some() || self.external_reference.is_some()
    }
}

/// The statements the rules run, inside the backend's write transaction (with the quota
/// rules', which every stream change is admitted by).
#[async_trait]
pub(super) trait StreamTx: QuotaTx + Send {
    /// The id of repository `name`, created if needed.
    async fn ensure_repository(&mut self, name: &RepositoryName) -> StorageResult<i64>;
    async fn repository_id(&mut self, name: &RepositoryName) -> StorageResult<Option<i64>>;
    /// Deletes a repository; everything of it (stream, tags, links) goes with it.
    async fn delete_repository(&mut self, repository_id: i64) -> StorageResult<()>;

    /// Inserts namespace `name` at resourceVersion 0; `None` when it exists.
    async fn insert_namespace(
        &mut self,
        name: &str,
        labels: &Labels,
        annotations: &Labels,
    ) -> StorageResult<Option<i64>>;
    async fn namespace_id(&mut self, name: &str) -> StorageResult<Option<i64>>;
    async fn set_namespace_version(&mut self, namespace_id: i64, version: i64)
    -> StorageResult<()>;
    /// Deletes every event logged for namespace `name`.
    async fn delete_namespace_events(&mut self, name: &str) -> StorageResult<()>;
    async fn namespace_record(&mut self, name: &str) -> StorageResult<Option<NamespaceRecord>>;
    /// The namespace's streams (with their repository ids), in name order.
    async fn namespace_streams(&mut self, name: &str) -> StorageResult<Vec<(i64, StreamRecord)>>;
    /// Deletes the namespace row and the repositories under it that never became streams.
    async fn delete_namespace_rows(&mut self, name: &str) -> StorageResult<()>;

    /// The stream's [`StreamState`], when the stream exists.
    async fn stream_state(
        &mut self,
        repository: &RepositoryName,
    ) -> StorageResult<Option<StreamState>>;
    /// Inserts a stream row at generation 1 and resourceVersion 0.
    async fn insert_stream(
        &mut self,
        repository_id: i64,
        namespace_id: i64,
        name: &str,
    ) -> StorageResult<()>;
    async fn set_stream_version(&mut self, repository_id: i64, version: i64) -> StorageResult<()>;
    /// Sets the stream's generation and, when given, `lookupPolicy.local`.
    async fn set_stream_spec(
        &mut self,
        repository_id: i64,
        generation: i64,
        lookup_local: Option<bool>,
    ) -> StorageResult<()>;
    async fn set_stream_metadata(
        &mut self,
        repository_id: i64,
        labels: &Labels,
        annotations: &Labels,
    ) -> StorageResult<()>;
    /// The stream as stored now, with all its tags.
    async fn load_stream(&mut self, repository_id: i64) -> StorageResult<Option<StreamRecord>>;

    async fn find_tag(&mut self, repository_id: i64, tag: &str) -> StorageResult<Option<TagRow>>;
    /// Points the tag at `point` (conditions cleared) and adds a history item for it.
    async fn write_tag(
        &mut self,
        repository_id: i64,
        tag: &str,
        point: &TagPoint<'_>,
    ) -> StorageResult<()>;
    /// Gives the tag and its newest history item `generation` (conditions cleared).
    async fn set_tag_generation(
        &mut self,
        repository_id: i64,
        tag: &str,
        generation: i64,
    ) -> StorageResult<()>;
    /// Spec tags of the stream other than `tag` that track it (`from: ImageStreamTag` naming
    /// `<stream>:<tag>` or `:<tag>`, in this namespace or none, not `reference: true`), with
    /// their generations.
    async fn tracking_tags(
        &mut self,
        repository: &RepositoryName,
        repository_id: i64,
        tag: &str,
    ) -> StorageResult<Vec<(String, i64)>>;
    /// Removes a tag, spec and status (its history goes with it); true when it had a spec tag.
    async fn remove_tag(&mut self, repository_id: i64, tag: &str) -> StorageResult<bool>;
    async fn put_spec_tag(
        &mut self,
        repository_id: i64,
        name: &str,
        reference: &str,
        generation: i64,
    ) -> StorageResult<()>;
    /// Sets a tag's conditions (making a tag with no image when missing), or clears them with
    /// `None`; true when that changed anything.
    async fn set_tag_conditions(
        &mut self,
        repository_id: i64,
        tag: &str,
        conditions: Option<&str>,
        generation: i64,
    ) -> StorageResult<bool>;
    /// Removes a manifest from a repository (its tags and history items go with it); false
    /// when the repository did not have it.
    async fn unlink_manifest(&mut self, repository_id: i64, digest: &Digest)
    -> StorageResult<bool>;
    /// Links image `digest` of repository `from` (with its child manifests and all their
    /// blobs) into repository `to`. False when `from` does not have it. Each blob goes as
    /// `from` holds it: a link as a link, a remote link as a remote link (never a link: nobody
    /// verified those bytes for `from`, and the stored copy could be another tenant's).
    async fn link_image(&mut self, from: i64, to: i64, digest: &Digest) -> StorageResult<bool>;

    /// Deletes the history items `ids` of the repository made before `before`, except the
    /// newest item of each tag in `keep_newest_of`; the tag of each item deleted.
    async fn delete_history_items(
        &mut self,
        repository_id: i64,
        ids: &[i64],
        before: DateTime<Utc>,
        keep_newest_of: &[String],
    ) -> StorageResult<Vec<String>>;
    /// Removes those of `tags` (status only: spec tags stay) that have no history item left;
    /// their names.
    async fn drop_empty_status_tags(
        &mut self,
        repository_id: i64,
        tags: &[String],
    ) -> StorageResult<Vec<String>>;
    /// Whether the repository still needs image `digest`: a tag or history item names it, an
    /// image linked here lists it as a child or as its subject, or it was pushed at or after
    /// `since`.
    async fn image_held(
        &mut self,
        repository_id: i64,
        digest: &Digest,
        since: DateTime<Utc>,
    ) -> StorageResult<bool>;

    /// Appends an event; returns its id, the new resourceVersion. Ids must become visible in
    /// order: a reader of the events after the last id it saw never skips one.
    async fn append_event(&mut self, event: &NewEvent<'_>) -> StorageResult<i64>;

    /// The namespace's enabled tag immutability rules, by name. Read in the write
    /// transaction, whose lock rule writes take too: a rule and a change cannot both win.
    async fn immutability_rules(&mut self, namespace: &str) -> StorageResult<Vec<EnforcedRuleRow>>;
    /// Tags of the repository that name `digest`, or an index that holds it (at any depth).
    async fn tags_holding(
        &mut self,
        repository_id: i64,
        digest: &Digest,
    ) -> StorageResult<Vec<String>>;
}

/// A namespace's tag immutability rules as one change sees them: read from its transaction the
/// first time a tag that names an image is about to change or go (a push of a new tag or of
/// the image a tag names already reads nothing), each compiled once per version.
pub(super) struct Protection<'a> {
    namespace: &'a str,
    rules: Option<Vec<Arc<CompiledRule>>>,
}

/// What a move does to a tag that a rule protects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WhenProtected {
    /// The change fails.
    Refuse,
    /// The tag keeps its image (a tag tracking a moved one).
    Keep,
}

impl<'a> Protection<'a> {
    pub fn of(namespace: &'a str) -> Self {
        Protection {
            namespace,
            rules: None,
        }
    }

    /// The namespace's enabled rules, read once.
    async fn rules(
        &mut self,
        tx: &mut (impl StreamTx + ?Sized),
    ) -> StorageResult<&[Arc<CompiledRule>]> {
        Ok(match &mut self.rules {
            Some(rules) => rules,
            unread => unread.insert(
                tx.immutability_rules(self.namespace)
                    .await?
                    .into_iter()
                    .map(EnforcedRuleRow::compiled)
                    .collect::<StorageResult<_>>()?,
            ),
        })
    }

    /// The refusal of a change to tag `tag` of `stream` (in this namespace), when a rule
    /// protects it.
    async fn refusal(
        &mut self,
        tx: &mut (impl StreamTx + ?Sized),
        stream: &str,
        tag: &str,
    ) -> StorageResult<Option<ImmutableTag>> {
        let namespace = self.namespace;
        let rules = self.rules(tx).await?;
        Ok(
            protecting_rule(rules, stream, tag).map(|rule| ImmutableTag {
                namespace: namespace.to_owned(),
                stream: stream.to_owned(),
                tag: tag.to_owned(),
                rule: rule.to_owned(),
            }),
        )
    }

    /// Fails with [`StorageError::TagImmutable`] when a rule protects tag `tag` of `stream`.
    async fn guard(
        &mut self,
        tx: &mut (impl StreamTx + ?Sized),
        stream: &str,
        tag: &str,
    ) -> StorageResult<()> {
        match self.refusal(tx, stream, tag).await? {
            Some(refused) => Err(refused.into()),
            None => Ok(()),
        }
    }

    /// Fails when a rule protects a tag of the stream that names an image (the stream is about
    /// to be deleted).
    async fn guard_stream(
        &mut self,
        tx: &mut (impl StreamTx + ?Sized),
        stream: &StreamRecord,
    ) -> StorageResult<()> {
        for tag in &stream.status_tags {
            if !tag.items.is_empty() {
                self.guard(tx, &stream.name, &tag.name).await?;
            }
        }
        Ok(())
    }
}

/// Appends an event about a stream and makes its id the stream's resourceVersion.
pub(super) async fn record_stream_event(
    tx: &mut (impl StreamTx + ?Sized),
    repository_id: i64,
    event: &NewEvent<'_>,
) -> StorageResult<i64> {
    let id = tx.append_event(event).await?;
    tx.set_stream_version(repository_id, id).await?;
    Ok(id)
}

/// Makes namespace `name` and logs its ADDED event, whose id becomes its resourceVersion;
/// returns its id, or `None` when the namespace exists.
///
/// The event log of an earlier namespace of this name is deleted first: whoever makes it now
/// (another tenant, perhaps) must not read, watch or be sent by webhook what happened in the
/// deleted one.
pub(super) async fn add_namespace(
    tx: &mut (impl StreamTx + ?Sized),
    name: &str,
    labels: &Labels,
    annotations: &Labels,
) -> StorageResult<Option<i64>> {
    let Some(id) = tx.insert_namespace(name, labels, annotations).await? else {
        return Ok(None);
    };
    tx.delete_namespace_events(name).await?;
    let version = tx
        .append_event(&NewEvent::namespace(EventType::Added, name, "create"))
        .await?;
    tx.set_namespace_version(id, version).await?;
    Ok(Some(id))
}

/// The namespace's id, made (with its event) when missing.
async fn ensure_namespace(tx: &mut (impl StreamTx + ?Sized), name: &str) -> StorageResult<i64> {
    if let Some(id) = add_namespace(tx, name, &Labels::new(), &Labels::new()).await? {
        return Ok(id);
    }
    tx.namespace_id(name)
        .await?
        .ok_or_else(|| StorageError::Corrupt(format!("namespace {name} vanished")))
}

/// Creates the stream (and its namespace and repository) without recording its event; returns
/// the repository id. The caller records the ADDED event.
async fn create_stream(
    tx: &mut (impl StreamTx + ?Sized),
    repository: &RepositoryName,
) -> StorageResult<i64> {
    let namespace_id = ensure_namespace(tx, repository.namespace()).await?;
    let repository_id = tx.ensure_repository(repository).await?;
    tx.insert_stream(repository_id, namespace_id, repository.stream())
        .await?;
    Ok(repository_id)
}

/// Points a tag at an image, adding a history item when it is not already there. Returns the
/// image it named before (`Some(None)` for a new tag), or `None` when nothing changed. A tag
/// that names another image already is moved only when no rule protects it.
async fn move_tag(
    tx: &mut (impl StreamTx + ?Sized),
    protection: &mut Protection<'_>,
    repository: &RepositoryName,
    repository_id: i64,
    tag: &str,
    point: &TagPoint<'_>,
    when_protected: WhenProtected,
) -> StorageResult<Option<Option<String>>> {
    let current = tx.find_tag(repository_id, tag).await?;
    let digest = point.digest.map(Digest::to_string);
    let external = point.external_reference.map(str::to_owned);
    if let Some(old) = &current
        && old.digest == digest
        && old.external_reference == external
        && (digest.is_some() || external.is_some())
    {
        if old.generation == point.generation {
            return Ok(None);
        }
        // The same image for a newer spec: as OpenShift does, the newest item takes the new
        // generation instead of a duplicate item being added.
        tx.set_tag_generation(repository_id, tag, point.generation)
            .await?;
        return Ok(Some(current.and_then(TagRow::into_image)));
    }
    if current.as_ref().is_some_and(TagRow::names_image) {
        match (
            protection.refusal(tx, repository.stream(), tag).await?,
            when_protected,
        ) {
            (None, _) => {}
            (Some(refused), WhenProtected::Refuse) => return Err(refused.into()),
            (Some(_), WhenProtected::Keep) => return Ok(None),
        }
    }
    tx.write_tag(repository_id, tag, point).await?;
    Ok(Some(current.and_then(TagRow::into_image)))
}

/// After a tag of a stream moved to `digest`, moves the spec tags of the same stream that
/// track it along, as OpenShift does; returns their names.
async fn move_tracking_tags(
    tx: &mut (impl StreamTx + ?Sized),
    protection: &mut Protection<'_>,
    repository: &RepositoryName,
    repository_id: i64,
    tag: &str,
    digest: &Digest,
    actor: Option<&str>,
) -> StorageResult<Vec<String>> {
    let mut moved = Vec::new();
    for (name, generation) in tx.tracking_tags(repository, repository_id, tag).await? {
        let point = TagPoint {
            digest: Some(digest),
            external_reference: None,
            generation,
            actor,
        };
        let moved_now = move_tag(
            tx,
            protection,
            repository,
            repository_id,
            &name,
            &point,
            WhenProtected::Keep,
        )
        .await?;
        if moved_now.is_some() {
            moved.push(name);
        }
    }
    Ok(moved)
}

/// Writes a tag's status for a target, linking a local image from its source repository.
// The arguments are one tag's write as each caller has it at hand; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
async fn point_tag(
    tx: &mut (impl StreamTx + ?Sized),
    protection: &mut Protection<'_>,
    repository: &RepositoryName,
    repository_id: i64,
    tag: &str,
    target: &TagTarget,
    generation: i64,
    actor: Option<&str>,
) -> StorageResult<Result<Option<Option<String>>, StreamChangeError>> {
    let point = match target {
        TagTarget::Local { source, digest } => {
            let missing = || StreamChangeError::SourceMissing {
                repository: source.to_string(),
                digest: digest.to_string(),
            };
            let Some(source_id) = tx.repository_id(source).await? else {
                return Ok(Err(missing()));
            };
            if !tx.link_image(source_id, repository_id, digest).await? {
                return Ok(Err(missing()));
            }
            TagPoint {
                digest: Some(digest),
                external_reference: None,
                generation,
                actor,
            }
        }
        TagTarget::External { reference, .. } => TagPoint {
            digest: None,
            external_reference: Some(reference),
            generation,
            actor,
        },
    };
    let moved = move_tag(
        tx,
        protection,
        repository,
        repository_id,
        tag,
        &point,
        WhenProtected::Refuse,
    )
    .await?;
    Ok(Ok(moved))
}

/// The image a target names, as events say it.
fn target_image(target: &TagTarget) -> String {
    match target {
        TagTarget::Local { digest, .. } => digest.to_string(),
        TagTarget::External { reference, .. } => reference.clone(),
    }
}

/// Records a push in the repository's image stream: creates the stream (and namespace) when
/// needed, moves the tag (with a history item) when it names another image, moves the tags that
/// track it, and logs the event.
pub(super) async fn record_push(
    tx: &mut (impl StreamTx + ?Sized),
    repository: &RepositoryName,
    repository_id: i64,
    digest: &Digest,
    tag: Option<&Tag>,
    actor: Option<&str>,
) -> StorageResult<()> {
    let (created, generation) = match tx.stream_state(repository).await? {
        Some(stream) => (false, stream.generation),
        None => {
            create_stream(tx, repository).await?;
            (true, 1)
        }
    };
    let event_type = if created {
        EventType::Added
    } else {
        EventType::Modified
    };
    let mut event = NewEvent::stream(event_type, repository, "push");
    let mut changed = created;
    if let Some(tag) = tag {
        let point = TagPoint {
            digest: Some(digest),
            external_reference: None,
            generation,
            actor,
        };
        let mut protection = Protection::of(repository.namespace());
        let moved = move_tag(
            tx,
            &mut protection,
            repository,
            repository_id,
            tag.as_str(),
            &point,
            WhenProtected::Refuse,
        )
        .await?;
        if let Some(before) = moved {
            move_tracking_tags(
                tx,
                &mut protection,
                repository,
                repository_id,
                tag.as_str(),
                digest,
                actor,
            )
            .await?;
            event.tag = Some(tag.as_str());
            event.old_image = before;
            event.new_image = Some(digest.to_string());
            changed = true;
        }
    }
    if changed {
        record_stream_event(tx, repository_id, &event).await?;
    }
    Ok(())
}

/// Removes a manifest from a repository's stream (its tags and history items go with it) and
/// logs the change; false when the stream or the manifest is absent.
pub(super) async fn delete_manifest(
    tx: &mut (impl StreamTx + ?Sized),
    repository: &RepositoryName,
    digest: &Digest,
) -> StorageResult<bool> {
    let Some(stream) = tx.stream_state(repository).await? else {
        return Ok(false);
    };
    // Which tags hold the image is asked only of a namespace with rules.
    let mut protection = Protection::of(repository.namespace());
    if !protection.rules(tx).await?.is_empty() {
        for tag in tx.tags_holding(stream.repository_id, digest).await? {
            protection.guard(tx, repository.stream(), &tag).await?;
        }
    }
    if !tx.unlink_manifest(stream.repository_id, digest).await? {
        return Ok(false);
    }
    let mut event = NewEvent::stream(EventType::Modified, repository, "delete-image");
    event.old_image = Some(digest.to_string());
    record_stream_event(tx, stream.repository_id, &event).await?;
    Ok(true)
}

/// Removes a registry tag (one that names a local image), spec and status, and logs it; false
/// when the stream has no such tag. Removing a spec tag is a spec change: the generation goes
/// up.
pub(super) async fn delete_tag(
    tx: &mut (impl StreamTx + ?Sized),
    repository: &RepositoryName,
    tag: &Tag,
) -> StorageResult<bool> {
    let Some(stream) = tx.stream_state(repository).await? else {
        return Ok(false);
    };
    let repository_id = stream.repository_id;
    let Some(current) = tx
        .find_tag(repository_id, tag.as_str())
        .await?
        .and_then(|row| row.digest)
    else {
        return Ok(false);
    };
    Protection::of(repository.namespace())
        .guard(tx, repository.stream(), tag.as_str())
        .await?;
    if tx.remove_tag(repository_id, tag.as_str()).await? {
        tx.set_stream_spec(repository_id, stream.generation + 1, None)
            .await?;
    }
    let mut event = NewEvent::stream(EventType::Modified, repository, "untag");
    event.tag = Some(tag.as_str());
    event.old_image = Some(current);
    record_stream_event(tx, repository_id, &event).await?;
    Ok(true)
}

/// Applies one change to a stream: presence and resourceVersion checks, metadata, removed
/// tags, the spec (the generation goes up by one for a spec change), status moves and
/// conditions, and one event when anything changed. Returns the stream as it is now; on an
/// `Err` the caller rolls back.
pub(super) async fn change_stream(
    tx: &mut (impl StreamTx + ?Sized),
    change: &StreamChange,
) -> StorageResult<Result<StreamRecord, StreamChangeError>> {
    let admission = Admission::begin(tx, &change.repository).await?;
    let existing = tx.stream_state(&change.repository).await?;
    let (repository_id, generation, created) = match (existing, change.presence) {
        (Some(_), Presence::Create) => return Ok(Err(StreamChangeError::AlreadyExists)),
        (None, Presence::Update) => return Ok(Err(StreamChangeError::NotFound)),
        (Some(stream), _) => {
            if let Some(expected) = change.expected_resource_version
                && expected != stream.resource_version
            {
                return Ok(Err(StreamChangeError::Conflict {
                    current: stream.resource_version,
                }));
            }
            (stream.repository_id, stream.generation, false)
        }
        (None, _) => (create_stream(tx, &change.repository).await?, 1, true),
    };

    let mut event = NewEvent::stream(
        if created {
            EventType::Added
        } else {
            EventType::Modified
        },
        &change.repository,
        change.reason,
    );
    let mut changed = created;
    let mut protection = Protection::of(change.repository.namespace());
    if let Some((labels, annotations)) = &change.metadata {
        tx.set_stream_metadata(repository_id, labels, annotations)
            .await?;
        changed = true;
    }
    let mut spec_removed = false;
    for tag in &change.remove_tags {
        let old = tx.find_tag(repository_id, tag).await?;
        if old.as_ref().is_some_and(TagRow::names_image) {
            protection
                .guard(tx, change.repository.stream(), tag)
                .await?;
        }
        spec_removed |= tx.remove_tag(repository_id, tag).await?;
        changed = true;
        if change.remove_tags.len() == 1 {
            event.tag = Some(tag);
            event.old_image = old.and_then(TagRow::into_image);
        }
    }
    // Only the spec counts for the generation: removing a pushed (status-only) tag does not.
    let spec_changed =
        change.lookup_local.is_some() || !change.set_spec_tags.is_empty() || spec_removed;
    // A new stream starts at generation 1 with its spec.
    let generation = if spec_changed && !created {
        generation + 1
    } else {
        generation
    };
    if spec_changed {
        tx.set_stream_spec(repository_id, generation, change.lookup_local)
            .await?;
        changed = true;
    }
    for (tag, target) in &change.move_tags {
        let moved = point_tag(
            tx,
            &mut protection,
            &change.repository,
            repository_id,
            tag,
            target,
            generation,
            change.actor.as_deref(),
        )
        .await?;
        match moved {
            Err(err) => return Ok(Err(err)),
            Ok(Some(before)) => {
                if let TagTarget::Local { digest, .. } = target {
                    move_tracking_tags(
                        tx,
                        &mut protection,
                        &change.repository,
                        repository_id,
                        tag,
                        digest,
                        change.actor.as_deref(),
                    )
                    .await?;
                }
                event.tag = Some(tag);
                event.old_image = before;
                event.new_image = Some(target_image(target));
                changed = true;
            }
            Ok(None) => {}
        }
    }
    for spec in &change.set_spec_tags {
        tx.put_spec_tag(repository_id, &spec.name, &spec.reference, generation)
            .await?;
        let Some(target) = &spec.target else {
            continue;
        };
        let moved = point_tag(
            tx,
            &mut protection,
            &change.repository,
            repository_id,
            &spec.name,
            target,
            generation,
            change.actor.as_deref(),
        )
        .await?;
        if let (Ok(Some(_)), TagTarget::Local { digest, .. }) = (&moved, target) {
            move_tracking_tags(
                tx,
                &mut protection,
                &change.repository,
                repository_id,
                &spec.name,
                digest,
                change.actor.as_deref(),
            )
            .await?;
        }
        match moved {
            Err(err) => return Ok(Err(err)),
            Ok(Some(before)) if change.set_spec_tags.len() == 1 => {
                event.tag = Some(&spec.name);
                event.old_image = before;
                event.new_image = Some(target_image(target));
            }
            Ok(_) => {}
        }
    }
    for (tag, conditions) in &change.tag_conditions {
        if tx
            .set_tag_conditions(repository_id, tag, conditions.as_deref(), generation)
            .await?
        {
            changed = true;
            event.tag.get_or_insert(tag);
        }
    }
    if changed {
        record_stream_event(tx, repository_id, &event).await?;
    }
    if let Err(refusal) = admission.finish(tx).await? {
        return Ok(Err(StreamChangeError::QuotaExceeded(refusal)));
    }
    let stream = tx
        .load_stream(repository_id)
        .await?
        .ok_or_else(|| StorageError::Corrupt("a changed stream vanished".into()))?;
    Ok(Ok(stream))
}

/// Deletes a stream's repository (everything of it cascades) and logs its DELETED event, which
/// keeps the stream's last state.
async fn delete_stream_as(
    tx: &mut (impl StreamTx + ?Sized),
    stream: &StreamRecord,
    repository_id: i64,
) -> StorageResult<()> {
    let object = to_json(stream)?;
    tx.delete_repository(repository_id).await?;
    tx.append_event(&NewEvent {
        kind: EventKind::ImageStream,
        event_type: EventType::Deleted,
        namespace: &stream.namespace,
        name: &stream.name,
        reason: "delete",
        tag: None,
        old_image: None,
        new_image: None,
        object: Some(object),
    })
    .await?;
    Ok(())
}

/// Deletes stream `namespace/name` and its repository; false when absent.
pub(super) async fn delete_stream(
    tx: &mut (impl StreamTx + ?Sized),
    namespace: &str,
    name: &str,
) -> StorageResult<bool> {
    let Ok(repository) = RepositoryName::of_stream(namespace, name) else {
        return Ok(false);
    };
    let Some(state) = tx.stream_state(&repository).await? else {
        return Ok(false);
    };
    let stream = tx
        .load_stream(state.repository_id)
        .await?
        .ok_or_else(|| StorageError::Corrupt("a stream vanished".into()))?;
    Protection::of(namespace).guard_stream(tx, &stream).await?;
    delete_stream_as(tx, &stream, state.repository_id).await?;
    Ok(true)
}

/// Deletes a namespace with its streams and their repositories; false when absent. Each
/// stream's DELETED event, then the namespace's, keeps the object's last state.
pub(super) async fn delete_namespace(
    tx: &mut (impl StreamTx + ?Sized),
    name: &str,
) -> StorageResult<bool> {
    let Some(namespace) = tx.namespace_record(name).await? else {
        return Ok(false);
    };
    let streams = tx.namespace_streams(name).await?;
    let mut protection = Protection::of(name);
    for (_, stream) in &streams {
        protection.guard_stream(tx, stream).await?;
    }
    for (repository_id, stream) in streams {
        delete_stream_as(tx, &stream, repository_id).await?;
    }
    tx.delete_namespace_rows(name).await?;
    let mut event = NewEvent::namespace(EventType::Deleted, name, "delete");
    event.object = Some(to_json(&namespace)?);
    tx.append_event(&event).await?;
    Ok(true)
}

/// One step of a prune or retention run on one repository: the history items first (a status
/// tag left without any goes), then each image that nothing here holds any more, checked again
/// inside this transaction, so that a push or tag made since the plan keeps what it names. One
/// `delete-image` event per image (what webhooks send as a delete), and one `prune` event when
/// only history went.
pub(super) async fn prune_repository(
    tx: &mut (impl StreamTx + ?Sized),
    step: &PruneStep,
) -> StorageResult<PruneOutcome> {
    let mut outcome = PruneOutcome::default();
    let Some(stream) = tx.stream_state(&step.repository).await? else {
        return Ok(outcome);
    };
    let repository_id = stream.repository_id;
    if !step.history_items.is_empty() {
        // An immutable tag keeps its image: its newest item stays, so the tag does too (as
        // Harbor's retention skips immutable tags). Older items of it may go.
        let mut protection = Protection::of(step.repository.namespace());
        let mut protected = Vec::new();
        if let Some(current) = tx.load_stream(repository_id).await? {
            for tag in current.status_tags.iter().filter(|t| !t.items.is_empty()) {
                if protection
                    .refusal(tx, step.repository.stream(), &tag.name)
                    .await?
                    .is_some()
                {
                    protected.push(tag.name.clone());
                }
            }
        }
        let mut tags = tx
            .delete_history_items(
                repository_id,
                &step.history_items,
                step.keep_since,
                &protected,
            )
            .await?;
        outcome.history_items = tags.len() as u64;
        tags.sort();
        tags.dedup();
        outcome.tags = tx.drop_empty_status_tags(repository_id, &tags).await?;
    }
    for digest in &step.images {
        if tx
            .image_held(repository_id, digest, step.keep_since)
            .await?
            || !tx.unlink_manifest(repository_id, digest).await?
        {
            continue;
        }
        let mut event = NewEvent::stream(EventType::Modified, &step.repository, "delete-image");
        event.old_image = Some(digest.to_string());
        record_stream_event(tx, repository_id, &event).await?;
        outcome.images.push(digest.clone());
    }
    if outcome.images.is_empty() && outcome.history_items > 0 {
        let mut event = NewEvent::stream(EventType::Modified, &step.repository, "prune");
        if let [tag] = outcome.tags.as_slice() {
            event.tag = Some(tag);
        }
        record_stream_event(tx, repository_id, &event).await?;
    }
    Ok(outcome)
}
