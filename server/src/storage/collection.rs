//! Collection of content nothing references: the review queue's outcomes and one sweep over
//! it ([`sweep_unreferenced`]), on any metadata store and blob store. `gc::content` runs the
//! sweeps; the rules are stated there.
//!
//! How a digest becomes collectable: the metadata store keeps a review queue. Database triggers
//! queue a digest whenever a reference to it goes (an image unlinked from a repository queues
//! the image and its blobs; a blob unlinked queues the blob; a collected manifest queues its
//! children) and whenever a blob is linked (an upload that no manifest ever references is
//! garbage too). Nothing walks the blob store. A digest is reviewed once the grace period has
//! passed since it was last queued or claimed; the review deletes, in one transaction,
//! - a manifest that no repository holds and no index refers to, with its references;
//! - a repository's link of a blob that no image of that repository references and that is
//!   older than the grace period (distribution's rule: blobs no manifest references are
//!   garbage, however they were pushed);
//! - then a blob with no link left and no image referring to it: its row goes, and its bytes
//!   are marked as being deleted. The bytes are deleted after the commit, within
//!   [`BLOB_DELETION_WINDOW`], and the mark is removed.
//!
//! Why a racing push is safe: every writer of a blob's bytes (an upload's last request, a
//! monolithic upload, an import, a pull-through fetch) claims the digest first
//! ([`MetadataStore::claim_blob`]), which waits out a deletion in progress and postpones any
//! review by the grace period; a client told that a blob exists (a `HEAD` on the push path)
//! claims it when it is queued; a manifest push holds the links it checks, and a mount the link
//! it copies, so a review cannot remove one as unreferenced underneath them. A kill at any
//! point leaves either the row (reviewed again) or the mark (the deletion is resumed); never a
//! row without its bytes.

use std::time::Duration;

use tokio::time::Instant;

use super::{BlobStore, MetadataStore, StorageResult};
use crate::oci::Digest;

/// Candidates read per query.
const BATCH: u32 = 500;

/// What garbage collection reviews: a blob or a manifest that may have lost its last
/// reference (see [`sweep_unreferenced`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    Blob(Digest),
    Manifest(Digest),
}

/// What a review decided about a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestReview {
    /// Not in the queue (reviewed already), or queued or claimed again within the grace period.
    NotDue,
    /// Still referenced: it left the queue.
    Kept,
    /// Deleted, with its references (its children are now due); its size.
    Deleted { size: u64 },
    /// Another transaction holds what the review must lock: reviewed again later.
    Busy,
}

/// What a review decided about a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobReview {
    NotDue,
    /// Still referenced or freshly linked: it left the queue or waits for another review.
    Kept,
    /// Its row and links are gone and its bytes are the collector's to delete, within the
    /// deletion window that writers of the digest wait out; then [`MetadataStore::blob_collected`].
    /// `size` is what the row said (`None` when only bytes were left).
    Collect {
        size: Option<u64>,
    },
    Busy,
}

/// How long writers of a blob wait for a collector deleting its bytes: the collector deletes
/// only well within it, so a writer never stores bytes that a deletion then removes.
pub const BLOB_DELETION_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub manifests: u64,
    pub blobs: u64,
    /// Bytes of the deleted blobs, as their rows said (the blob store's sizes for a deletion
    /// resumed after a crash).
    pub bytes: u64,
    /// Reviews that found the digest still referenced (or freshly linked).
    pub kept: u64,
    /// Reviews left for later because a push held what they had to lock, or the blob store
    /// failed to delete.
    pub busy: u64,
}

/// Reviews every digest due now (unreferenced and unclaimed for `grace`), in batches, until
/// none is left but those a push holds; deletes the bytes of the blobs it collects. `on_batch`
/// hears what each batch did as it ends (a long sweep's metrics move as it goes).
pub async fn sweep_unreferenced(
    metadata: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    grace: Duration,
    on_batch: &mut (dyn FnMut(&Swept) + Send),
) -> StorageResult<Swept> {
    let mut swept = Swept::default();
    loop {
        let batch_started = Instant::now();
        let due = metadata.due_for_review(grace, BATCH).await?;
        let mut batch = Swept::default();
        for candidate in &due {
            match candidate {
                Candidate::Manifest(digest) => {
                    match metadata.review_manifest(digest, grace).await? {
                        ManifestReview::Deleted { .. } => batch.manifests += 1,
                        ManifestReview::Kept => batch.kept += 1,
                        ManifestReview::Busy => batch.busy += 1,
                        ManifestReview::NotDue => {}
                    }
                }
                Candidate::Blob(digest) => {
                    collect_blob(metadata, blobs, digest, grace, &mut batch).await?
                }
            }
        }
        on_batch(&batch);
        swept.add(&batch);
        // A collected manifest made its children due: they are looked at in this sweep too.
        let more = due.len() == BATCH as usize || batch.manifests > 0;
        let all_busy = batch.busy == due.len() as u64;
        if !more || all_busy {
            return Ok(swept);
        }
        // Collection is never urgent: a long sweep rests as long as each batch took, so that
        // it takes at most about half of what pushes running beside it could use (the
        // database's one writer on SQLite, the CPU of a small machine).
        tokio::time::sleep(batch_started.elapsed().min(MAX_REST)).await;
    }
}

impl Swept {
    fn add(&mut self, other: &Swept) {
        self.manifests += other.manifests;
        self.blobs += other.blobs;
        self.bytes += other.bytes;
        self.kept += other.kept;
        self.busy += other.busy;
    }
}

/// The longest rest between two batches of a sweep.
const MAX_REST: Duration = Duration::from_secs(1);

/// Reviews one blob and, when it is collected, deletes its bytes within the window.
async fn collect_blob(
    metadata: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    digest: &Digest,
    grace: Duration,
    swept: &mut Swept,
) -> StorageResult<()> {
    // The window is counted from before the review asked: the store counted it later.
    let asked = Instant::now();
    let size = match metadata.review_blob(digest, grace).await? {
        BlobReview::Collect { size } => size,
        BlobReview::Kept => {
            swept.kept += 1;
            return Ok(());
        }
        BlobReview::Busy => {
            swept.busy += 1;
            return Ok(());
        }
        BlobReview::NotDue => return Ok(()),
    };
    let size = match size {
        Some(size) => size,
        None => blobs.stat(digest).await?.unwrap_or(0),
    };
    // Only well within the window that writers of the digest wait out: a deletion that cannot
    // finish in time is left marked and resumed by a later sweep.
    let deadline = asked + BLOB_DELETION_WINDOW / 2;
    match tokio::time::timeout_at(deadline, blobs.delete(digest)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::warn!(%err, %digest, "gc: deleting a blob's bytes failed; resumed later");
            swept.busy += 1;
            return Ok(());
        }
        Err(_) => {
            tracing::warn!(%digest, "gc: deleting a blob's bytes took too long; resumed later");
            swept.busy += 1;
            return Ok(());
        }
    }
    metadata.blob_collected(digest).await?;
    swept.blobs += 1;
    swept.bytes += size;
    Ok(())
}
