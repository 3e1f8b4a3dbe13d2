//! What every backend of a store must do, written once: each check takes the backend's
//! `Stores` and uses the stores by their traits; `checks!` makes named checks tests of one
//! backend, and `metadata_contract!`, `blob_contract!`, `streams_contract!`, `auth_contract!`,
//! `secrets_contract!`, `webhooks_contract!` and `quotas_contract!` name each store's, as distribution runs one
//! driver suite against every storage driver (`storage/open.rs` runs them all);
//! `coordination_contract!` runs `replica_checks!` on two replicas of one database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;

use super::auth::{
    BindingRecord, ExternalIdentity, IdentityMapping, LinkOutcome, NewAudit, OAuthCode,
    TokenIdentity, TokenKind, TokenOwner, UserRecord,
};
use super::quotas::{Limited, QuotaKind, QuotaLimit, QuotaObject, QuotaRefusal, QuotaWrite};
use super::secrets::RegistrySecretRecord;
use super::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, MAX_RESPONSE_BODY, NewDelivery, Redelivery,
    WebhookChange, WebhookRecord,
};
use super::*;
use crate::config::auth::MappingMethod;
use crate::oci::{Algorithm, Digest, RepositoryName, Tag};

/// Makes each named check a test of one backend: `$open` is a future of (what the test keeps
/// alive, the backend's [`Stores`]).
macro_rules! checks {
    ($open:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (_kept, stores) = $open.await;
                $crate::storage::contract::$check(&stores).await;
            }
        )+
    };
}
pub(crate) use checks;

/// The registry metadata contract ([`MetadataStore`]) as tests of one backend.
macro_rules! metadata_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; a_manifest_needs_its_blobs_in_the_same_repository, deleting_a_manifest_removes_its_tags_and_pagination_is_ordered, referrers_are_found_by_subject_within_the_repository, a_remote_link_serves_nothing_until_its_bytes_are_verified, declared_sizes_must_be_the_stored_ones, upload_progress_is_compare_and_set, uploads_not_written_since_a_time_expire);
    };
}
pub(crate) use metadata_contract;

pub(crate) fn repo(name: &str) -> RepositoryName {
    name.parse().unwrap()
}

pub(crate) fn manifest(
    content: &str,
    blobs: Vec<Referenced>,
    subject: Option<Digest>,
) -> NewManifest {
    NewManifest {
        digest: Digest::sha256_of(content.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        content: Bytes::from(content.to_owned()),
        artifact_type: None,
        subject,
        annotations: None,
        image: None,
        blobs,
        manifests: Vec::new(),
        pushed_by: None,
    }
}

pub(crate) fn source() -> RemoteSource {
    RemoteSource {
        repository: "remote.example/team/app".into(),
        insecure: false,
    }
}

pub async fn a_manifest_needs_its_blobs_in_the_same_repository(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let layer = Digest::sha256_of(b"layer");
    let m = manifest(
        "{\"m\":1}",
        vec![Referenced {
            digest: layer.clone(),
            size: 5,
        }],
        None,
    );
    let tag: Tag = "v1".parse().unwrap();
    assert_eq!(
        store
            .put_manifest(&repo("a/b"), &m, Some(&tag))
            .await
            .unwrap(),
        PutManifestOutcome::MissingReferences(vec![layer.clone()])
    );
    // Nothing was written, not even the repository.
    assert!(!store.repository_exists(&repo("a/b")).await.unwrap());

    store.link_blob(&repo("ns/other"), &layer, 5).await.unwrap();
    assert!(matches!(
        store
            .put_manifest(&repo("a/b"), &m, Some(&tag))
            .await
            .unwrap(),
        PutManifestOutcome::MissingReferences(_)
    ));
    assert_eq!(
        store
            .mount_blob(&repo("ns/other"), &repo("a/b"), &layer)
            .await
            .unwrap(),
        Some(5)
    );
    assert_eq!(
        store
            .put_manifest(&repo("a/b"), &m, Some(&tag))
            .await
            .unwrap(),
        PutManifestOutcome::Stored
    );
    let got = store
        .manifest_by_tag(&repo("a/b"), &tag)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.digest, m.digest);
    assert_eq!(
        store.list_repositories(None, 10).await.unwrap(),
        vec!["a/b"]
    );
}

pub async fn deleting_a_manifest_removes_its_tags_and_pagination_is_ordered(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let r = repo("ns/r");
    let m = manifest("{}", vec![], None);
    for t in ["c", "a", "b"] {
        store
            .put_manifest(&r, &m, Some(&t.parse().unwrap()))
            .await
            .unwrap();
    }
    assert_eq!(store.list_tags(&r, None, 2).await.unwrap(), vec!["a", "b"]);
    assert_eq!(store.list_tags(&r, Some("b"), 2).await.unwrap(), vec!["c"]);
    let summaries = store.repository_summaries(None, 10, 2).await.unwrap();
    assert_eq!(summaries[0].tags, vec!["a", "b"]);
    assert!(store.delete_manifest(&r, &m.digest).await.unwrap());
    assert!(store.list_tags(&r, None, 10).await.unwrap().is_empty());
    assert!(
        store
            .manifest_by_digest(&r, &m.digest)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.delete_manifest(&r, &m.digest).await.unwrap());
}

pub async fn referrers_are_found_by_subject_within_the_repository(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let r = repo("ns/r");
    let subject = manifest("{\"subject\":true}", vec![], None);
    store.put_manifest(&r, &subject, None).await.unwrap();
    let mut signature = manifest("{\"sig\":1}", vec![], Some(subject.digest.clone()));
    signature.artifact_type = Some("application/vnd.example.sig".into());
    store.put_manifest(&r, &signature, None).await.unwrap();
    store
        .put_manifest(&repo("ns/elsewhere"), &signature, None)
        .await
        .unwrap();
    let found = store.referrers(&r, &subject.digest).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest, signature.digest);
    assert_eq!(
        found[0].artifact_type.as_deref(),
        Some("application/vnd.example.sig")
    );
}

pub async fn a_remote_link_serves_nothing_until_its_bytes_are_verified(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let layer = Digest::sha256_of(b"victim's layer");
    store
        .link_blob(&repo("victim/app"), &layer, 14)
        .await
        .unwrap();
    // An import names the digest, with a forged size.
    let named = Referenced {
        digest: layer.clone(),
        size: 999,
    };
    store
        .link_remote_blobs(&repo("evil/dst"), std::slice::from_ref(&named), &source())
        .await
        .unwrap();
    assert_eq!(
        store.blob_size(&repo("evil/dst"), &layer).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .mount_blob(&repo("evil/dst"), &repo("evil/x"), &layer)
            .await
            .unwrap(),
        None,
        "a remote link is not a mount source"
    );
    assert_eq!(
        store.remote_blob(&repo("evil/dst"), &layer).await.unwrap(),
        Some(RemoteBlob {
            source: source(),
            size: 999
        })
    );
    // The forged size touched nothing of the stored blob.
    assert_eq!(
        store.blob_size(&repo("victim/app"), &layer).await.unwrap(),
        Some(14)
    );
    // A manifest may name the remote link, with its declared size only.
    let m = manifest("{\"remote\":1}", vec![named.clone()], None);
    assert_eq!(
        store
            .put_manifest(&repo("evil/dst"), &m, None)
            .await
            .unwrap(),
        PutManifestOutcome::Stored
    );

    // Fetched and verified: a link with the bytes' size, and no remote link any more.
    assert!(
        store
            .link_fetched_blob(&repo("evil/dst"), &layer, 14)
            .await
            .unwrap()
    );
    assert_eq!(
        store.blob_size(&repo("evil/dst"), &layer).await.unwrap(),
        Some(14)
    );
    assert_eq!(
        store.remote_blob(&repo("evil/dst"), &layer).await.unwrap(),
        None
    );
    // Without a remote link, nothing is linked.
    assert!(
        !store
            .link_fetched_blob(&repo("evil/other"), &layer, 14)
            .await
            .unwrap()
    );
    assert_eq!(
        store.blob_size(&repo("evil/other"), &layer).await.unwrap(),
        None
    );
    // A later import does not turn the link back into a remote one.
    store
        .link_remote_blobs(&repo("evil/dst"), &[named], &source())
        .await
        .unwrap();
    assert_eq!(
        store.remote_blob(&repo("evil/dst"), &layer).await.unwrap(),
        None
    );
}

pub async fn declared_sizes_must_be_the_stored_ones(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let r = repo("ns/r");
    let config = Digest::sha256_of(b"{}");
    store.link_blob(&r, &config, 2).await.unwrap();
    let wrong = manifest(
        "{\"wrong\":1}",
        vec![Referenced {
            digest: config.clone(),
            size: 3,
        }],
        None,
    );
    assert_eq!(
        store.put_manifest(&r, &wrong, None).await.unwrap(),
        PutManifestOutcome::WrongSizes(vec![SizeMismatch {
            digest: config.clone(),
            declared: 3,
            stored: 2
        }])
    );
    let child = manifest(
        "{\"child\":1}",
        vec![Referenced {
            digest: config,
            size: 2,
        }],
        None,
    );
    assert_eq!(
        store.put_manifest(&r, &child, None).await.unwrap(),
        PutManifestOutcome::Stored
    );
    let mut index = manifest("{\"index\":1}", vec![], None);
    index.manifests = vec![Referenced {
        digest: child.digest.clone(),
        size: child.content.len() as u64 + 1,
    }];
    assert!(matches!(
        store.put_manifest(&r, &index, None).await.unwrap(),
        PutManifestOutcome::WrongSizes(_)
    ));
    index.manifests[0].size -= 1;
    assert_eq!(
        store.put_manifest(&r, &index, None).await.unwrap(),
        PutManifestOutcome::Stored
    );
}

pub async fn uploads_not_written_since_a_time_expire(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let session = || UploadSession {
        id: UploadId::new(),
        repository: repo("ns/r"),
        size: 0,
        hash_algorithm: Algorithm::Sha256,
        hash_state: Algorithm::Sha256.hasher().save(),
        started_at: Utc::now(),
    };
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(20));
    let (abandoned, resumed, other_abandoned) = (session(), session(), session());
    for old in [&abandoned, &resumed, &other_abandoned] {
        store.create_upload(old).await.unwrap();
    }
    pause().await;
    let cutoff = Utc::now();
    pause().await;
    // Written to after the cutoff: not abandoned.
    assert!(store.advance_upload(resumed.id, 0, 5, b"s").await.unwrap());
    let fresh = session();
    store.create_upload(&fresh).await.unwrap();

    let first = store.expire_uploads(cutoff, 1).await.unwrap();
    assert_eq!(first.len(), 1, "at most the limit");
    let mut expired = first;
    expired.extend(store.expire_uploads(cutoff, 10).await.unwrap());
    expired.sort_by_key(|id| id.0);
    let mut abandoned_ids = vec![abandoned.id, other_abandoned.id];
    abandoned_ids.sort_by_key(|id| id.0);
    assert_eq!(expired, abandoned_ids);
    assert!(store.expire_uploads(cutoff, 10).await.unwrap().is_empty());
    assert!(!store.upload_exists(abandoned.id).await.unwrap());
    assert!(store.upload_exists(resumed.id).await.unwrap());
    assert!(store.upload_exists(fresh.id).await.unwrap());
}

pub async fn upload_progress_is_compare_and_set(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let session = UploadSession {
        id: UploadId::new(),
        repository: repo("ns/r"),
        size: 0,
        hash_algorithm: Algorithm::Sha256,
        hash_state: Algorithm::Sha256.hasher().save(),
        started_at: Utc::now(),
    };
    store.create_upload(&session).await.unwrap();
    assert!(store.advance_upload(session.id, 0, 10, b"s").await.unwrap());
    assert!(!store.advance_upload(session.id, 0, 20, b"s").await.unwrap());
    assert!(
        store
            .get_upload(&repo("ns/other"), session.id)
            .await
            .unwrap()
            .is_none()
    );
    let loaded = store
        .get_upload(&repo("ns/r"), session.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.size, 10);
    assert_eq!(store.count_uploads().await.unwrap(), 1);
    let digest = Digest::sha256_of(b"0123456789");
    store.finish_upload(&loaded, &digest, 10).await.unwrap();
    assert_eq!(store.count_uploads().await.unwrap(), 0);
    assert_eq!(
        store.blob_size(&repo("ns/r"), &digest).await.unwrap(),
        Some(10)
    );
}

/// The blob store contract ([`BlobStore`]) as tests of one backend.
macro_rules! blob_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; concurrent_readiness_probes_all_pass, upload_in_chunks_then_commit_and_read_ranges, a_write_after_an_interrupted_one_starts_at_the_recorded_offset, an_unhashed_write_reads_back_for_hashing_then_commits, missing_blobs_and_uploads_are_reported_as_such, a_commit_that_already_happened_is_done, uploads_of_one_blob_committed_at_once_all_succeed, large_uploads_in_uneven_chunks_read_back_whole_and_by_ranges, an_empty_blob_is_stored_and_read, idle_uploads_are_listed_and_deleted, derived_objects_are_replaced_whole_and_go_with_their_blob);
    };
}
pub(crate) use blob_contract;

pub(crate) fn body(chunks: Vec<&'static [u8]>) -> IncomingStream {
    Box::pin(futures_util::stream::iter(
        chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
    ))
}

pub(crate) async fn collect(stream: ByteStream) -> Vec<u8> {
    let chunks: Vec<_> = stream.collect().await;
    chunks.into_iter().flat_map(|c| c.unwrap()).collect()
}

pub async fn concurrent_readiness_probes_all_pass(stores: &Stores) {
    let store = stores.blobs.clone();
    let probes: Vec<_> = (0..64)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.check().await })
        })
        .collect();
    for probe in probes {
        probe.await.unwrap().unwrap();
    }
}

pub async fn upload_in_chunks_then_commit_and_read_ranges(stores: &Stores) {
    let store = stores.blobs.clone();
    let id = UploadId::new();
    let (size, hasher) = store
        .write_upload(id, 0, body(vec![b"hello "]), Algorithm::Sha256.hasher())
        .await
        .unwrap();
    assert_eq!(size, 6);
    let (size, hasher) = store
        .write_upload(id, size, body(vec![b"wor", b"ld"]), hasher)
        .await
        .unwrap();
    let digest = hasher.finish();
    assert_eq!(digest, Digest::sha256_of(b"hello world"));
    store.commit_upload(id, size, &digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(11));
    assert_eq!(
        collect(store.read(&digest, 6, 5).await.unwrap()).await,
        b"world"
    );
    assert!(store.read_upload(id, 1).await.is_err());
}

pub async fn a_write_after_an_interrupted_one_starts_at_the_recorded_offset(stores: &Stores) {
    let store = stores.blobs.clone();
    let id = UploadId::new();
    let (size, hasher) = store
        .write_upload(id, 0, body(vec![b"abc"]), Algorithm::Sha256.hasher())
        .await
        .unwrap();
    // A second write that was never recorded (the server crashed before saving it).
    store
        .write_upload(id, size, body(vec![b"GARBAGE"]), hasher.clone())
        .await
        .unwrap();
    let (size, hasher) = store
        .write_upload(id, size, body(vec![b"def"]), hasher)
        .await
        .unwrap();
    let digest = hasher.finish();
    assert_eq!(digest, Digest::sha256_of(b"abcdef"));
    store.commit_upload(id, size, &digest).await.unwrap();
    assert_eq!(
        collect(store.read(&digest, 0, 6).await.unwrap()).await,
        b"abcdef"
    );
}

pub async fn an_unhashed_write_reads_back_for_hashing_then_commits(stores: &Stores) {
    let store = stores.blobs.clone();
    let id = UploadId::new();
    let size = store
        .write_upload_unhashed(id, 0, body(vec![b"pulled ", b"through"]))
        .await
        .unwrap();
    assert_eq!(size, 14);
    let mut hasher = Algorithm::Sha256.hasher();
    let mut content = store.read_upload(id, size).await.unwrap();
    while let Some(chunk) = content.next().await {
        hasher.update(&chunk.unwrap());
    }
    let digest = hasher.finish();
    assert_eq!(digest, Digest::sha256_of(b"pulled through"));
    store.commit_upload(id, size, &digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(14));
}

pub async fn missing_blobs_and_uploads_are_reported_as_such(stores: &Stores) {
    let store = stores.blobs.clone();
    let digest = Digest::sha256_of(b"nothing");
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    assert!(matches!(
        store.read(&digest, 0, 1).await,
        Err(StorageError::BlobMissing(_))
    ));
    assert!(matches!(
        store.commit_upload(UploadId::new(), 0, &digest).await,
        Err(StorageError::UploadDataMissing)
    ));
    assert!(matches!(
        store
            .write_upload(
                UploadId::new(),
                5,
                body(vec![b"x"]),
                Algorithm::Sha256.hasher()
            )
            .await,
        Err(StorageError::UploadDataMissing)
    ));
    store.check().await.unwrap();
}

pub async fn a_commit_that_already_happened_is_done(stores: &Stores) {
    let store = stores.blobs.clone();
    let id = UploadId::new();
    let (size, hasher) = store
        .write_upload(id, 0, body(vec![b"twice"]), Algorithm::Sha256.hasher())
        .await
        .unwrap();
    let digest = hasher.finish();
    store.commit_upload(id, size, &digest).await.unwrap();
    // The session was not ended before a crash: committing again finds the blob in place.
    store.commit_upload(id, size, &digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(5));
    // Not when the blob there has another size.
    assert!(matches!(
        store.commit_upload(id, size + 1, &digest).await,
        Err(StorageError::UploadDataMissing)
    ));
}

/// Two clients (on two replicas) pushing one layer commit it at once: each commit succeeds and
/// the blob is whole. No backend may need a create-only write for this (S3's conditional PUT,
/// which Garage ignores): both write the same bytes under the same name.
pub async fn uploads_of_one_blob_committed_at_once_all_succeed(stores: &Stores) {
    let store = stores.blobs.clone();
    let content = noise(300_001);
    let digest = Digest::sha256_of(&content);
    let mut ids = Vec::new();
    // Uploads written at once and in two writes: on S3 a server-side copy and a streamed PUT.
    for splits in [vec![0], vec![0, 100_000], vec![0], vec![0, 200_000]] {
        let id = UploadId::new();
        for (i, &from) in splits.iter().enumerate() {
            let to = splits.get(i + 1).copied().unwrap_or(content.len());
            store
                .write_upload_unhashed(id, from as u64, chunked(&content, from..to, 65_536))
                .await
                .unwrap();
        }
        ids.push(id);
    }
    let commits: Vec<_> = ids
        .iter()
        .map(|&id| {
            let (store, digest) = (store.clone(), digest.clone());
            tokio::spawn(async move { store.commit_upload(id, 300_001, &digest).await })
        })
        .collect();
    for commit in commits {
        commit.await.unwrap().unwrap();
    }
    assert_eq!(store.stat(&digest).await.unwrap(), Some(300_001));
    assert!(collect(store.read(&digest, 0, 300_001).await.unwrap()).await == content);
    for id in ids {
        assert!(matches!(
            store.read_upload(id, 1).await,
            Err(StorageError::UploadDataMissing)
        ));
    }
}

/// `len` bytes that repeat nowhere a misplaced part could hide.
pub(crate) fn noise(len: usize) -> Bytes {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<_>>()
        .into()
}

/// `content[range]` as a request body in chunks of `chunk` bytes.
pub(crate) fn chunked(
    content: &Bytes,
    range: std::ops::Range<usize>,
    chunk: usize,
) -> IncomingStream {
    let content = content.slice(range);
    let pieces: Vec<_> = (0..content.len())
        .step_by(chunk)
        .map(|at| Ok(content.slice(at..(at + chunk).min(content.len()))))
        .collect();
    Box::pin(futures_util::stream::iter(pieces))
}

pub async fn large_uploads_in_uneven_chunks_read_back_whole_and_by_ranges(stores: &Stores) {
    let store = stores.blobs.clone();
    let total = 20_000_003;
    let content = noise(total);
    let id = UploadId::new();
    // A first write larger than two S3 parts, a small one, then the rest, in odd-sized chunks.
    let (size, hasher) = store
        .write_upload(
            id,
            0,
            chunked(&content, 0..17_000_000, 65_537),
            Algorithm::Sha256.hasher(),
        )
        .await
        .unwrap();
    assert_eq!(size, 17_000_000);
    let (size, hasher) = store
        .write_upload(
            id,
            size,
            chunked(&content, 17_000_000..17_000_100, 7),
            hasher,
        )
        .await
        .unwrap();
    let (size, hasher) = store
        .write_upload(
            id,
            size,
            chunked(&content, 17_000_100..total, 300_001),
            hasher,
        )
        .await
        .unwrap();
    assert_eq!(size, total as u64);
    let digest = hasher.finish();
    assert_eq!(digest, Digest::sha256_of(&content));
    assert!(collect(store.read_upload(id, size).await.unwrap()).await == content);
    store.commit_upload(id, size, &digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(total as u64));
    for (offset, len) in [
        (0, total),
        ((8 << 20) - 3, 10),
        (16_999_990, 200),
        (total - 1, 1),
    ] {
        let read = collect(
            store
                .read(&digest, offset as u64, len as u64)
                .await
                .unwrap(),
        )
        .await;
        assert!(read == content[offset..offset + len], "{offset}+{len}");
    }
}

pub async fn an_empty_blob_is_stored_and_read(stores: &Stores) {
    let store = stores.blobs.clone();
    let id = UploadId::new();
    let (size, hasher) = store
        .write_upload(id, 0, body(vec![]), Algorithm::Sha256.hasher())
        .await
        .unwrap();
    assert_eq!(size, 0);
    let digest = hasher.finish();
    store.commit_upload(id, size, &digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(0));
    assert!(
        collect(store.read(&digest, 0, 0).await.unwrap())
            .await
            .is_empty()
    );
}

pub async fn derived_objects_are_replaced_whole_and_go_with_their_blob(stores: &Stores) {
    let store = stores.blobs.clone();
    let id = UploadId::new();
    let (size, hasher) = store
        .write_upload(id, 0, body(vec![b"a layer"]), Algorithm::Sha256.hasher())
        .await
        .unwrap();
    let digest = hasher.finish();
    store.commit_upload(id, size, &digest).await.unwrap();
    let kind = Derived::LayerIndex;
    assert_eq!(store.get_derived(&digest, kind).await.unwrap(), None);
    store
        .put_derived(&digest, kind, Bytes::from_static(b"first"))
        .await
        .unwrap();
    store
        .put_derived(&digest, kind, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(
        store.get_derived(&digest, kind).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    store.delete(&digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    assert_eq!(store.get_derived(&digest, kind).await.unwrap(), None);
    // Deleting a blob that has none (or is gone) is fine.
    store.delete(&digest).await.unwrap();
}

pub async fn idle_uploads_are_listed_and_deleted(stores: &Stores) {
    let store = stores.blobs.clone();
    let (left, kept) = (UploadId::new(), UploadId::new());
    for id in [left, kept] {
        store
            .write_upload_unhashed(id, 0, body(vec![b"left ", b"behind"]))
            .await
            .unwrap();
    }
    let idle = store.idle_uploads(std::time::Duration::ZERO).await.unwrap();
    assert!(idle.contains(&left) && idle.contains(&kept), "{idle:?}");
    assert!(
        store
            .idle_uploads(std::time::Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );
    store.delete_upload(left).await.unwrap();
    assert_eq!(
        store.idle_uploads(std::time::Duration::ZERO).await.unwrap(),
        vec![kept]
    );
    assert!(matches!(
        store.read_upload(left, 1).await,
        Err(StorageError::UploadDataMissing)
    ));
    // Deleting what is gone already is no error.
    store.delete_upload(left).await.unwrap();
}

/// The registry secret store's contract ([`RegistrySecretStore`](super::secrets::RegistrySecretStore),
/// with the namespaces it belongs to) as tests of one backend's [`Stores`].
macro_rules! secrets_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; secrets_are_kept_per_namespace_by_name, secrets_need_their_namespace_and_go_with_it);
    };
}
pub(crate) use secrets_contract;

fn secret_record(namespace: &str, name: &str, hosts: &[&str]) -> RegistrySecretRecord {
    RegistrySecretRecord {
        namespace: namespace.into(),
        name: name.into(),
        secret_type: "kubernetes.io/dockerconfigjson".into(),
        nonce: vec![1; 24],
        ciphertext: format!("sealed {name}").into_bytes(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        // Whole seconds: what is read back must equal what was written.
        created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    }
}

async fn make_namespace(stores: &Stores, name: &str) {
    stores
        .streams
        .create_namespace(name, &Labels::new(), &Labels::new())
        .await
        .unwrap()
        .unwrap();
}

pub async fn secrets_are_kept_per_namespace_by_name(stores: &Stores) {
    make_namespace(stores, "team").await;
    make_namespace(stores, "other").await;
    let quay = secret_record("team", "quay", &["quay.io"]);
    assert!(stores.secrets.put_registry_secret(&quay).await.unwrap());
    assert!(
        stores
            .secrets
            .put_registry_secret(&secret_record("team", "hub", &["docker.io", "ghcr.io"]))
            .await
            .unwrap()
    );
    assert!(
        stores
            .secrets
            .put_registry_secret(&secret_record("other", "quay", &["quay.io"]))
            .await
            .unwrap()
    );
    // A name is taken once per namespace, and the first secret stays as it was.
    let mut again = secret_record("team", "quay", &["example.com"]);
    again.ciphertext = b"another".to_vec();
    assert!(!stores.secrets.put_registry_secret(&again).await.unwrap());

    let listed = stores.secrets.registry_secrets("team").await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["hub", "quay"]
    );
    assert_eq!(listed[0].hosts, ["docker.io", "ghcr.io"]);
    assert_eq!(
        stores
            .secrets
            .registry_secret("team", "quay")
            .await
            .unwrap(),
        Some(quay)
    );
    assert_eq!(
        stores
            .secrets
            .registry_secret("team", "absent")
            .await
            .unwrap(),
        None
    );
    assert!(
        stores
            .secrets
            .registry_secrets("nobody")
            .await
            .unwrap()
            .is_empty()
    );

    assert!(
        stores
            .secrets
            .delete_registry_secret("team", "quay")
            .await
            .unwrap()
    );
    assert!(
        !stores
            .secrets
            .delete_registry_secret("team", "quay")
            .await
            .unwrap()
    );
    assert_eq!(
        stores
            .secrets
            .registry_secret("team", "quay")
            .await
            .unwrap(),
        None
    );
    assert!(
        stores
            .secrets
            .registry_secret("other", "quay")
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn secrets_need_their_namespace_and_go_with_it(stores: &Stores) {
    assert!(
        stores
            .secrets
            .put_registry_secret(&secret_record("ghost", "quay", &["quay.io"]))
            .await
            .is_err()
    );
    make_namespace(stores, "team").await;
    make_namespace(stores, "other").await;
    stores
        .secrets
        .put_registry_secret(&secret_record("team", "quay", &["quay.io"]))
        .await
        .unwrap();
    stores
        .secrets
        .put_registry_secret(&secret_record("other", "quay", &["quay.io"]))
        .await
        .unwrap();
    assert!(stores.streams.delete_namespace("team").await.unwrap());
    make_namespace(stores, "team").await;
    // A namespace made again under the same name does not inherit the old secrets.
    assert!(
        stores
            .secrets
            .registry_secrets("team")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        stores
            .secrets
            .registry_secrets("other")
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The image stream store's contract ([`ImageStreamStore`]: stream summaries and namespace
/// usage over what the registry stored, changes and their rules, deletions, the event log's
/// order under concurrent writers) as tests of one backend's [`Stores`].
macro_rules! streams_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; a_push_moves_its_tag_with_history_and_logs_events_in_order, stream_summaries_filter_sort_and_page_in_one_query, namespace_usage_counts_streams_and_bytes, a_watcher_sees_every_event_once_in_order_under_concurrent_writers, stream_changes_check_presence_and_version_and_raise_the_generation_on_spec_changes, tags_that_track_a_moved_tag_follow_it_and_images_link_across_streams, deletions_log_the_last_state_and_a_namespace_made_again_starts_clean, old_events_are_compacted_but_never_the_newest_or_unread_ones);
    };
}
pub(crate) use streams_contract;

/// Stores an image of `size` bytes in `repository` (an index when `children` are given)
/// and points `tag` at it.
async fn push_sized(
    stores: &Stores,
    repository: &str,
    tag: &str,
    seed: &str,
    size: u64,
    children: Vec<(Digest, &str)>,
) -> Digest {
    let manifest = seeded_manifest(seed, size, children);
    let tag: Option<Tag> = (!tag.is_empty()).then(|| tag.parse().unwrap());
    stores
        .metadata
        .put_manifest(&repository.parse().unwrap(), &manifest, tag.as_ref())
        .await
        .unwrap();
    manifest.digest
}

/// An image manifest `{"seed":"…"}` of `size` bytes (an index when `children` are given).
fn seeded_manifest(seed: &str, size: u64, children: Vec<(Digest, &str)>) -> NewManifest {
    let content = format!("{{\"seed\":\"{seed}\"}}");
    NewManifest {
        digest: Digest::sha256_of(content.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        content: Bytes::from(content),
        artifact_type: None,
        subject: None,
        annotations: None,
        image: Some(format!("{{\"size\":{size}}}")),
        blobs: Vec::new(),
        // The helper's manifests are `{"seed":"…"}`, so a child's size follows from its seed.
        manifests: children
            .into_iter()
            .map(|(digest, seed)| crate::storage::Referenced {
                digest,
                size: format!("{{\"seed\":\"{seed}\"}}").len() as u64,
            })
            .collect(),
        pushed_by: None,
    }
}

fn stream_names(page: &[StreamSummaryRecord]) -> Vec<&str> {
    page.iter().map(|s| s.name.as_str()).collect()
}

pub async fn stream_summaries_filter_sort_and_page_in_one_query(stores: &Stores) {
    push_sized(stores, "ns/alpha", "v1", "a1", 100, vec![]).await;
    push_sized(stores, "ns/alpha", "v2", "a2", 50, vec![]).await;
    // Two tags on one image count it once.
    let shared = push_sized(stores, "ns/beta", "v1", "b1", 1000, vec![]).await;
    let _ = shared;
    push_sized(stores, "ns/beta", "also", "b1", 1000, vec![]).await;
    // An index counts its children's bytes.
    let child = push_sized(stores, "ns/gamma", "", "g-child", 700, vec![]).await;
    push_sized(
        stores,
        "ns/gamma",
        "latest",
        "g-index",
        10,
        vec![(child, "g-child")],
    )
    .await;
    push_sized(stores, "other/alpha", "v1", "o1", 5, vec![]).await;

    let (page, total) = stores
        .streams
        .stream_summaries("ns", "", None, SummarySort::Name, 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(stream_names(&page), ["alpha", "beta", "gamma"]);
    assert_eq!((page[0].tags, page[0].size), (2, 150));
    assert_eq!(page[0].latest_tag.as_deref(), Some("v2"));
    assert!(page[0].updated.is_some());
    assert_eq!((page[1].tags, page[1].size), (2, 1000));
    assert_eq!((page[2].tags, page[2].size), (1, 710));

    let (page, total) = stores
        .streams
        .stream_summaries("ns", "", None, SummarySort::Size, 0, 2)
        .await
        .unwrap();
    assert_eq!((stream_names(&page), total), (vec!["beta", "gamma"], 3));
    let (page, _) = stores
        .streams
        .stream_summaries("ns", "", None, SummarySort::Size, 2, 2)
        .await
        .unwrap();
    assert_eq!(stream_names(&page), ["alpha"]);

    // The newest change first: gamma was pushed last.
    let (page, _) = stores
        .streams
        .stream_summaries("ns", "", None, SummarySort::Updated, 0, 10)
        .await
        .unwrap();
    assert_eq!(stream_names(&page)[0], "gamma");

    let (page, total) = stores
        .streams
        .stream_summaries("ns", "a", None, SummarySort::Name, 0, 10)
        .await
        .unwrap();
    assert_eq!(
        (stream_names(&page), total),
        (vec!["alpha", "beta", "gamma"], 3)
    );
    let (page, total) = stores
        .streams
        .stream_summaries("ns", "et", None, SummarySort::Name, 0, 10)
        .await
        .unwrap();
    assert_eq!((stream_names(&page), total), (vec!["beta"], 1));

    let only = vec!["gamma".to_owned(), "alpha".to_owned(), "absent".to_owned()];
    let (page, total) = stores
        .streams
        .stream_summaries("ns", "", Some(&only), SummarySort::Name, 0, 1)
        .await
        .unwrap();
    assert_eq!((stream_names(&page), total), (vec!["alpha"], 2));
    let (page, total) = stores
        .streams
        .stream_summaries("ns", "", Some(&[]), SummarySort::Name, 0, 10)
        .await
        .unwrap();
    assert_eq!((page.len(), total), (0, 0));
    let (page, total) = stores
        .streams
        .stream_summaries("nowhere", "", None, SummarySort::Name, 0, 10)
        .await
        .unwrap();
    assert_eq!((page.len(), total), (0, 0));
}

pub async fn namespace_usage_counts_streams_and_bytes(stores: &Stores) {
    push_sized(stores, "ns/alpha", "v1", "a1", 100, vec![]).await;
    push_sized(stores, "ns/beta", "v1", "a1", 100, vec![]).await;
    push_sized(stores, "ns/beta", "v2", "b2", 20, vec![]).await;
    push_sized(stores, "other/alpha", "v1", "o1", 5, vec![]).await;
    stores
        .streams
        .create_namespace("empty", &Labels::new(), &Labels::new())
        .await
        .unwrap();
    let usage = stores.streams.namespace_usage().await.unwrap();
    let summary: Vec<(&str, u64, u64)> = usage
        .iter()
        .map(|u| (u.name.as_str(), u.streams, u.size))
        .collect();
    // The image in two streams of a namespace is counted once.
    assert_eq!(summary, [("empty", 0, 0), ("ns", 2, 120), ("other", 1, 5)]);
}

/// The webhook store's contract ([`WebhookStore`](super::webhooks::WebhookStore): subscriptions,
/// the delivery log and its cursor, due deliveries, attempts, redeliveries) as tests of one
/// backend's [`Stores`].
macro_rules! webhooks_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; webhooks_are_kept_per_namespace_by_name_and_go_with_it, deliveries_and_the_cursor_move_together_once_per_event, each_subscription_sends_its_oldest_pending_delivery_first, a_finished_delivery_is_sent_again_as_a_new_one, old_finished_deliveries_are_deleted_pending_ones_kept, a_subscription_is_changed_and_a_disabled_one_sends_nothing, test_deliveries_are_made_by_hand_any_number_of_times, attempts_keep_the_start_of_the_answer_bounded);
    };
}
pub(crate) use webhooks_contract;

pub(crate) fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn webhook(namespace: &str, name: &str) -> WebhookRecord {
    WebhookRecord {
        id: 0,
        namespace: namespace.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        url: format!("http://127.0.0.1:9/{name}"),
        events: vec!["push".into(), "imagestream".into()],
        format: "distribution".into(),
        secret_nonce: vec![1; 24],
        secret_ciphertext: b"sealed".to_vec(),
        since_event: 0,
        // Whole seconds: what is read back must equal what was written.
        created_at: at(0),
        disabled: false,
    }
}

pub(crate) fn delivery(webhook_id: i64, event_id: i64, event: &str) -> NewDelivery {
    NewDelivery {
        webhook_id,
        event_id,
        event: event.into(),
        content_type: "application/json".into(),
        body: format!("{{\"event\":{event_id}}}").into_bytes(),
    }
}

pub(crate) fn attempt(delivery_id: i64, number: u32, status: u16) -> AttemptRecord {
    AttemptRecord {
        delivery_id,
        number,
        status_code: Some(status),
        error: None,
        duration_ms: 12,
        attempted_at: at(i64::from(number)),
        response_body: None,
        response_truncated: false,
    }
}

/// Namespaces `team` and `other`, which the webhook checks use.
async fn with_namespaces(stores: &Stores) {
    for namespace in ["team", "other"] {
        stores
            .streams
            .create_namespace(namespace, &Labels::new(), &Labels::new())
            .await
            .unwrap()
            .unwrap();
    }
}

/// Subscribes webhook `name` (of [`webhook`]) in `namespace`; its id.
async fn subscribe(stores: &Stores, namespace: &str, name: &str) -> i64 {
    stores
        .webhooks
        .put_webhook(&webhook(namespace, name))
        .await
        .unwrap();
    stores
        .webhooks
        .webhook(namespace, name)
        .await
        .unwrap()
        .unwrap()
        .id
}

pub async fn webhooks_are_kept_per_namespace_by_name_and_go_with_it(stores: &Stores) {
    with_namespaces(stores).await;
    assert!(
        stores
            .webhooks
            .put_webhook(&webhook("team", "ci"))
            .await
            .unwrap()
    );
    assert!(
        stores
            .webhooks
            .put_webhook(&webhook("team", "audit"))
            .await
            .unwrap()
    );
    assert!(
        stores
            .webhooks
            .put_webhook(&webhook("other", "ci"))
            .await
            .unwrap()
    );
    let mut again = webhook("team", "ci");
    again.url = "http://elsewhere/".into();
    assert!(!stores.webhooks.put_webhook(&again).await.unwrap());
    assert!(
        stores
            .webhooks
            .put_webhook(&webhook("ghost", "ci"))
            .await
            .is_err()
    );

    let listed = stores.webhooks.webhooks("team").await.unwrap();
    assert_eq!(
        listed.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["audit", "ci"]
    );
    let ci = stores
        .webhooks
        .webhook("team", "ci")
        .await
        .unwrap()
        .unwrap();
    // Subscriptions are for the events after them.
    assert_eq!(
        ci.since_event,
        stores.streams.latest_event_id().await.unwrap()
    );
    assert_eq!(
        ci,
        WebhookRecord {
            id: ci.id,
            since_event: ci.since_event,
            ..webhook("team", "ci")
        }
    );
    assert_eq!(
        stores.webhooks.webhook_by_id(ci.id).await.unwrap(),
        Some(ci.clone())
    );

    stores
        .webhooks
        .add_deliveries(&[delivery(ci.id, 8, "push")], 8)
        .await
        .unwrap();
    assert!(stores.webhooks.delete_webhook("team", "ci").await.unwrap());
    assert!(!stores.webhooks.delete_webhook("team", "ci").await.unwrap());
    assert_eq!(stores.webhooks.webhook_by_id(ci.id).await.unwrap(), None);
    assert!(
        stores
            .webhooks
            .due_deliveries(Utc::now(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(stores.streams.delete_namespace("other").await.unwrap());
    assert!(stores.webhooks.webhooks("other").await.unwrap().is_empty());
    assert_eq!(stores.webhooks.webhooks("team").await.unwrap().len(), 1);
}

pub async fn deliveries_and_the_cursor_move_together_once_per_event(stores: &Stores) {
    with_namespaces(stores).await;
    assert_eq!(stores.webhooks.webhook_cursor().await.unwrap(), None);
    let ci = subscribe(stores, "team", "ci").await;
    stores
        .webhooks
        .add_deliveries(
            &[delivery(ci, 8, "push"), delivery(ci, 8, "imagestream")],
            8,
        )
        .await
        .unwrap();
    // The same event again (a second replica, or a restart before the cursor moved).
    stores
        .webhooks
        .add_deliveries(&[delivery(ci, 8, "push")], 8)
        .await
        .unwrap();
    // The cursor never goes back.
    stores.webhooks.add_deliveries(&[], 5).await.unwrap();
    assert_eq!(stores.webhooks.webhook_cursor().await.unwrap(), Some(8));
    let all = stores.webhooks.deliveries(ci, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0.event, "imagestream", "newest first");
    assert_eq!(all[0].0.state, DeliveryState::Pending);
    assert!(all.iter().all(|(_, attempts)| attempts.is_empty()));
    assert!(
        stores
            .webhooks
            .add_deliveries(&[delivery(999, 9, "push")], 9)
            .await
            .is_err()
    );
    assert_eq!(stores.webhooks.webhook_cursor().await.unwrap(), Some(8));
}

pub async fn old_finished_deliveries_are_deleted_pending_ones_kept(stores: &Stores) {
    with_namespaces(stores).await;
    let ci = subscribe(stores, "team", "ci").await;
    stores
        .webhooks
        .add_deliveries(
            &[
                delivery(ci, 8, "push"),
                delivery(ci, 9, "push"),
                delivery(ci, 10, "push"),
            ],
            10,
        )
        .await
        .unwrap();
    let all = stores.webhooks.deliveries(ci, 10).await.unwrap();
    let id_of = |event: i64| all.iter().find(|(d, _)| d.event_id == event).unwrap().0.id;
    for (event, state) in [(8, DeliveryState::Delivered), (9, DeliveryState::Failed)] {
        stores
            .webhooks
            .record_attempt(&attempt(id_of(event), 1, 200), state, None)
            .await
            .unwrap();
    }
    let later = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        stores
            .webhooks
            .delete_finished_deliveries(Utc::now() - chrono::Duration::hours(1), 10)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        stores
            .webhooks
            .delete_finished_deliveries(later, 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        stores
            .webhooks
            .delete_finished_deliveries(later, 10)
            .await
            .unwrap(),
        1
    );
    let left = stores.webhooks.deliveries(ci, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0.event_id, 10);
    assert_eq!(left[0].0.state, DeliveryState::Pending);
}

pub async fn each_subscription_sends_its_oldest_pending_delivery_first(stores: &Stores) {
    with_namespaces(stores).await;
    let slow = subscribe(stores, "team", "slow").await;
    let fast = subscribe(stores, "team", "fast").await;
    stores
        .webhooks
        .add_deliveries(
            &[
                delivery(slow, 8, "push"),
                delivery(fast, 8, "push"),
                delivery(slow, 9, "push"),
                delivery(fast, 9, "push"),
            ],
            9,
        )
        .await
        .unwrap();
    let later = Utc::now() + chrono::Duration::seconds(60);
    let due = stores.webhooks.due_deliveries(later, 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.webhook_id, d.event_id))
            .collect::<Vec<_>>(),
        [(slow, 8), (fast, 8)]
    );
    let (slow_first, fast_first) = (due[0].clone(), due[1].clone());
    let expected = slow_first.next_attempt_at.unwrap();

    // A sender claims one; a second claim of the same due time fails.
    assert!(
        stores
            .webhooks
            .claim_delivery(slow_first.id, expected, later)
            .await
            .unwrap()
    );
    assert!(
        !stores
            .webhooks
            .claim_delivery(slow_first.id, expected, later)
            .await
            .unwrap()
    );
    let now = Utc::now();
    assert_eq!(
        stores
            .webhooks
            .due_deliveries(now, 10)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        [fast_first.id]
    );

    // The slow one fails and waits; the fast one is delivered and its next is due. Order
    // holds: the slow subscription's second delivery waits behind its first.
    let retry_at = now + chrono::Duration::seconds(30);
    stores
        .webhooks
        .record_attempt(
            &attempt(slow_first.id, 1, 500),
            DeliveryState::Pending,
            Some(retry_at),
        )
        .await
        .unwrap();
    stores
        .webhooks
        .record_attempt(
            &attempt(fast_first.id, 1, 204),
            DeliveryState::Delivered,
            None,
        )
        .await
        .unwrap();
    let due = stores.webhooks.due_deliveries(now, 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.webhook_id, d.event_id))
            .collect::<Vec<_>>(),
        [(fast, 9)]
    );
    assert_eq!(
        stores
            .webhooks
            .next_due()
            .await
            .unwrap()
            .map(|t| t.timestamp_millis()),
        Some(due[0].next_attempt_at.unwrap().timestamp_millis())
    );
    stores
        .webhooks
        .record_attempt(&attempt(due[0].id, 1, 200), DeliveryState::Delivered, None)
        .await
        .unwrap();
    assert_eq!(
        stores
            .webhooks
            .next_due()
            .await
            .unwrap()
            .map(|t| t.timestamp_millis()),
        Some(retry_at.timestamp_millis())
    );

    // A second failure, then the last attempt gives up: the next delivery's turn.
    stores
        .webhooks
        .record_attempt(&attempt(slow_first.id, 2, 502), DeliveryState::Failed, None)
        .await
        .unwrap();
    let due = stores.webhooks.due_deliveries(later, 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.webhook_id, d.event_id))
            .collect::<Vec<_>>(),
        [(slow, 9)]
    );
    let log = stores.webhooks.deliveries(slow, 10).await.unwrap();
    assert_eq!(log[0].0.event_id, 9);
    let (failed, attempts) = &log[1];
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(failed.attempts, 2);
    assert_eq!(failed.next_attempt_at, None);
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.number, a.status_code))
            .collect::<Vec<_>>(),
        [(1, Some(500)), (2, Some(502))]
    );
    assert_eq!(attempts[0], attempt(slow_first.id, 1, 500));
    assert_eq!(stores.webhooks.deliveries(slow, 1).await.unwrap().len(), 1);

    // An attempt at a delivery deleted meanwhile is dropped quietly.
    stores
        .webhooks
        .delete_webhook("team", "slow")
        .await
        .unwrap();
    stores
        .webhooks
        .record_attempt(
            &attempt(slow_first.id, 3, 200),
            DeliveryState::Delivered,
            None,
        )
        .await
        .unwrap();
}

pub async fn a_finished_delivery_is_sent_again_as_a_new_one(stores: &Stores) {
    with_namespaces(stores).await;
    let ci = subscribe(stores, "team", "ci").await;
    let cd = subscribe(stores, "team", "cd").await;
    stores
        .webhooks
        .add_deliveries(&[delivery(ci, 8, "push")], 8)
        .await
        .unwrap();
    let first = stores.webhooks.deliveries(ci, 10).await.unwrap()[0]
        .0
        .clone();
    let now = at(100);

    // Pending: it goes out anyway. Another subscription's, or none: not found.
    assert_eq!(
        stores.webhooks.redeliver(ci, first.id, now).await.unwrap(),
        Redelivery::Pending
    );
    assert_eq!(
        stores.webhooks.redeliver(cd, first.id, now).await.unwrap(),
        Redelivery::NotFound
    );
    assert_eq!(
        stores
            .webhooks
            .redeliver(ci, first.id + 100, now)
            .await
            .unwrap(),
        Redelivery::NotFound
    );

    stores
        .webhooks
        .record_attempt(&attempt(first.id, 1, 500), DeliveryState::Failed, None)
        .await
        .unwrap();
    let Redelivery::Made(again) = stores.webhooks.redeliver(ci, first.id, now).await.unwrap()
    else {
        panic!("not made");
    };
    assert!(again.id > first.id);
    assert_eq!(
        again,
        DeliveryRecord {
            id: again.id,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            created_at: now,
            redelivery_of: Some(first.id),
            ..first.clone()
        }
    );
    assert_eq!(again.body, first.body);
    // Due now, as any new delivery; the log's own dedup does not swallow it, nor does it
    // stop the log's.
    assert_eq!(
        stores
            .webhooks
            .due_deliveries(at(100), 10)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        [again.id]
    );
    stores
        .webhooks
        .add_deliveries(&[delivery(ci, 8, "push"), delivery(ci, 9, "push")], 9)
        .await
        .unwrap();
    let log = stores.webhooks.deliveries(ci, 10).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|(d, a)| (d.event_id, d.state, d.redelivery_of, a.len()))
            .collect::<Vec<_>>(),
        [
            (9, DeliveryState::Pending, None, 0),
            (8, DeliveryState::Pending, Some(first.id), 0),
            (8, DeliveryState::Failed, None, 1),
        ]
    );

    // Delivered ones too, and a redelivery itself once it is finished.
    stores
        .webhooks
        .record_attempt(&attempt(again.id, 1, 204), DeliveryState::Delivered, None)
        .await
        .unwrap();
    let Redelivery::Made(third) = stores.webhooks.redeliver(ci, again.id, now).await.unwrap()
    else {
        panic!("not made");
    };
    assert_eq!(third.redelivery_of, Some(again.id));
    assert_eq!(third.event_id, 8);
}

pub async fn a_subscription_is_changed_and_a_disabled_one_sends_nothing(stores: &Stores) {
    with_namespaces(stores).await;
    let ci = subscribe(stores, "team", "ci").await;
    let before = stores.webhooks.webhook_by_id(ci).await.unwrap().unwrap();
    assert_eq!(
        stores
            .webhooks
            .change_webhook("team", "ghost", &WebhookChange::default())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .webhooks
            .change_webhook("other", "ci", &WebhookChange::default())
            .await
            .unwrap(),
        None,
        "another namespace's name"
    );
    // Only what is given changes.
    let changed = stores
        .webhooks
        .change_webhook(
            "team",
            "ci",
            &WebhookChange {
                url: Some("http://127.0.0.1:9/moved".into()),
                events: Some(vec!["delete".into()]),
                ..WebhookChange::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        changed,
        WebhookRecord {
            url: "http://127.0.0.1:9/moved".into(),
            events: vec!["delete".into()],
            ..before.clone()
        }
    );
    let changed = stores
        .webhooks
        .change_webhook(
            "team",
            "ci",
            &WebhookChange {
                format: Some("cloudevents".into()),
                secret: Some((vec![2; 24], b"resealed".to_vec())),
                ..WebhookChange::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            changed.format.as_str(),
            changed.secret_nonce.as_slice(),
            changed.secret_ciphertext.as_slice(),
            changed.url.as_str()
        ),
        (
            "cloudevents",
            [2u8; 24].as_slice(),
            b"resealed".as_slice(),
            "http://127.0.0.1:9/moved"
        )
    );
    assert_eq!(
        stores.webhooks.webhook("team", "ci").await.unwrap(),
        Some(changed.clone())
    );

    // Disabled: its pending delivery waits, and is not due; others go on.
    let cd = subscribe(stores, "team", "cd").await;
    stores
        .webhooks
        .add_deliveries(&[delivery(ci, 8, "push"), delivery(cd, 8, "push")], 8)
        .await
        .unwrap();
    let disable = WebhookChange {
        disabled: Some(true),
        ..WebhookChange::default()
    };
    let disabled = stores
        .webhooks
        .change_webhook("team", "ci", &disable)
        .await
        .unwrap()
        .unwrap();
    assert!(disabled.disabled);
    assert_eq!(disabled.since_event, before.since_event);
    let later = Utc::now() + chrono::Duration::seconds(60);
    let due: Vec<i64> = stores
        .webhooks
        .due_deliveries(later, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.webhook_id)
        .collect();
    assert_eq!(due, [cd]);
    // Disabling twice changes nothing.
    assert_eq!(
        stores
            .webhooks
            .change_webhook("team", "ci", &disable)
            .await
            .unwrap(),
        Some(disabled.clone())
    );

    // Enabled again: it starts after the newest event, as a new subscription does, and what
    // it had pending is due again.
    stores
        .streams
        .create_namespace("later", &Labels::new(), &Labels::new())
        .await
        .unwrap()
        .unwrap();
    let newest = stores.streams.latest_event_id().await.unwrap();
    assert!(newest > disabled.since_event);
    let enabled = stores
        .webhooks
        .change_webhook(
            "team",
            "ci",
            &WebhookChange {
                disabled: Some(false),
                ..WebhookChange::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!enabled.disabled);
    assert_eq!(enabled.since_event, newest);
    let mut due: Vec<i64> = stores
        .webhooks
        .due_deliveries(later, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.webhook_id)
        .collect();
    due.sort_unstable();
    assert_eq!(due, [ci, cd]);
    assert!(stores.webhooks.next_due().await.unwrap().is_some());
}

pub async fn test_deliveries_are_made_by_hand_any_number_of_times(stores: &Stores) {
    with_namespaces(stores).await;
    let ci = subscribe(stores, "team", "ci").await;
    stores
        .webhooks
        .add_deliveries(&[delivery(ci, 8, "push")], 8)
        .await
        .unwrap();
    let ping = NewDelivery {
        event: "ping".into(),
        ..delivery(ci, 0, "ping")
    };
    let now = at(50);
    let first = stores.webhooks.add_test_delivery(&ping, now).await.unwrap();
    assert_eq!(
        first,
        DeliveryRecord {
            id: first.id,
            webhook_id: ci,
            event_id: 0,
            event: "ping".into(),
            content_type: ping.content_type.clone(),
            body: ping.body.clone(),
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            created_at: now,
            redelivery_of: None,
        }
    );
    let second = stores.webhooks.add_test_delivery(&ping, now).await.unwrap();
    assert!(second.id > first.id);
    // Behind the subscription's older pending delivery, as any other.
    let due = stores.webhooks.due_deliveries(at(60), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event_id, 8);
    let log = stores.webhooks.deliveries(ci, 10).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|(d, _)| (d.event_id, d.event.as_str()))
            .collect::<Vec<_>>(),
        [(0, "ping"), (0, "ping"), (8, "push")]
    );
    // A finished one is sent again like any other; the log's own dedup is untouched.
    stores
        .webhooks
        .record_attempt(&attempt(first.id, 1, 200), DeliveryState::Delivered, None)
        .await
        .unwrap();
    assert!(matches!(
        stores.webhooks.redeliver(ci, first.id, now).await.unwrap(),
        Redelivery::Made(_)
    ));
    stores
        .webhooks
        .add_deliveries(&[delivery(ci, 8, "push")], 8)
        .await
        .unwrap();
    assert_eq!(stores.webhooks.deliveries(ci, 10).await.unwrap().len(), 4);
    assert!(
        stores
            .webhooks
            .add_test_delivery(&delivery(ci + 1000, 0, "ping"), now)
            .await
            .is_err(),
        "no such subscription"
    );
}

pub async fn attempts_keep_the_start_of_the_answer_bounded(stores: &Stores) {
    with_namespaces(stores).await;
    let ci = subscribe(stores, "team", "ci").await;
    stores
        .webhooks
        .add_deliveries(&[delivery(ci, 8, "push")], 8)
        .await
        .unwrap();
    let id = stores.webhooks.deliveries(ci, 1).await.unwrap()[0].0.id;
    let short = AttemptRecord {
        response_body: Some("{\"accepted\":false}".into()),
        ..attempt(id, 1, 500)
    };
    stores
        .webhooks
        .record_attempt(&short, DeliveryState::Pending, Some(at(10)))
        .await
        .unwrap();
    // Whoever records more than the limit, the store keeps the limit, marked as cut.
    let long = AttemptRecord {
        response_body: Some("é".repeat(MAX_RESPONSE_BODY)),
        ..attempt(id, 2, 200)
    };
    stores
        .webhooks
        .record_attempt(&long, DeliveryState::Delivered, None)
        .await
        .unwrap();
    let log = stores.webhooks.deliveries(ci, 1).await.unwrap();
    let attempts = &log[0].1;
    assert_eq!(attempts[0], short);
    let kept = attempts[1].response_body.as_deref().unwrap();
    assert_eq!(kept, "é".repeat(MAX_RESPONSE_BODY / 2));
    assert!(attempts[1].response_truncated);
    assert!(!attempts[0].response_truncated);
    // They go with their delivery when it expires.
    assert_eq!(
        stores
            .webhooks
            .delete_finished_deliveries(Utc::now() + chrono::Duration::seconds(1), 10)
            .await
            .unwrap(),
        1
    );
    assert!(stores.webhooks.deliveries(ci, 1).await.unwrap().is_empty());
}

/// The access store's contract ([`AuthStore`](super::auth::AuthStore)) as tests of one
/// backend's [`Stores`].
macro_rules! auth_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; audit_entries_past_retention_are_deleted, audit_entries_page_newest_first, users_are_made_once_by_name_with_their_groups, external_identities_map_to_users_by_method, one_identity_signing_in_twice_at_once_is_one_user, tokens_are_found_by_secret_and_revoked_by_their_owner, service_accounts_go_with_their_tokens_and_bindings, bindings_are_named_per_namespace_and_need_their_subject, a_namespace_is_made_once_with_its_admin, an_oauth_code_is_taken_once, a_server_secret_is_its_first_candidate);
    };
}
pub(crate) use auth_contract;

pub async fn audit_entries_past_retention_are_deleted(stores: &Stores) {
    for i in 0..3 {
        stores
            .auth
            .append_audit(&NewAudit {
                actor: format!("user{i}"),
                action: "login-password",
                target: "berth".into(),
                ..NewAudit::default()
            })
            .await
            .unwrap();
    }
    let a_minute_ago = Utc::now() - chrono::TimeDelta::minutes(1);
    assert_eq!(
        stores.auth.delete_audit_before(a_minute_ago).await.unwrap(),
        0
    );
    assert_eq!(stores.auth.list_audit(None, 10).await.unwrap().len(), 3);
    let later = Utc::now() + chrono::TimeDelta::seconds(1);
    assert_eq!(stores.auth.delete_audit_before(later).await.unwrap(), 3);
    assert!(stores.auth.list_audit(None, 10).await.unwrap().is_empty());
}

pub async fn audit_entries_page_newest_first(stores: &Stores) {
    for (i, success) in [(0, true), (1, false), (2, true)] {
        stores
            .auth
            .append_audit(&NewAudit {
                actor: format!("user{i}"),
                action: "token-create",
                target: format!("token{i}"),
                success,
                address: Some("192.0.2.1".into()),
                detail: (i == 1).then(|| "expired".into()),
            })
            .await
            .unwrap();
    }
    let page = stores.auth.list_audit(None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(),
        ["user2", "user1"]
    );
    assert!(page[0].id > page[1].id);
    let failed = &page[1];
    assert_eq!(
        (
            failed.action.as_str(),
            failed.target.as_str(),
            failed.outcome.as_str(),
            failed.address.as_deref(),
            failed.detail.as_deref()
        ),
        (
            "token-create",
            "token1",
            "failure",
            Some("192.0.2.1"),
            Some("expired")
        )
    );
    assert_eq!(page[0].outcome, "success");
    let rest = stores.auth.list_audit(Some(failed.id), 2).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(),
        ["user0"]
    );
}

pub async fn users_are_made_once_by_name_with_their_groups(stores: &Stores) {
    let auth = stores.auth.as_ref();
    let ann = auth
        .create_user("ann", Some("hash-a"), "htpasswd", Some("Ann A"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            ann.name.as_str(),
            ann.password_hash.as_deref(),
            ann.identity_provider.as_str(),
            ann.full_name.as_deref(),
            ann.disabled
        ),
        ("ann", Some("hash-a"), "htpasswd", Some("Ann A"), false)
    );
    assert!(ann.groups.is_empty());
    // A name is taken once.
    assert_eq!(
        auth.create_user("ann", None, "oidc:https://idp", None)
            .await
            .unwrap(),
        None
    );
    let bob = auth
        .create_user("bob", None, "htpasswd", None)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(ann.uid, bob.uid);
    assert_eq!(auth.user("ann").await.unwrap(), Some(ann.clone()));
    assert_eq!(auth.user_by_id(bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(auth.user("nobody").await.unwrap(), None);
    assert_eq!(auth.count_users().await.unwrap(), 2);
    assert!(auth.set_password("ann", "hash-b").await.unwrap());
    assert!(!auth.set_password("nobody", "hash-b").await.unwrap());
    assert_eq!(
        auth.user("ann").await.unwrap().unwrap().password_hash,
        Some("hash-b".into())
    );

    // Groups are made by their first member; a member is added once.
    assert!(auth.add_group_member("devs", "bob").await.unwrap());
    assert!(auth.add_group_member("devs", "ann").await.unwrap());
    assert!(!auth.add_group_member("devs", "ann").await.unwrap());
    assert!(auth.add_group_member("admins", "ann").await.unwrap());
    assert!(!auth.add_group_member("devs", "nobody").await.unwrap());
    assert_eq!(
        auth.user("ann").await.unwrap().unwrap().groups,
        ["admins", "devs"]
    );
    let groups = auth.list_groups().await.unwrap();
    assert_eq!(
        groups
            .iter()
            .map(|g| (g.name.as_str(), g.members.clone()))
            .collect::<Vec<_>>(),
        [
            ("admins", vec!["ann".to_string()]),
            ("devs", vec!["ann".to_string(), "bob".to_string()])
        ]
    );
    assert!(auth.remove_group_member("admins", "ann").await.unwrap());
    assert!(!auth.remove_group_member("admins", "ann").await.unwrap());
    assert!(!auth.remove_group_member("nothing", "ann").await.unwrap());
    // A group without members is still listed.
    let groups = auth.list_groups().await.unwrap();
    assert_eq!(groups[0].name, "admins");
    assert!(groups[0].members.is_empty());
    assert_eq!(
        auth.list_users()
            .await
            .unwrap()
            .iter()
            .map(|u| (u.name.as_str(), u.groups.clone()))
            .collect::<Vec<_>>(),
        [
            ("ann", vec!["devs".to_string()]),
            ("bob", vec!["devs".to_string()])
        ]
    );
}

const PROVIDER: &str = "oidc:https://idp.example";

fn external<'a>(subject: &'a str, name: &'a str, groups: &'a [String]) -> ExternalIdentity<'a> {
    ExternalIdentity {
        provider: PROVIDER,
        subject,
        preferred_name: name,
        full_name: Some("From The Provider"),
        groups,
    }
}

async fn mapped(
    stores: &Stores,
    identity: &ExternalIdentity<'_>,
    method: MappingMethod,
) -> UserRecord {
    match stores.auth.map_identity(identity, method).await.unwrap() {
        IdentityMapping::Mapped(user) => user,
        other => panic!("{} as {}: {other:?}", identity.subject, method.as_str()),
    }
}

pub async fn external_identities_map_to_users_by_method(stores: &Stores) {
    let auth = stores.auth.as_ref();
    let claimed = ["ops".to_string(), "devs".to_string()];
    // Lookup: only identities linked beforehand.
    assert_eq!(
        auth.map_identity(&external("s-1", "carol", &claimed), MappingMethod::Lookup)
            .await
            .unwrap(),
        IdentityMapping::NotMapped
    );
    assert_eq!(auth.user("carol").await.unwrap(), None);

    // Claim: a new user of the provider, with the claimed groups and name.
    let carol = mapped(
        stores,
        &external("s-1", "carol", &claimed),
        MappingMethod::Claim,
    )
    .await;
    assert_eq!(
        (
            carol.name.as_str(),
            carol.identity_provider.as_str(),
            carol.password_hash.as_deref(),
            carol.full_name.as_deref()
        ),
        ("carol", PROVIDER, None, Some("From The Provider"))
    );
    assert_eq!(carol.groups, ["devs", "ops"]);
    // The same identity again is the same user, whatever name it suggests now; its claims are
    // replaced, a full name it no longer sends is kept, and local groups add to the claimed.
    auth.add_group_member("devs", "carol").await.unwrap();
    auth.add_group_member("local", "carol").await.unwrap();
    let fewer = ["devs".to_string()];
    let again = mapped(
        stores,
        &ExternalIdentity {
            full_name: None,
            ..external("s-1", "carol2", &fewer)
        },
        MappingMethod::Lookup,
    )
    .await;
    assert_eq!((again.id, again.name.as_str()), (carol.id, "carol"));
    assert_eq!(again.full_name.as_deref(), Some("From The Provider"));
    assert_eq!(again.groups, ["devs", "local"]);
    assert_eq!(auth.user("carol2").await.unwrap(), None);

    // Claim refuses a name that is a user with a password, of another provider, or with an
    // identity already; it takes over a user of this provider from before identities were
    // kept (no password, no identity).
    auth.create_user("dave", Some("hash"), "htpasswd", None)
        .await
        .unwrap();
    auth.create_user("fay", None, "oidc:https://other.example", None)
        .await
        .unwrap();
    let erin = auth
        .create_user("erin", None, PROVIDER, None)
        .await
        .unwrap()
        .unwrap();
    for (subject, name) in [("s-2", "dave"), ("s-4", "fay"), ("s-5", "carol")] {
        assert_eq!(
            auth.map_identity(&external(subject, name, &[]), MappingMethod::Claim)
                .await
                .unwrap(),
            IdentityMapping::NameTaken,
            "{name}"
        );
    }
    assert_eq!(
        mapped(stores, &external("s-3", "erin", &[]), MappingMethod::Claim)
            .await
            .id,
        erin.id
    );
    // Add: the user of that name, whoever it is.
    let dave = mapped(stores, &external("s-2", "dave", &[]), MappingMethod::Add).await;
    assert_eq!(dave.password_hash.as_deref(), Some("hash"));
    assert_eq!(dave.identity_provider, "htpasswd");

    // Linked by hand, for lookup.
    assert_eq!(
        auth.link_identity(PROVIDER, "s-6", "fay").await.unwrap(),
        LinkOutcome::Linked
    );
    assert_eq!(
        auth.link_identity(PROVIDER, "s-6", "dave").await.unwrap(),
        LinkOutcome::Taken
    );
    assert_eq!(
        auth.link_identity(PROVIDER, "s-7", "nobody").await.unwrap(),
        LinkOutcome::NoSuchUser
    );
    assert_eq!(
        mapped(
            stores,
            &external("s-6", "anything", &[]),
            MappingMethod::Lookup
        )
        .await
        .name,
        "fay"
    );
    assert_eq!(
        auth.list_identities()
            .await
            .unwrap()
            .iter()
            .map(|i| (i.provider.as_str(), i.subject.as_str(), i.user.as_str()))
            .collect::<Vec<_>>(),
        [
            (PROVIDER, "s-1", "carol"),
            (PROVIDER, "s-2", "dave"),
            (PROVIDER, "s-3", "erin"),
            (PROVIDER, "s-6", "fay")
        ]
    );
}

pub async fn one_identity_signing_in_twice_at_once_is_one_user(stores: &Stores) {
    let identity = external("s-1", "gus", &[]);
    let (first, second) = tokio::join!(
        mapped(stores, &identity, MappingMethod::Claim),
        mapped(stores, &identity, MappingMethod::Claim)
    );
    assert_eq!(first.id, second.id);
    assert_eq!(stores.auth.count_users().await.unwrap(), 1);
    assert_eq!(stores.auth.list_identities().await.unwrap().len(), 1);
}

/// Namespaces made by the access store, as a first push makes them.
async fn access_namespaces(stores: &Stores, names: &[&str]) {
    for name in names {
        assert!(
            stores
                .auth
                .create_namespace_with_admin(name, None)
                .await
                .unwrap()
        );
    }
}

pub async fn tokens_are_found_by_secret_and_revoked_by_their_owner(stores: &Stores) {
    let auth = stores.auth.as_ref();
    access_namespaces(stores, &["team"]).await;
    let ann = auth
        .create_user("ann", None, "htpasswd", None)
        .await
        .unwrap()
        .unwrap();
    let robot = auth
        .create_service_account("team", "robot")
        .await
        .unwrap()
        .unwrap();
    let as_ann = TokenOwner::User(ann.id);
    let as_robot = TokenOwner::ServiceAccount(robot.id);
    let in_an_hour = Utc::now() + chrono::TimeDelta::hours(1);
    let laptop = auth
        .create_token(TokenKind::Personal, &as_ann, "laptop", "hash-1", None)
        .await
        .unwrap();
    let ci = auth
        .create_token(
            TokenKind::Personal,
            &as_ann,
            "ci",
            "hash-2",
            Some(in_an_hour),
        )
        .await
        .unwrap();
    auth.create_token(
        TokenKind::OAuth,
        &as_ann,
        "console",
        "hash-3",
        Some(in_an_hour),
    )
    .await
    .unwrap();
    let deploy = auth
        .create_token(
            TokenKind::ServiceAccount,
            &as_robot,
            "deploy",
            "hash-4",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (laptop.name.as_str(), laptop.kind, &laptop.owner),
        ("laptop", TokenKind::Personal, &as_ann)
    );
    assert_eq!(
        ci.expires_at.map(|t| t.timestamp()),
        Some(in_an_hour.timestamp())
    );
    assert!(laptop.is_valid_at(Utc::now()) && laptop.last_used_at.is_none());

    assert_eq!(
        auth.find_token("hash-1").await.unwrap(),
        Some((laptop.clone(), TokenIdentity::User(ann.clone())))
    );
    assert_eq!(
        auth.find_token("hash-4").await.unwrap(),
        Some((deploy.clone(), TokenIdentity::ServiceAccount(robot.clone())))
    );
    assert_eq!(auth.find_token("absent").await.unwrap(), None);
    // Listed newest first, without the console's own tokens.
    assert_eq!(
        auth.list_tokens(&as_ann)
            .await
            .unwrap()
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["ci", "laptop"]
    );
    assert_eq!(auth.list_tokens(&as_robot).await.unwrap(), [deploy]);

    // Revoked by its owner only, once; found still, and no longer valid.
    assert!(!auth.revoke_token(&as_robot, &laptop.uid).await.unwrap());
    assert!(auth.revoke_token(&as_ann, &laptop.uid).await.unwrap());
    assert!(!auth.revoke_token(&as_ann, &laptop.uid).await.unwrap());
    let (revoked, _) = auth.find_token("hash-1").await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(!revoked.is_valid_at(Utc::now()));

    auth.touch_token(ci.id, at(5)).await.unwrap();
    let (touched, _) = auth.find_token("hash-2").await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(at(5)));
    assert!(touched.is_valid_at(Utc::now()));
}

fn binding(
    name: &str,
    namespace: Option<&str>,
    role: &str,
    subject: (&str, &str, Option<&str>),
) -> BindingRecord {
    let (subject_kind, subject_name, subject_namespace) = subject;
    BindingRecord {
        name: name.into(),
        namespace: namespace.map(Into::into),
        stream: None,
        role: role.into(),
        subject_kind: subject_kind.into(),
        subject_name: subject_name.into(),
        subject_namespace: subject_namespace.map(Into::into),
        // Whole seconds: what is read back must equal what was written.
        created_at: at(0),
    }
}

fn binding_names(bindings: &[BindingRecord]) -> Vec<(Option<&str>, &str)> {
    bindings
        .iter()
        .map(|b| (b.namespace.as_deref(), b.name.as_str()))
        .collect()
}

pub async fn service_accounts_go_with_their_tokens_and_bindings(stores: &Stores) {
    let auth = stores.auth.as_ref();
    access_namespaces(stores, &["team", "other"]).await;
    let robot = auth
        .create_service_account("team", "robot")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        auth.create_service_account("team", "robot").await.unwrap(),
        None
    );
    auth.create_service_account("team", "builder")
        .await
        .unwrap()
        .unwrap();
    auth.create_service_account("other", "robot")
        .await
        .unwrap()
        .unwrap();
    assert!(auth.create_service_account("ghost", "robot").await.is_err());
    assert_eq!(
        auth.list_service_accounts("team")
            .await
            .unwrap()
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["builder", "robot"]
    );
    assert_eq!(
        auth.service_account("team", "robot").await.unwrap(),
        Some(robot.clone())
    );
    auth.create_token(
        TokenKind::ServiceAccount,
        &TokenOwner::ServiceAccount(robot.id),
        "deploy",
        "hash-r",
        None,
    )
    .await
    .unwrap();
    let robot_subject = ("ServiceAccount", "robot", Some("team"));
    for name in ["robot-here", "robot-there"] {
        let namespace = if name == "robot-here" {
            "team"
        } else {
            "other"
        };
        auth.create_binding(&binding(name, Some(namespace), "editor", robot_subject))
            .await
            .unwrap()
            .unwrap();
    }

    assert!(auth.delete_service_account("team", "robot").await.unwrap());
    assert!(!auth.delete_service_account("team", "robot").await.unwrap());
    assert_eq!(auth.find_token("hash-r").await.unwrap(), None);
    assert!(binding_names(&auth.list_all_bindings().await.unwrap()).is_empty());
    // One made again under the same name starts with nothing.
    let again = auth
        .create_service_account("team", "robot")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(again.uid, robot.uid);
    assert!(auth.list_all_bindings().await.unwrap().is_empty());
    assert_eq!(
        auth.list_tokens(&TokenOwner::ServiceAccount(again.id))
            .await
            .unwrap(),
        []
    );
}

pub async fn bindings_are_named_per_namespace_and_need_their_subject(stores: &Stores) {
    let auth = stores.auth.as_ref();
    access_namespaces(stores, &["team", "other"]).await;
    let cluster = binding("admins", None, "cluster-admin", ("Group", "admins", None));
    assert_eq!(
        auth.create_binding(&cluster).await.unwrap(),
        Some(cluster.clone())
    );
    // A name is taken once registry-wide, and once per namespace.
    let ann = ("User", "ann", None);
    assert_eq!(
        auth.create_binding(&binding("admins", None, "viewer", ann))
            .await
            .unwrap(),
        None
    );
    let team_admins = binding("admins", Some("team"), "admin", ann);
    assert_eq!(
        auth.create_binding(&team_admins).await.unwrap(),
        Some(team_admins.clone())
    );
    assert_eq!(
        auth.create_binding(&binding("admins", Some("team"), "viewer", ann))
            .await
            .unwrap(),
        None
    );
    let pull = BindingRecord {
        stream: Some("app".into()),
        ..binding("pull", Some("team"), "viewer", ("User", "bob", None))
    };
    auth.create_binding(&pull).await.unwrap().unwrap();
    assert!(
        auth.create_binding(&binding("pull", Some("ghost"), "viewer", ann))
            .await
            .is_err()
    );

    // A service account, or the group of a namespace's accounts, must exist to be bound.
    let robot = ("ServiceAccount", "robot", Some("team"));
    assert_eq!(
        auth.create_binding(&binding("robot", Some("other"), "editor", robot))
            .await
            .unwrap(),
        None
    );
    auth.create_service_account("team", "robot").await.unwrap();
    auth.create_binding(&binding("robot", Some("other"), "editor", robot))
        .await
        .unwrap()
        .unwrap();
    let team_accounts = ("Group", "system:serviceaccounts:team", None);
    auth.create_binding(&binding(
        "team-accounts",
        Some("other"),
        "viewer",
        team_accounts,
    ))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        auth.create_binding(&binding(
            "ghost-accounts",
            Some("other"),
            "viewer",
            ("Group", "system:serviceaccounts:ghost", None)
        ))
        .await
        .unwrap(),
        None
    );

    assert_eq!(auth.list_bindings(None).await.unwrap(), [cluster]);
    assert_eq!(
        auth.list_bindings(Some("team")).await.unwrap(),
        [team_admins, pull]
    );
    // Registry-wide first, then by namespace and name.
    assert_eq!(
        binding_names(&auth.list_all_bindings().await.unwrap()),
        [
            (None, "admins"),
            (Some("other"), "robot"),
            (Some("other"), "team-accounts"),
            (Some("team"), "admins"),
            (Some("team"), "pull")
        ]
    );
    assert!(auth.delete_binding(Some("team"), "pull").await.unwrap());
    assert!(!auth.delete_binding(Some("team"), "pull").await.unwrap());
    assert!(!auth.delete_binding(None, "robot").await.unwrap());

    // A namespace takes its bindings, its accounts' and its accounts group's with it.
    assert!(stores.streams.delete_namespace("team").await.unwrap());
    assert_eq!(
        binding_names(&auth.list_all_bindings().await.unwrap()),
        [(None, "admins")]
    );
}

pub async fn a_namespace_is_made_once_with_its_admin(stores: &Stores) {
    let admin = binding("admin-ann", Some("team"), "admin", ("User", "ann", None));
    let (first, second) = tokio::join!(
        stores
            .auth
            .create_namespace_with_admin("team", Some(&admin)),
        stores
            .auth
            .create_namespace_with_admin("team", Some(&admin))
    );
    assert_eq!(
        [first.unwrap(), second.unwrap()]
            .iter()
            .filter(|made| **made)
            .count(),
        1
    );
    assert_eq!(
        stores.auth.list_bindings(Some("team")).await.unwrap(),
        [admin]
    );
    let namespace = stores.streams.get_namespace("team").await.unwrap().unwrap();
    assert_eq!(
        namespace.resource_version,
        stores.streams.latest_event_id().await.unwrap()
    );
    assert!(
        !stores
            .auth
            .create_namespace_with_admin("team", None)
            .await
            .unwrap()
    );
}

pub async fn an_oauth_code_is_taken_once(stores: &Stores) {
    let ann = stores
        .auth
        .create_user("ann", None, "htpasswd", None)
        .await
        .unwrap()
        .unwrap();
    // Whole seconds: what is read back must equal what was written.
    let soon = DateTime::from_timestamp(Utc::now().timestamp() + 600, 0).unwrap();
    let code = OAuthCode {
        client_id: "console".into(),
        redirect_uri: "http://127.0.0.1/callback".into(),
        user_id: ann.id,
        code_challenge: "challenge".into(),
        nonce: Some("nonce".into()),
        scope: "user:full".into(),
        expires_at: soon,
    };
    stores.auth.put_oauth_code("code-1", &code).await.unwrap();
    assert_eq!(
        stores.auth.take_oauth_code("code-1").await.unwrap(),
        Some(code.clone())
    );
    assert_eq!(stores.auth.take_oauth_code("code-1").await.unwrap(), None);
    assert_eq!(stores.auth.take_oauth_code("absent").await.unwrap(), None);
    // Codes long expired are of no use to anyone and are deleted.
    let stale = OAuthCode {
        expires_at: soon - chrono::TimeDelta::hours(3),
        nonce: None,
        ..code.clone()
    };
    stores.auth.put_oauth_code("code-2", &stale).await.unwrap();
    assert_eq!(stores.auth.take_oauth_code("code-2").await.unwrap(), None);
}

pub async fn a_server_secret_is_its_first_candidate(stores: &Stores) {
    let (first, second) = tokio::join!(
        stores.auth.server_secret("signing-key", b"one"),
        stores.auth.server_secret("signing-key", b"two")
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first, second);
    assert!(first == b"one" || first == b"two");
    assert_eq!(
        stores
            .auth
            .server_secret("signing-key", b"three")
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        stores
            .auth
            .server_secret("other-key", b"four")
            .await
            .unwrap(),
        b"four"
    );
}

pub async fn old_events_are_compacted_but_never_the_newest_or_unread_ones(stores: &Stores) {
    let log = stores.streams.as_ref();
    push_sized(stores, "ns/app", "v1", "first", 10, vec![]).await;
    push_sized(stores, "ns/app", "v1", "second", 20, vec![]).await;
    push_sized(stores, "ns/app", "v1", "third", 30, vec![]).await;
    let (oldest, newest) = (
        log.oldest_event_id().await.unwrap(),
        log.latest_event_id().await.unwrap(),
    );
    assert!(newest - oldest >= 3, "{oldest}..{newest}");
    let later = Utc::now() + chrono::Duration::seconds(1);
    // Nothing made before the cutoff, or nothing read yet: nothing goes.
    let earlier = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(log.compact_events(earlier, newest, 100).await.unwrap(), 0);
    assert_eq!(log.compact_events(later, oldest - 1, 100).await.unwrap(), 0);
    // Up to what was read, at most the limit, oldest first.
    assert_eq!(log.compact_events(later, oldest + 1, 1).await.unwrap(), 1);
    assert_eq!(log.oldest_event_id().await.unwrap(), oldest + 1);
    // Everything read and old: all but the newest.
    let left = log.compact_events(later, newest, 1000).await.unwrap();
    assert!(left >= 2, "{left}");
    assert_eq!(log.oldest_event_id().await.unwrap(), newest);
    assert_eq!(log.latest_event_id().await.unwrap(), newest);
    // Ids are never reused: the next event follows the newest.
    push_sized(stores, "ns/app", "v1", "fourth", 40, vec![]).await;
    assert!(log.latest_event_id().await.unwrap() > newest);
}

pub async fn a_push_moves_its_tag_with_history_and_logs_events_in_order(stores: &Stores) {
    let mut changes = stores.streams.changes();
    let before = stores.streams.latest_event_id().await.unwrap();
    let first = push_sized(stores, "ns/app", "v1", "first", 10, vec![]).await;
    let second = push_sized(stores, "ns/app", "v1", "second", 20, vec![]).await;
    // The same image again moves nothing.
    push_sized(stores, "ns/app", "v1", "second", 20, vec![]).await;
    assert!(changes.has_changed().unwrap());
    changes.mark_unchanged();

    let stream = stores
        .streams
        .get_stream("ns", "app")
        .await
        .unwrap()
        .unwrap();
    let history: Vec<Option<Digest>> = stream
        .status_tag("v1")
        .unwrap()
        .items
        .iter()
        .map(|item| item.digest.clone())
        .collect();
    // Newest first.
    assert_eq!(history, [Some(second.clone()), Some(first.clone())]);

    let filter = EventFilter {
        kind: Some(EventKind::ImageStream),
        namespace: Some("ns".into()),
        name: Some("app".into()),
    };
    let (events, read_to) = stores
        .streams
        .events_after(before, &filter, 100)
        .await
        .unwrap();
    assert_eq!(read_to, stores.streams.latest_event_id().await.unwrap());
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    let moves: Vec<(Option<String>, Option<String>)> = events
        .iter()
        .filter(|e| e.tag.as_deref() == Some("v1"))
        .map(|e| (e.old_image.clone(), e.new_image.clone()))
        .collect();
    assert_eq!(
        moves,
        [
            (None, Some(first.to_string())),
            (Some(first.to_string()), Some(second.to_string())),
        ]
    );
    // Read from the last event on, the log has nothing more for this stream.
    let (after, _) = stores
        .streams
        .events_after(read_to, &filter, 100)
        .await
        .unwrap();
    assert!(after.is_empty());
}

// ---- coordination between replicas ------------------------------------------------------------

/// Makes each named check of two replicas a test of one backend: `$open` is a future of (what
/// the test keeps alive, one replica's [`Stores`], another replica's on the same database).
macro_rules! replica_checks {
    ($open:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (_kept, a, b) = $open.await;
                $crate::storage::contract::$check(&a, &b).await;
            }
        )+
    };
}
pub(crate) use replica_checks;

/// The coordination contract ([`coordination::Notifier`], [`coordination::LeaseStore`],
/// [`coordination::ThrottleStore`]) as tests of one backend with two replicas.
macro_rules! coordination_contract {
    ($open:expr) => {
        $crate::storage::contract::replica_checks!($open; a_message_reaches_every_subscriber_of_its_topic_on_every_replica, a_lease_is_one_replicas_until_released_or_expired, of_concurrent_takers_exactly_one_gets_a_lease, leased_work_runs_on_one_replica_and_moves_when_its_holder_dies, leased_work_stopped_at_shutdown_moves_at_once, work_is_stopped_when_its_lease_is_lost, throttle_updates_are_atomic_across_replicas_and_expired_rows_pruned);
    };
}
pub(crate) use coordination_contract;

/// The next notice within a second (the issue's bound for revocations), or `None`.
async fn notice_within_a_second(
    subscription: &mut coordination::Subscription,
) -> Option<coordination::Notice> {
    tokio::time::timeout(std::time::Duration::from_secs(1), subscription.next())
        .await
        .ok()
        .flatten()
}

pub async fn a_message_reaches_every_subscriber_of_its_topic_on_every_replica(
    a: &Stores,
    b: &Stores,
) {
    use coordination::{MAX_BODY, Notice, Topic};
    assert_ne!(a.notifier.replica(), b.notifier.replica());
    let mut on_a = a.notifier.subscribe(Topic::Bindings);
    let mut on_b = b.notifier.subscribe(Topic::Bindings);
    let mut other_topic = b.notifier.subscribe(Topic::Credentials);
    a.notifier
        .publish(Topic::Bindings, "changed")
        .await
        .unwrap();
    assert_eq!(
        notice_within_a_second(&mut on_a).await,
        Some(Notice::Message {
            own: true,
            body: "changed".into()
        })
    );
    assert_eq!(
        notice_within_a_second(&mut on_b).await,
        Some(Notice::Message {
            own: false,
            body: "changed".into()
        })
    );
    // Once each, and not on another topic.
    assert_eq!(on_b.try_next(), None);
    b.notifier
        .publish(Topic::Credentials, "token 7")
        .await
        .unwrap();
    assert_eq!(
        notice_within_a_second(&mut other_topic).await,
        Some(Notice::Message {
            own: true,
            body: "token 7".into()
        })
    );
    assert_eq!(on_a.try_next(), None);
    // In the order sent.
    for n in 0..20 {
        b.notifier
            .publish(Topic::Bindings, &n.to_string())
            .await
            .unwrap();
    }
    for n in 0..20 {
        assert_eq!(
            notice_within_a_second(&mut on_a).await,
            Some(Notice::Message {
                own: false,
                body: n.to_string()
            })
        );
    }
    // Messages say what changed; they carry nothing big.
    assert!(
        a.notifier
            .publish(Topic::Bindings, &"x".repeat(MAX_BODY + 1))
            .await
            .is_err()
    );
}

pub async fn a_lease_is_one_replicas_until_released_or_expired(a: &Stores, b: &Stores) {
    use std::time::Duration;
    let (ra, rb) = (a.notifier.replica(), b.notifier.replica());
    let long = Duration::from_secs(60);
    assert!(a.leases.acquire_lease("webhooks", &ra, long).await.unwrap());
    assert!(!b.leases.acquire_lease("webhooks", &rb, long).await.unwrap());
    assert!(!b.leases.renew_lease("webhooks", &rb, long).await.unwrap());
    assert!(!b.leases.release_lease("webhooks", &rb).await.unwrap());
    // Taking it again is renewing it.
    assert!(a.leases.acquire_lease("webhooks", &ra, long).await.unwrap());
    assert!(a.leases.renew_lease("webhooks", &ra, long).await.unwrap());
    assert_eq!(
        b.leases.lease_holder("webhooks").await.unwrap().as_deref(),
        Some(&*ra)
    );
    // Other names are other leases.
    assert!(b.leases.acquire_lease("imports", &rb, long).await.unwrap());
    // Released, the other replica takes it.
    assert!(a.leases.release_lease("webhooks", &ra).await.unwrap());
    assert_eq!(a.leases.lease_holder("webhooks").await.unwrap(), None);
    assert!(b.leases.acquire_lease("webhooks", &rb, long).await.unwrap());
    assert!(!a.leases.acquire_lease("webhooks", &ra, long).await.unwrap());

    // A holder that stops renewing loses it when it expires, and cannot renew it once taken.
    let short = Duration::from_millis(300);
    assert!(a.leases.acquire_lease("short", &ra, short).await.unwrap());
    assert!(!b.leases.acquire_lease("short", &rb, long).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.leases.lease_holder("short").await.unwrap(), None);
    assert!(b.leases.acquire_lease("short", &rb, long).await.unwrap());
    assert!(!a.leases.renew_lease("short", &ra, long).await.unwrap());
    assert!(!a.leases.release_lease("short", &ra).await.unwrap());

    // Leases expired longer ago than the grace are pruned; live ones stay.
    assert!(a.leases.acquire_lease("dead", &ra, short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        a.leases
            .prune_leases(Duration::from_secs(60))
            .await
            .unwrap(),
        0
    );
    assert_eq!(a.leases.prune_leases(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(
        a.leases.lease_holder("short").await.unwrap().as_deref(),
        Some(&*rb)
    );
}

pub async fn of_concurrent_takers_exactly_one_gets_a_lease(a: &Stores, b: &Stores) {
    use std::time::Duration;
    for round in 0..5 {
        let name = format!("race-{round}");
        let takers = (0..8).map(|i| {
            let stores = if i % 2 == 0 { a } else { b };
            let name = name.clone();
            async move {
                stores
                    .leases
                    .acquire_lease(&name, &format!("holder-{i}"), Duration::from_secs(60))
                    .await
                    .unwrap()
            }
        });
        let taken = futures_util::future::join_all(takers).await;
        assert_eq!(taken.iter().filter(|t| **t).count(), 1, "{taken:?}");
    }
}

pub async fn throttle_updates_are_atomic_across_replicas_and_expired_rows_pruned(
    a: &Stores,
    b: &Stores,
) {
    use coordination::ThrottleRow;
    let keys = vec!["k".to_owned(), "gone".to_owned()];
    let increments = (0..40).map(|i| {
        let stores = if i % 2 == 0 { a } else { b };
        let keys = &keys;
        async move {
            stores
                .throttle
                .update_throttle(
                    keys,
                    Box::new(|rows| {
                        let row = rows.entry("k".into()).or_insert(ThrottleRow {
                            at: 0,
                            expires: 1_000,
                        });
                        row.at += 1;
                        // A key the update did not name is not written.
                        rows.insert("unnamed".into(), ThrottleRow { at: 1, expires: 1 });
                    }),
                )
                .await
                .unwrap();
        }
    });
    futures_util::future::join_all(increments).await;
    let mut seen = None;
    b.throttle
        .update_throttle(
            &keys,
            Box::new(|rows| {
                seen = rows.get("k").copied();
                assert!(!rows.contains_key("gone"));
                rows.insert(
                    "gone".into(),
                    ThrottleRow {
                        at: 5,
                        expires: 3_000,
                    },
                );
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        seen,
        Some(ThrottleRow {
            at: 40,
            expires: 1_000
        })
    );
    assert_eq!(a.throttle.count_throttle().await.unwrap(), 2);
    // Removed from the map: deleted.
    a.throttle
        .update_throttle(
            &keys[1..],
            Box::new(|rows| {
                assert_eq!(rows.remove("gone").map(|r| r.at), Some(5));
            }),
        )
        .await
        .unwrap();
    assert_eq!(b.throttle.count_throttle().await.unwrap(), 1);
    assert_eq!(b.throttle.prune_throttle(999).await.unwrap(), 0);
    assert_eq!(b.throttle.prune_throttle(1_000).await.unwrap(), 1);
    assert_eq!(a.throttle.count_throttle().await.unwrap(), 0);
}

/// Counts the replicas running a job now (the most at once, and who ran it).
#[derive(Default)]
struct Runs {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    by: std::sync::Mutex<Vec<String>>,
}

/// Leaves [`Runs::now`] when the job is dropped.
struct Running(std::sync::Arc<Runs>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn counted_job(
    runs: std::sync::Arc<Runs>,
    replica: std::sync::Arc<str>,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + 'static {
    use std::sync::atomic::Ordering;
    move || {
        let (runs, replica) = (runs.clone(), replica.clone());
        Box::pin(async move {
            let now = runs.now.fetch_add(1, Ordering::SeqCst) + 1;
            runs.most.fetch_max(now, Ordering::SeqCst);
            runs.by.lock().unwrap().push(replica.to_string());
            let _running = Running(runs);
            std::future::pending::<()>().await
        })
    }
}

pub async fn leased_work_runs_on_one_replica_and_moves_when_its_holder_dies(
    a: &Stores,
    b: &Stores,
) {
    use coordination::LeaseTiming;
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    let timing = LeaseTiming {
        ttl: Duration::from_millis(500),
        renew_every: Duration::from_millis(100),
    };
    let runs = std::sync::Arc::new(Runs::default());
    let tasks: Vec<_> = [a, b]
        .iter()
        .map(|stores| {
            stores.coordination().spawn_leased(
                "job",
                timing,
                counted_job(runs.clone(), stores.notifier.replica()),
            )
        })
        .collect();
    // Several renewals later, one replica runs it, and only ever one did.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(runs.now.load(Ordering::SeqCst), 1);
    assert_eq!(runs.most.load(Ordering::SeqCst), 1);
    let first = runs.by.lock().unwrap().clone();
    assert_eq!(first.len(), 1, "{first:?}");
    // Its replica dies (stops renewing): the other takes over once the lease expired.
    let dead = if *first[0] == *a.notifier.replica() {
        0
    } else {
        1
    };
    tasks[dead].abort();
    let died = std::time::Instant::now();
    while runs.by.lock().unwrap().len() < 2 && died.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let by = runs.by.lock().unwrap().clone();
    assert_eq!(by.len(), 2, "the survivor did not take over: {by:?}");
    assert_ne!(by[0], by[1]);
    // Not before the dead holder's lease expired, and soon after.
    let took = died.elapsed();
    assert!(took <= timing.ttl + timing.renew_every * 4, "{took:?}");
    assert_eq!(runs.most.load(Ordering::SeqCst), 1);
    for task in tasks {
        task.abort();
    }
}

pub async fn leased_work_stopped_at_shutdown_moves_at_once(a: &Stores, b: &Stores) {
    use coordination::LeaseTiming;
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    // Leases long enough that only giving one up lets the other replica in within the test.
    let timing = LeaseTiming {
        ttl: Duration::from_secs(30),
        renew_every: Duration::from_millis(100),
    };
    let runs = std::sync::Arc::new(Runs::default());
    let (first, second) = (a.coordination(), b.coordination());
    first.spawn_leased(
        "job",
        timing,
        counted_job(runs.clone(), a.notifier.replica()),
    );
    let started = std::time::Instant::now();
    while runs.by.lock().unwrap().is_empty() && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    second.spawn_leased(
        "job",
        timing,
        counted_job(runs.clone(), b.notifier.replica()),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*runs.by.lock().unwrap(), [a.notifier.replica().to_string()]);
    // The first replica shuts down: its work stops and its lease goes at once.
    let stopping = std::time::Instant::now();
    first.stop().await;
    while runs.by.lock().unwrap().len() < 2 && stopping.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let by = runs.by.lock().unwrap().clone();
    assert_eq!(by.len(), 2, "the survivor did not take over: {by:?}");
    assert_eq!(by[1], *b.notifier.replica());
    assert_eq!(runs.most.load(Ordering::SeqCst), 1);
    // A stopped replica starts no more leased work.
    first.spawn_leased(
        "other",
        timing,
        counted_job(runs.clone(), a.notifier.replica()),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs.by.lock().unwrap().len(), 2);
    second.stop().await;
    assert_eq!(runs.now.load(Ordering::SeqCst), 0);
}

pub async fn work_is_stopped_when_its_lease_is_lost(a: &Stores, b: &Stores) {
    use coordination::{LeaseError, LeaseTiming, hold_lease};
    use std::time::Duration;
    let timing = LeaseTiming {
        ttl: Duration::from_millis(500),
        renew_every: Duration::from_millis(100),
    };
    let holder = a.notifier.replica();
    // Work that ends is done under the lease, which is given up after.
    let done = hold_lease(a.leases.as_ref(), "fetch", &holder, timing, async { 7 })
        .await
        .unwrap();
    assert_eq!(done, 7);
    assert_eq!(a.leases.lease_holder("fetch").await.unwrap(), None);
    // A lease held elsewhere is refused at once.
    assert!(
        b.leases
            .acquire_lease("fetch", &b.notifier.replica(), Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(matches!(
        hold_lease(a.leases.as_ref(), "fetch", &holder, timing, async {}).await,
        Err(LeaseError::Taken(_))
    ));
    assert!(
        b.leases
            .release_lease("fetch", &b.notifier.replica())
            .await
            .unwrap()
    );
    // Work whose lease goes to another (its holder could not renew in time) is stopped at the
    // next renewal.
    let leases = a.leases.clone();
    let work = tokio::spawn({
        let holder = holder.clone();
        async move {
            hold_lease(
                leases.as_ref(),
                "fetch",
                &holder,
                timing,
                std::future::pending::<()>(),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(a.leases.release_lease("fetch", &holder).await.unwrap());
    assert!(
        b.leases
            .acquire_lease("fetch", &b.notifier.replica(), Duration::from_secs(60))
            .await
            .unwrap()
    );
    let stopped = tokio::time::timeout(Duration::from_secs(1), work)
        .await
        .expect("the work was not stopped")
        .unwrap();
    assert!(matches!(stopped, Err(LeaseError::Lost(_))), "{stopped:?}");
}

/// Changes `writers` streams concurrently, `changes` times each, while a watcher reads the
/// events after the last id it saw, as watches and webhooks do: it must see every event once,
/// in order. A backend whose ids can become visible out of order (a later id committed before
/// an earlier one) makes the watcher skip the earlier one.
pub async fn a_watcher_sees_every_event_once_in_order_under_concurrent_writers(stores: &Stores) {
    const WRITERS: usize = 6;
    const CHANGES: usize = 15;
    let before = stores.streams.latest_event_id().await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let streams = stores.streams.clone();
            let metadata = stores.metadata.clone();
            tokio::spawn(async move {
                for change in 0..CHANGES {
                    if change % 3 == 0 {
                        // A push: its event is appended in the registry's transaction.
                        let content = format!("{{\"writer\":{writer},\"change\":{change}}}");
                        let manifest = manifest(&content, Vec::new(), None);
                        metadata
                            .put_manifest(
                                &repo(&format!("ns{writer}/app")),
                                &manifest,
                                Some(&"latest".parse().unwrap()),
                            )
                            .await
                            .unwrap();
                        continue;
                    }
                    let mut labels = Labels::new();
                    labels.insert("change".into(), change.to_string());
                    let mut stream_change = StreamChange::new(
                        repo(&format!("ns{writer}/app")),
                        Presence::Ensure,
                        "update",
                    );
                    stream_change.metadata = Some((labels, Labels::new()));
                    streams
                        .change_stream(&stream_change)
                        .await
                        .unwrap()
                        .unwrap();
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut last = before;
    let mut done = false;
    loop {
        let finished = writers.iter().all(|w| w.is_finished());
        let (events, read_to) = stores
            .streams
            .events_after(last, &EventFilter::default(), 1000)
            .await
            .unwrap();
        seen.extend(events.iter().map(|e| e.id));
        last = read_to;
        // One more read after every writer finished, to take the last events.
        if done {
            break;
        }
        done = finished;
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let (all, _) = stores
        .streams
        .events_after(before, &EventFilter::default(), 10_000)
        .await
        .unwrap();
    let all: Vec<i64> = all.iter().map(|e| e.id).collect();
    // Each stream's first change also made its namespace (an event of its own).
    assert!(all.len() >= WRITERS * CHANGES, "{} events", all.len());
    assert_eq!(seen, all, "the watcher saw {} of {}", seen.len(), all.len());
}

/// A TagReference as the image stream API stores it.
fn tag_reference(from_kind: &str, from_name: &str, extra: &str) -> String {
    format!("{{\"from\":{{\"kind\":\"{from_kind}\",\"name\":\"{from_name}\"}}{extra}}}")
}

pub async fn stream_changes_check_presence_and_version_and_raise_the_generation_on_spec_changes(
    stores: &Stores,
) {
    let streams = &stores.streams;
    let app = repo("ns/app");
    let mut update = StreamChange::new(app.clone(), Presence::Update, "update");
    update.lookup_local = Some(true);
    assert_eq!(
        streams.change_stream(&update).await.unwrap(),
        Err(StreamChangeError::NotFound)
    );

    let mut create = StreamChange::new(app.clone(), Presence::Create, "create");
    let mut labels = Labels::new();
    labels.insert("team".into(), "a".into());
    create.metadata = Some((labels.clone(), Labels::new()));
    let created = streams.change_stream(&create).await.unwrap().unwrap();
    assert_eq!((created.generation, created.labels), (1, labels));
    assert!(streams.get_namespace("ns").await.unwrap().is_some());
    assert_eq!(
        streams.change_stream(&create).await.unwrap(),
        Err(StreamChangeError::AlreadyExists)
    );

    // A spec change raises the generation; the written spec tag carries it, text as given.
    let reference = tag_reference("DockerImage", "example.com/app:1", "");
    let mut spec = StreamChange::new(app.clone(), Presence::Update, "tag");
    spec.expected_resource_version = Some(created.resource_version);
    spec.set_spec_tags.push(SpecTagWrite {
        name: "v1".into(),
        reference: reference.clone(),
        target: Some(TagTarget::External {
            reference: "example.com/app:1".into(),
            digest: None,
        }),
    });
    let tagged = streams.change_stream(&spec).await.unwrap().unwrap();
    assert_eq!(tagged.generation, 2);
    assert!(tagged.resource_version > created.resource_version);
    let spec_tag = tagged.spec_tag("v1").unwrap();
    assert_eq!(
        (spec_tag.reference.as_str(), spec_tag.generation),
        (reference.as_str(), 2)
    );
    let item = &tagged.status_tag("v1").unwrap().items[0];
    assert_eq!(
        (item.external_reference.as_deref(), item.generation),
        (Some("example.com/app:1"), 2)
    );
    // The same change at the old resourceVersion is refused.
    assert_eq!(
        streams.change_stream(&spec).await.unwrap(),
        Err(StreamChangeError::Conflict {
            current: tagged.resource_version
        })
    );

    // Conditions are set and cleared without touching the generation; clearing none is no
    // change (no event).
    let conditions = r#"[{"type":"ImportSuccess","status":"False"}]"#;
    let mut failed = StreamChange::new(app.clone(), Presence::Update, "import");
    failed
        .tag_conditions
        .push(("v2".into(), Some(conditions.into())));
    let with_conditions = streams.change_stream(&failed).await.unwrap().unwrap();
    assert_eq!(with_conditions.generation, 2);
    let v2 = with_conditions.status_tag("v2").unwrap();
    assert_eq!(
        (v2.items.len(), v2.conditions.as_deref()),
        (0, Some(conditions))
    );
    let mut cleared = StreamChange::new(app.clone(), Presence::Update, "import");
    cleared.tag_conditions.push(("v1".into(), None));
    let unchanged = streams.change_stream(&cleared).await.unwrap().unwrap();
    assert_eq!(unchanged.resource_version, with_conditions.resource_version);

    // Removing a spec tag is a spec change; removing a status-only tag is not.
    let mut untag = StreamChange::new(app.clone(), Presence::Update, "untag");
    untag.remove_tags.push("v2".into());
    assert_eq!(
        streams
            .change_stream(&untag)
            .await
            .unwrap()
            .unwrap()
            .generation,
        2
    );
    untag.remove_tags = vec!["v1".into()];
    let untagged = streams.change_stream(&untag).await.unwrap().unwrap();
    assert_eq!(untagged.generation, 3);
    assert!(untagged.spec_tags.is_empty() && untagged.status_tags.is_empty());
}

pub async fn tags_that_track_a_moved_tag_follow_it_and_images_link_across_streams(stores: &Stores) {
    let streams = &stores.streams;
    let app = repo("ns/app");
    // `latest` tracks `v1`; `pinned` names it by reference only and stays.
    let mut spec = StreamChange::new(app.clone(), Presence::Ensure, "tag");
    for (name, extra) in [("latest", ""), ("pinned", ",\"reference\":true")] {
        spec.set_spec_tags.push(SpecTagWrite {
            name: name.into(),
            reference: tag_reference("ImageStreamTag", "app:v1", extra),
            target: None,
        });
    }
    streams.change_stream(&spec).await.unwrap().unwrap();
    let first = push_sized(stores, "ns/app", "v1", "first", 10, vec![]).await;
    let second = push_sized(stores, "ns/app", "v1", "second", 20, vec![]).await;
    let stream = streams.get_stream("ns", "app").await.unwrap().unwrap();
    let latest: Vec<Option<Digest>> = stream
        .status_tag("latest")
        .unwrap()
        .items
        .iter()
        .map(|item| item.digest.clone())
        .collect();
    assert_eq!(latest, [Some(second.clone()), Some(first.clone())]);
    assert!(stream.status_tag("pinned").is_none());

    // Only the named tags, spec and status.
    let only = streams
        .get_stream_tags("ns", "app", &["latest".into()])
        .await
        .unwrap()
        .unwrap();
    let names: Vec<&str> = only.status_tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!((names, only.spec_tags.len()), (vec!["latest"], 1));
    assert_eq!(
        streams.list_stream_tags("ns", None, 10).await.unwrap(),
        [("app".into(), "latest".into()), ("app".into(), "v1".into())]
    );
    assert_eq!(
        streams
            .list_stream_tags("ns", Some(("app", "latest")), 10)
            .await
            .unwrap(),
        [("app".to_owned(), "v1".to_owned())]
    );

    // An image of another stream is linked into this one; a missing one is refused.
    let mut copy = StreamChange::new(repo("ns/copy"), Presence::Ensure, "tag");
    copy.move_tags.push((
        "v1".into(),
        TagTarget::Local {
            source: app.clone(),
            digest: first.clone(),
        },
    ));
    let copied = streams.change_stream(&copy).await.unwrap().unwrap();
    assert_eq!(
        copied.status_tag("v1").unwrap().items[0].digest,
        Some(first.clone())
    );
    assert!(
        streams
            .image_in_repository(&repo("ns/copy"), &first)
            .await
            .unwrap()
            .is_some()
    );
    let absent = Digest::sha256_of(b"absent");
    copy.move_tags = vec![(
        "v2".into(),
        TagTarget::Local {
            source: app.clone(),
            digest: absent.clone(),
        },
    )];
    assert_eq!(
        streams.change_stream(&copy).await.unwrap(),
        Err(StreamChangeError::SourceMissing {
            repository: "ns/app".into(),
            digest: absent.to_string(),
        })
    );

    let images = streams
        .get_images(&[first.clone(), absent.clone()])
        .await
        .unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].image.as_deref().map(json_size), Some(10));
    let listed: Vec<Digest> = streams
        .list_images(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|image| image.digest)
        .collect();
    let mut expected = vec![first, second];
    expected.sort_by_key(ToString::to_string);
    assert_eq!(listed, expected);
}

/// The `size` of an image's JSON.
fn json_size(image: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(image).unwrap()["size"]
        .as_u64()
        .unwrap()
}

pub async fn deletions_log_the_last_state_and_a_namespace_made_again_starts_clean(stores: &Stores) {
    let streams = &stores.streams;
    let mut spec = StreamChange::new(repo("ns/scheduled"), Presence::Ensure, "tag");
    spec.set_spec_tags.push(SpecTagWrite {
        name: "v1".into(),
        reference: tag_reference(
            "DockerImage",
            "example.com/app:1",
            ",\"importPolicy\":{\"scheduled\":true}",
        ),
        target: None,
    });
    streams.change_stream(&spec).await.unwrap().unwrap();
    let scheduled = streams.scheduled_imports().await.unwrap();
    assert_eq!(
        scheduled
            .iter()
            .map(|(repository, tag, _)| (repository.as_str(), tag.as_str()))
            .collect::<Vec<_>>(),
        [("ns/scheduled", "v1")]
    );
    push_sized(stores, "ns/app", "v1", "first", 10, vec![]).await;
    // A repository of the namespace that holds blobs only.
    stores
        .metadata
        .link_blob(&repo("ns/blobs"), &Digest::sha256_of(b"b"), 1)
        .await
        .unwrap();
    let before = streams.latest_event_id().await.unwrap();

    assert!(streams.delete_stream("ns", "scheduled").await.unwrap());
    assert!(!streams.delete_stream("ns", "scheduled").await.unwrap());
    assert!(streams.scheduled_imports().await.unwrap().is_empty());
    assert!(streams.delete_namespace("ns").await.unwrap());
    assert!(!streams.delete_namespace("ns").await.unwrap());
    assert!(
        !stores
            .metadata
            .repository_exists(&repo("ns/blobs"))
            .await
            .unwrap()
    );
    let (events, _) = streams
        .events_after(before, &EventFilter::default(), 100)
        .await
        .unwrap();
    let deleted: Vec<(EventKind, &str)> =
        events.iter().map(|e| (e.kind, e.name.as_str())).collect();
    assert_eq!(
        deleted,
        [
            (EventKind::ImageStream, "scheduled"),
            (EventKind::ImageStream, "app"),
            (EventKind::Namespace, "ns"),
        ]
    );
    assert!(events.iter().all(|e| e.event_type == EventType::Deleted));
    let last: StreamRecord = serde_json::from_str(events[1].object.as_deref().unwrap()).unwrap();
    assert_eq!(last.status_tag("v1").unwrap().items.len(), 1);

    // Made again, the namespace shows none of what happened in the deleted one.
    streams
        .create_namespace("ns", &Labels::new(), &Labels::new())
        .await
        .unwrap()
        .unwrap();
    let filter = EventFilter {
        namespace: Some("ns".into()),
        ..EventFilter::default()
    };
    let (events, _) = streams.events_after(0, &filter, 100).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::Added);
}

/// The content collection contract ([`sweep_unreferenced`] over a metadata store and a blob
/// store) as tests of one pair of backends.
macro_rules! collection_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; a_deleted_image_is_collected_after_the_grace_period_shared_layers_kept, an_upload_nothing_references_is_collected_and_a_claim_postpones_it, a_claim_waits_out_a_deletion_in_progress, a_collected_index_frees_its_children_in_the_same_sweep, pushes_mounts_and_uploads_racing_a_sweep_never_keep_a_link_without_bytes);
    };
}
pub(crate) use collection_contract;

/// Stores `bytes` as a blob linked in `repository`, as an upload's last request does: the
/// digest claimed, the bytes committed, the link made.
async fn store_blob(stores: &Stores, repository: &str, bytes: &'static [u8]) -> Digest {
    let digest = Digest::sha256_of(bytes);
    let id = UploadId::new();
    let hasher = Algorithm::Sha256.hasher();
    let (size, _) = stores
        .blobs
        .write_upload(id, 0, body(vec![bytes]), hasher)
        .await
        .unwrap();
    stores.metadata.claim_blob(&digest).await.unwrap();
    stores.blobs.commit_upload(id, size, &digest).await.unwrap();
    stores
        .metadata
        .link_blob(&repo(repository), &digest, size)
        .await
        .unwrap();
    digest
}

fn referenced(digest: &Digest, bytes: &[u8]) -> Referenced {
    Referenced {
        digest: digest.clone(),
        size: bytes.len() as u64,
    }
}

async fn sweep(stores: &Stores, grace: std::time::Duration) -> Swept {
    sweep_unreferenced(
        stores.metadata.as_ref(),
        stores.blobs.as_ref(),
        grace,
        &mut |_| {},
    )
    .await
    .unwrap()
}

/// Everything due now.
const NO_GRACE: std::time::Duration = std::time::Duration::ZERO;
const AN_HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

pub async fn a_deleted_image_is_collected_after_the_grace_period_shared_layers_kept(
    stores: &Stores,
) {
    let store = stores.metadata.as_ref();
    let (own, shared, config) = (
        b"own layer".as_slice(),
        b"shared layer".as_slice(),
        b"{}".as_slice(),
    );
    let own_digest = store_blob(stores, "ns/a", b"own layer").await;
    let shared_digest = store_blob(stores, "ns/a", b"shared layer").await;
    let config_digest = store_blob(stores, "ns/a", b"{}").await;
    let image = manifest(
        "{\"image\":\"a\"}",
        vec![
            referenced(&config_digest, config),
            referenced(&own_digest, own),
            referenced(&shared_digest, shared),
        ],
        None,
    );
    let tag: Tag = "v1".parse().unwrap();
    assert_eq!(
        store
            .put_manifest(&repo("ns/a"), &image, Some(&tag))
            .await
            .unwrap(),
        PutManifestOutcome::Stored
    );
    // Another repository's image shares a layer (mounted, as clients do).
    store
        .mount_blob(&repo("ns/a"), &repo("ns/b"), &shared_digest)
        .await
        .unwrap();
    store
        .mount_blob(&repo("ns/a"), &repo("ns/b"), &config_digest)
        .await
        .unwrap();
    let other = manifest(
        "{\"image\":\"b\"}",
        vec![
            referenced(&config_digest, config),
            referenced(&shared_digest, shared),
        ],
        None,
    );
    assert_eq!(
        store
            .put_manifest(&repo("ns/b"), &other, None)
            .await
            .unwrap(),
        PutManifestOutcome::Stored
    );
    // Everything referenced stays, whatever the grace.
    let swept = sweep(stores, NO_GRACE).await;
    assert_eq!((swept.manifests, swept.blobs), (0, 0));
    assert_eq!(store.review_queue_len().await.unwrap(), 0, "{swept:?}");

    assert!(
        store
            .delete_manifest(&repo("ns/a"), &image.digest)
            .await
            .unwrap()
    );
    assert!(store.review_queue_len().await.unwrap() > 0);
    // Within the grace period nothing goes.
    assert_eq!(sweep(stores, AN_HOUR).await, Swept::default());
    assert_eq!(
        store.blob_size(&repo("ns/a"), &own_digest).await.unwrap(),
        Some(9)
    );

    let swept = sweep(stores, NO_GRACE).await;
    assert_eq!(swept.manifests, 1, "{swept:?}");
    assert_eq!(
        swept.blobs, 1,
        "only the layer no other image has: {swept:?}"
    );
    assert_eq!(swept.bytes, own.len() as u64);
    assert_eq!(stores.blobs.stat(&own_digest).await.unwrap(), None);
    assert_eq!(
        store.blob_size(&repo("ns/a"), &own_digest).await.unwrap(),
        None
    );
    // ns/a's links of the shared blobs went (no image of ns/a references them); ns/b's stay.
    assert_eq!(
        store
            .blob_size(&repo("ns/a"), &shared_digest)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .blob_size(&repo("ns/b"), &shared_digest)
            .await
            .unwrap(),
        Some(shared.len() as u64)
    );
    assert_eq!(
        stores.blobs.stat(&shared_digest).await.unwrap(),
        Some(shared.len() as u64)
    );
    assert!(
        store
            .manifest_by_digest(&repo("ns/b"), &other.digest)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.review_queue_len().await.unwrap(), 0);
}

pub async fn an_upload_nothing_references_is_collected_and_a_claim_postpones_it(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let lone = store_blob(stores, "ns/a", b"never referenced").await;
    assert!(store.blob_under_review(&lone).await.unwrap());
    assert_eq!(sweep(stores, AN_HOUR).await, Swept::default());

    // Claimed again (another upload of the same bytes) a moment later: not due for a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    store.claim_blob(&lone).await.unwrap();
    let second = std::time::Duration::from_secs(1);
    assert_eq!(sweep(stores, second).await.blobs, 0);
    assert_eq!(
        store.blob_size(&repo("ns/a"), &lone).await.unwrap(),
        Some(16)
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let swept = sweep(stores, second).await;
    assert_eq!((swept.blobs, swept.bytes), (1, 16), "{swept:?}");
    assert_eq!(store.blob_size(&repo("ns/a"), &lone).await.unwrap(), None);
    assert_eq!(stores.blobs.stat(&lone).await.unwrap(), None);
    assert!(!store.blob_under_review(&lone).await.unwrap());
}

pub async fn a_claim_waits_out_a_deletion_in_progress(stores: &Stores) {
    let store = stores.metadata.clone();
    let digest = store_blob(stores, "ns/a", b"being deleted").await;
    assert!(store.unlink_blob(&repo("ns/a"), &digest).await.unwrap());
    // A review decides to collect it; its bytes are not deleted yet.
    assert_eq!(
        store.review_blob(&digest, NO_GRACE).await.unwrap(),
        BlobReview::Collect { size: Some(13) }
    );
    assert!(store.try_claim_blob(&digest).await.unwrap().is_some());
    let claim = tokio::spawn({
        let store = store.clone();
        let digest = digest.clone();
        async move { store.claim_blob(&digest).await.unwrap() }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !claim.is_finished(),
        "a writer waits while the bytes are deleted"
    );
    stores.blobs.delete(&digest).await.unwrap();
    store.blob_collected(&digest).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), claim)
        .await
        .unwrap()
        .unwrap();
    // The claim is fresh: a review within the grace period leaves the digest alone.
    assert_eq!(
        store.review_blob(&digest, AN_HOUR).await.unwrap(),
        BlobReview::NotDue
    );

    // A deletion left unfinished (a crash) is resumed by the next sweep.
    let other = store_blob(stores, "ns/a", b"left half deleted").await;
    assert!(store.unlink_blob(&repo("ns/a"), &other).await.unwrap());
    assert!(matches!(
        store.review_blob(&other, NO_GRACE).await.unwrap(),
        BlobReview::Collect { .. }
    ));
    let swept = sweep(stores, AN_HOUR).await;
    assert_eq!((swept.blobs, swept.bytes), (1, 17), "{swept:?}");
    assert_eq!(stores.blobs.stat(&other).await.unwrap(), None);
}

pub async fn a_collected_index_frees_its_children_in_the_same_sweep(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let layer = store_blob(stores, "ns/i", b"child layer").await;
    let child = manifest(
        "{\"child\":1}",
        vec![referenced(&layer, b"child layer")],
        None,
    );
    assert_eq!(
        store
            .put_manifest(&repo("ns/i"), &child, None)
            .await
            .unwrap(),
        PutManifestOutcome::Stored
    );
    let mut index = manifest("{\"index\":1}", vec![], None);
    index.media_type = "application/vnd.oci.image.index.v1+json".into();
    index.manifests = vec![Referenced {
        digest: child.digest.clone(),
        size: child.content.len() as u64,
    }];
    assert_eq!(
        store
            .put_manifest(&repo("ns/i"), &index, Some(&"latest".parse().unwrap()))
            .await
            .unwrap(),
        PutManifestOutcome::Stored
    );
    // Deleting the child alone: the index still refers to it, so it stays.
    assert!(
        store
            .delete_manifest(&repo("ns/i"), &child.digest)
            .await
            .unwrap()
    );
    let swept = sweep(stores, NO_GRACE).await;
    assert_eq!((swept.manifests, swept.blobs), (0, 0), "{swept:?}");
    assert_eq!(stores.blobs.stat(&layer).await.unwrap(), Some(11));

    assert!(
        store
            .delete_manifest(&repo("ns/i"), &index.digest)
            .await
            .unwrap()
    );
    let swept = sweep(stores, NO_GRACE).await;
    assert_eq!((swept.manifests, swept.blobs), (2, 1), "{swept:?}");
    assert_eq!(stores.blobs.stat(&layer).await.unwrap(), None);
    assert_eq!(store.review_queue_len().await.unwrap(), 0);
}

/// The races the issue names, run many times against a sweep that finds the blob due just as
/// the racer starts: a manifest push relying on a link, a mount from a repository whose link is
/// being removed, and an upload finishing. Whatever wins, a repository never ends up linking a
/// blob whose row or bytes are gone. (The grace period is short here; a claim protects a writer
/// for that long, so it must exceed the time from an upload's claim to its link, which is one
/// rename or one object copy.)
pub async fn pushes_mounts_and_uploads_racing_a_sweep_never_keep_a_link_without_bytes(
    stores: &Stores,
) {
    let store = stores.metadata.clone();
    let layer: &'static [u8] = b"raced layer";
    let digest = Digest::sha256_of(layer);
    let grace = std::time::Duration::from_millis(300);
    for round in 0..30 {
        // An image of ns/a with the layer, deleted: its link in ns/a is garbage now.
        store_blob(stores, "ns/a", layer).await;
        let old = manifest(
            &format!("{{\"old\":{round}}}"),
            vec![referenced(&digest, layer)],
            None,
        );
        store.put_manifest(&repo("ns/a"), &old, None).await.unwrap();
        store
            .delete_manifest(&repo("ns/a"), &old.digest)
            .await
            .unwrap();
        tokio::time::sleep(grace + std::time::Duration::from_millis(50)).await;

        let racer = {
            let store = store.clone();
            let blobs = stores.blobs.clone();
            let digest = digest.clone();
            tokio::spawn(async move {
                match round % 3 {
                    // A client that was told the blob exists pushes a manifest using it.
                    0 => {
                        if store.blob_under_review(&digest).await.unwrap() {
                            store.claim_blob(&digest).await.unwrap();
                        }
                        let new = manifest(
                            &format!("{{\"new\":{round}}}"),
                            vec![referenced(&digest, layer)],
                            None,
                        );
                        store.put_manifest(&repo("ns/a"), &new, None).await.unwrap()
                            == PutManifestOutcome::Stored
                    }
                    // A mount from ns/a into ns/c.
                    1 => store
                        .mount_blob(&repo("ns/a"), &repo("ns/c"), &digest)
                        .await
                        .unwrap()
                        .is_some(),
                    // An upload of the same bytes into ns/c finishing.
                    _ => {
                        let id = UploadId::new();
                        let (size, _) = blobs
                            .write_upload(id, 0, body(vec![layer]), Algorithm::Sha256.hasher())
                            .await
                            .unwrap();
                        store.claim_blob(&digest).await.unwrap();
                        blobs.commit_upload(id, size, &digest).await.unwrap();
                        store.link_blob(&repo("ns/c"), &digest, size).await.unwrap();
                        true
                    }
                }
            })
        };
        let swept = sweep(stores, grace).await;
        let linked = racer.await.unwrap();
        for repository in ["ns/a", "ns/c"] {
            if store
                .blob_size(&repo(repository), &digest)
                .await
                .unwrap()
                .is_some()
            {
                assert_eq!(
                    stores.blobs.stat(&digest).await.unwrap(),
                    Some(layer.len() as u64),
                    "round {round}: {repository} links a blob whose bytes are gone ({swept:?}, \
                     racer linked: {linked})"
                );
            }
        }
        // Clean up for the next round: everything unlinked and collected.
        for repository in ["ns/a", "ns/c"] {
            for manifest in [format!("{{\"new\":{round}}}")] {
                let digest = Digest::sha256_of(manifest.as_bytes());
                store
                    .delete_manifest(&repo(repository), &digest)
                    .await
                    .unwrap();
            }
            store.unlink_blob(&repo(repository), &digest).await.unwrap();
        }
        sweep(stores, NO_GRACE).await;
        assert_eq!(
            stores.blobs.stat(&digest).await.unwrap(),
            None,
            "round {round}"
        );
    }
}

// ---- pruning and retention (storage/lifecycle.rs) ----------------------------------------------

/// The pruning and retention contract ([`lifecycle::LifecycleStore`]) as tests of one backend.
macro_rules! lifecycle_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; the_inventory_lists_history_newest_first_with_push_and_pull_times, a_prune_step_removes_history_and_unheld_images_only, a_prune_step_leaves_an_immutable_tag_its_image, content_holders_name_every_link_of_a_blob, pruner_and_retention_objects_are_kept_and_go_with_their_namespace);
    };
}
pub(crate) use lifecycle_contract;

/// Pushes `{"seed":…}` referring to layer `layer` (linked first) into `repository` as `tag`
/// (none when empty), with `subject` and `children` (already in the repository).
async fn push_layered(
    stores: &Stores,
    repository: &str,
    tag: &str,
    seed: &str,
    layer: &[u8],
    subject: Option<Digest>,
    children: &[Digest],
) -> Digest {
    let repository: RepositoryName = repository.parse().unwrap();
    let layer_digest = Digest::sha256_of(layer);
    stores
        .metadata
        .link_blob(&repository, &layer_digest, layer.len() as u64)
        .await
        .unwrap();
    let mut new = manifest(
        &format!("{{\"seed\":\"{seed}\"}}"),
        vec![Referenced {
            digest: layer_digest,
            size: layer.len() as u64,
        }],
        subject,
    );
    for child in children {
        let stored = stores
            .metadata
            .manifest_by_digest(&repository, child)
            .await
            .unwrap()
            .unwrap();
        new.manifests.push(Referenced {
            digest: child.clone(),
            size: stored.content.len() as u64,
        });
    }
    let tag: Option<Tag> = (!tag.is_empty()).then(|| tag.parse().unwrap());
    assert_eq!(
        stores
            .metadata
            .put_manifest(&repository, &new, tag.as_ref())
            .await
            .unwrap(),
        PutManifestOutcome::Stored
    );
    new.digest
}

fn item_tags(inventory: &lifecycle::Inventory) -> Vec<(String, Option<Digest>)> {
    inventory
        .items
        .iter()
        .map(|item| (item.tag.clone(), item.digest.clone()))
        .collect()
}

pub async fn the_inventory_lists_history_newest_first_with_push_and_pull_times(stores: &Stores) {
    let store = stores.lifecycle.as_ref();
    let v1 = push_layered(stores, "team/app", "latest", "v1", b"one", None, &[]).await;
    let v2 = push_layered(stores, "team/app", "latest", "v2", b"two", None, &[]).await;
    let sig = push_layered(stores, "team/app", "", "sig", b"sig", Some(v2.clone()), &[]).await;
    let index = push_layered(
        stores,
        "team/app",
        "multi",
        "index",
        b"ix",
        None,
        std::slice::from_ref(&v1),
    )
    .await;
    push_layered(stores, "other/app", "latest", "o1", b"other", None, &[]).await;

    let inventory = store.inventory(Some("team")).await.unwrap();
    assert_eq!(inventory.streams.len(), 1);
    assert_eq!(inventory.streams[0].repository.as_str(), "team/app");
    assert_eq!(
        item_tags(&inventory),
        [
            ("latest".to_owned(), Some(v2.clone())),
            ("latest".to_owned(), Some(v1.clone())),
            ("multi".to_owned(), Some(index.clone())),
        ]
    );
    let image = |digest: &Digest| {
        inventory
            .images
            .iter()
            .find(|i| &i.digest == digest)
            .unwrap()
            .clone()
    };
    assert_eq!(inventory.images.len(), 4);
    assert_eq!(image(&sig).subject, Some(v2.clone()));
    assert!(image(&v1).pulled_at.is_none());
    assert!(!image(&v1).imported);
    assert_eq!(inventory.children, [(index.clone(), v1.clone())]);
    assert_eq!(store.inventory(None).await.unwrap().streams.len(), 2);
    // Images as people count them: v2 and the index (v1 is its platform, sig a referrer).
    assert_eq!(store.image_count("team").await.unwrap(), 2);
    assert_eq!(store.image_count("other").await.unwrap(), 1);
    assert_eq!(store.image_count("none").await.unwrap(), 0);

    // A push of the same image again is its last push; pulls move the last pull time forward
    // only, and pulls of images gone are skipped.
    let pushed = image(&v1).pushed_at;
    push_layered(stores, "team/app", "", "v1", b"one", None, &[]).await;
    let later = store.inventory(Some("team")).await.unwrap();
    let again = later.images.iter().find(|i| i.digest == v1).unwrap();
    assert!(again.pushed_at > pushed, "{:?} {pushed:?}", again.pushed_at);
    let now = Utc::now();
    let app = repo("team/app");
    store
        .record_pulls(&[
            (app.clone(), v1.clone(), now),
            (repo("team/gone"), v1.clone(), now),
        ])
        .await
        .unwrap();
    store
        .record_pulls(&[(app.clone(), v1.clone(), now - chrono::TimeDelta::hours(1))])
        .await
        .unwrap();
    let pulled = store.inventory(Some("team")).await.unwrap();
    let pulled_at = pulled
        .images
        .iter()
        .find(|i| i.digest == v1)
        .unwrap()
        .pulled_at
        .unwrap();
    assert!(
        (pulled_at - now).num_milliseconds().abs() < 1,
        "{pulled_at} {now}"
    );
}

pub async fn a_prune_step_removes_history_and_unheld_images_only(stores: &Stores) {
    let store = stores.lifecycle.as_ref();
    let v1 = push_layered(stores, "team/app", "latest", "v1", b"one", None, &[]).await;
    let v2 = push_layered(stores, "team/app", "latest", "v2", b"two", None, &[]).await;
    let v3 = push_layered(stores, "team/app", "latest", "v3", b"three", None, &[]).await;
    // v2 is also tagged `stable`; v1 is an index's child; sig refers to v1.
    push_layered(stores, "team/app", "stable", "v2", b"two", None, &[]).await;
    let index = push_layered(
        stores,
        "team/app",
        "multi",
        "ix",
        b"ix",
        None,
        std::slice::from_ref(&v1),
    )
    .await;
    let sig = push_layered(stores, "team/app", "", "sig", b"sig", Some(v1.clone()), &[]).await;
    let inventory = store.inventory(Some("team")).await.unwrap();
    let item_of = |tag: &str, digest: &Digest| {
        inventory
            .items
            .iter()
            .find(|i| i.tag == tag && i.digest.as_ref() == Some(digest))
            .unwrap()
            .id
    };
    let app = repo("team/app");
    let soon = Utc::now() + chrono::TimeDelta::seconds(5);

    // The items of v1 and v2 under `latest` go; v1 is held by the index, v2 by `stable`.
    let outcome = store
        .apply_prune(&lifecycle::PruneStep {
            repository: app.clone(),
            history_items: vec![item_of("latest", &v1), item_of("latest", &v2)],
            images: vec![v1.clone(), v2.clone()],
            keep_since: soon,
        })
        .await
        .unwrap();
    assert_eq!(outcome.history_items, 2);
    assert!(outcome.tags.is_empty());
    assert!(outcome.images.is_empty());
    let stream = stores
        .streams
        .get_stream("team", "app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stream.status_tag("latest").unwrap().items.len(), 1);

    // Referrer, then index, then child: each is free when its turn comes. `multi` loses its
    // only item and goes (status only).
    let outcome = store
        .apply_prune(&lifecycle::PruneStep {
            repository: app.clone(),
            history_items: vec![item_of("multi", &index)],
            images: vec![sig.clone(), index.clone(), v1.clone()],
            keep_since: soon,
        })
        .await
        .unwrap();
    assert_eq!(outcome.tags, ["multi"]);
    assert_eq!(outcome.images, [sig.clone(), index.clone(), v1.clone()]);
    for gone in [&sig, &index, &v1] {
        assert!(
            stores
                .metadata
                .manifest_by_digest(&app, gone)
                .await
                .unwrap()
                .is_none()
        );
    }
    let stream = stores
        .streams
        .get_stream("team", "app")
        .await
        .unwrap()
        .unwrap();
    assert!(stream.status_tag("multi").is_none());

    // What was pushed since `keep_since` stays, whatever the step says; a stream that is gone
    // is nothing to do.
    let untagged = push_layered(stores, "team/app", "", "new", b"new", None, &[]).await;
    let outcome = store
        .apply_prune(&lifecycle::PruneStep {
            repository: app.clone(),
            history_items: Vec::new(),
            images: vec![untagged.clone(), v3.clone()],
            keep_since: Utc::now() - chrono::TimeDelta::seconds(60),
        })
        .await
        .unwrap();
    assert!(outcome.images.is_empty());
    assert_eq!(
        store
            .apply_prune(&lifecycle::PruneStep {
                repository: repo("team/none"),
                history_items: vec![1],
                images: vec![untagged],
                keep_since: soon,
            })
            .await
            .unwrap(),
        lifecycle::PruneOutcome::default()
    );
}

pub async fn content_holders_name_every_link_of_a_blob(stores: &Stores) {
    let store = stores.lifecycle.as_ref();
    let a = push_layered(stores, "team/a", "v1", "a", b"shared", None, &[]).await;
    let b = push_layered(stores, "other/b", "v1", "b", b"shared", None, &[]).await;
    let own = push_layered(stores, "team/a", "v2", "own", b"own layer", None, &[]).await;
    let holders = store
        .content_holders(&[a.clone(), own.clone()])
        .await
        .unwrap();
    let find = |data: &[u8]| {
        holders
            .iter()
            .find(|h| h.content == Digest::sha256_of(data))
            .unwrap()
            .clone()
    };
    let shared = find(b"shared");
    assert_eq!(shared.size, 6);
    let mut shared_by: Vec<Digest> = shared.holders.iter().map(|(_, m)| m.clone()).collect();
    shared_by.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(shared_by, expected);
    let mine = find(b"own layer");
    assert_eq!(mine.size, 9);
    assert_eq!(mine.holders.len(), 1);
    assert_eq!(holders.len(), 2);
    assert!(store.content_holders(&[]).await.unwrap().is_empty());
}

pub async fn pruner_and_retention_objects_are_kept_and_go_with_their_namespace(stores: &Stores) {
    let store = stores.lifecycle.as_ref();
    assert!(store.image_pruner("cluster").await.unwrap().is_none());
    let made = store
        .put_image_pruner("cluster", "{\"a\":1}")
        .await
        .unwrap();
    assert!(
        store
            .set_image_pruner_status("cluster", "{\"ran\":1}")
            .await
            .unwrap()
    );
    let replaced = store
        .put_image_pruner("cluster", "{\"a\":2}")
        .await
        .unwrap();
    assert_eq!(replaced.uid, made.uid);
    let got = store.image_pruner("cluster").await.unwrap().unwrap();
    assert_eq!(got.spec, "{\"a\":2}");
    assert_eq!(got.status.as_deref(), Some("{\"ran\":1}"));
    assert!(!store.set_image_pruner_status("other", "{}").await.unwrap());

    // A policy needs its namespace.
    assert!(
        !store
            .put_retention_policy("team", "p", "{}", true)
            .await
            .unwrap()
    );
    stores
        .streams
        .create_namespace("team", &Labels::new(), &Labels::new())
        .await
        .unwrap();
    stores
        .streams
        .create_namespace("other", &Labels::new(), &Labels::new())
        .await
        .unwrap();
    assert!(
        store
            .put_retention_policy("team", "p", "{\"x\":1}", true)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_retention_policy("team", "p", "{}", true)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_retention_policy("team", "q", "{}", false)
            .await
            .unwrap()
    );
    assert!(
        store
            .put_retention_policy("team", "p", "{\"x\":2}", false)
            .await
            .unwrap()
    );
    assert!(
        store
            .put_retention_policy("team", "a", "{}", true)
            .await
            .unwrap()
    );
    assert!(
        store
            .put_retention_policy("other", "p", "{}", true)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_retention_status("team", "p", "{\"s\":1}")
            .await
            .unwrap()
    );
    let names = |list: Vec<lifecycle::StoredObject>| -> Vec<String> {
        list.into_iter()
            .map(|o| format!("{}/{}", o.namespace.unwrap_or_default(), o.name))
            .collect()
    };
    assert_eq!(
        names(store.retention_policies("team").await.unwrap()),
        ["team/a", "team/p"]
    );
    assert_eq!(
        names(store.all_retention_policies().await.unwrap()),
        ["other/p", "team/a", "team/p"]
    );
    let p = store.retention_policy("team", "p").await.unwrap().unwrap();
    assert_eq!(
        (p.spec.as_str(), p.status.as_deref()),
        ("{\"x\":2}", Some("{\"s\":1}"))
    );
    assert!(store.delete_retention_policy("team", "a").await.unwrap());
    assert!(!store.delete_retention_policy("team", "a").await.unwrap());
    assert!(stores.streams.delete_namespace("team").await.unwrap());
    assert_eq!(
        names(store.all_retention_policies().await.unwrap()),
        ["other/p"]
    );
}

/// The tag immutability contract ([`super::immutability::ImmutableTagRuleStore`] and its
/// enforcement by every change to a tag) as tests of one backend.
macro_rules! immutability_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; tag_rules_are_kept_per_namespace_with_versions_and_go_with_it, a_protected_tag_is_neither_overwritten_nor_deleted_through_the_registry, a_protected_tag_is_neither_moved_nor_removed_through_stream_changes, a_protected_index_keeps_its_children_and_tracking_tags_keep_their_image, rules_protect_their_namespace_streams_and_tags_only_while_enabled, a_rule_stored_holds_for_every_change_that_starts_after_it);
    };
}
pub(crate) use immutability_contract;

use super::immutability::{ImmutableTag, ImmutableTagRuleRecord, PatternLists, RuleWrite};

fn patterns(include: &[&str], exclude: &[&str]) -> PatternLists {
    PatternLists {
        include: include.iter().map(|p| p.to_string()).collect(),
        exclude: exclude.iter().map(|p| p.to_string()).collect(),
    }
}

/// A rule of `namespace` over streams `repositories` and tags `tags` (included patterns).
fn tag_rule(
    namespace: &str,
    name: &str,
    repositories: &[&str],
    tags: &[&str],
) -> ImmutableTagRuleRecord {
    ImmutableTagRuleRecord {
        namespace: namespace.into(),
        name: name.into(),
        uid: uuid::Uuid::new_v4().to_string(),
        repositories: patterns(repositories, &[]),
        tags: patterns(tags, &[]),
        disabled: false,
        resource_version: 0,
        // Whole seconds: what is read back must equal what was written.
        created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    }
}

async fn store_rule(stores: &Stores, rule: &ImmutableTagRuleRecord) -> ImmutableTagRuleRecord {
    match stores.immutability.create_tag_rule(rule).await.unwrap() {
        RuleWrite::Written(stored) => stored,
        other => panic!("rule {} not stored: {other:?}", rule.name),
    }
}

/// Pushes image `seed` (an index of `children`) to `repository:tag`.
async fn try_push(
    stores: &Stores,
    repository: &str,
    tag: &str,
    seed: &str,
    children: Vec<(Digest, &str)>,
) -> StorageResult<Digest> {
    let manifest = seeded_manifest(seed, 10, children);
    let outcome = stores
        .metadata
        .put_manifest(&repo(repository), &manifest, Some(&tag.parse().unwrap()))
        .await?;
    assert_eq!(outcome, PutManifestOutcome::Stored);
    Ok(manifest.digest)
}

/// Asserts that `result` is the refusal of a change to `stream:tag` of `team` by `rule`.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: StorageResult<T>, stream: &str, tag: &str, rule: &str) {
    match result {
        Err(StorageError::TagImmutable(refusal)) => assert_eq!(
            refusal,
            ImmutableTag {
                namespace: "team".into(),
                stream: stream.into(),
                tag: tag.into(),
                rule: rule.into(),
            }
        ),
        other => panic!("{stream}:{tag} was not refused: {other:?}"),
    }
}

/// The image the stream's tag names now, and how many it has named.
async fn tag_image(stores: &Stores, stream: &str, tag: &str) -> (Option<Digest>, usize) {
    let record = stores
        .streams
        .get_stream("team", stream)
        .await
        .unwrap()
        .unwrap();
    let status = record.status_tag(tag).unwrap();
    (status.items[0].digest.clone(), status.items.len())
}

pub async fn tag_rules_are_kept_per_namespace_with_versions_and_go_with_it(stores: &Stores) {
    let rules = &stores.immutability;
    let releases = tag_rule("team", "releases", &["**"], &["v*"]);
    assert_eq!(
        rules.create_tag_rule(&releases).await.unwrap(),
        RuleWrite::NoNamespace
    );
    make_namespace(stores, "team").await;
    make_namespace(stores, "other").await;
    let stored = store_rule(stores, &releases).await;
    assert_eq!(
        stored,
        ImmutableTagRuleRecord {
            resource_version: 1,
            ..releases.clone()
        }
    );
    assert_eq!(
        rules.create_tag_rule(&releases).await.unwrap(),
        RuleWrite::Exists
    );
    store_rule(stores, &tag_rule("team", "all", &[], &["**"])).await;
    store_rule(stores, &tag_rule("other", "releases", &["web"], &["v*"])).await;
    let names = |list: Vec<ImmutableTagRuleRecord>| -> Vec<String> {
        list.into_iter()
            .map(|r| format!("{}/{}", r.namespace, r.name))
            .collect()
    };
    assert_eq!(
        names(rules.tag_rules("team").await.unwrap()),
        ["team/all", "team/releases"]
    );
    assert_eq!(
        rules.tag_rule("team", "releases").await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(rules.tag_rule("team", "absent").await.unwrap(), None);

    // Updates: patterns and `disabled` replaced, the version checked when given and raised.
    let mut changed = releases.clone();
    changed.tags = patterns(&["v*", "release-*"], &["*-rc*"]);
    changed.disabled = true;
    assert_eq!(
        rules.update_tag_rule(&changed, Some(7)).await.unwrap(),
        RuleWrite::Conflict { current: 1 }
    );
    let RuleWrite::Written(updated) = rules.update_tag_rule(&changed, Some(1)).await.unwrap()
    else {
        panic!("not updated");
    };
    assert_eq!(
        (
            updated.tags.clone(),
            updated.disabled,
            updated.resource_version
        ),
        (changed.tags.clone(), true, 2)
    );
    // What is kept of a rule is its own: uid and creation time do not change.
    assert_eq!(
        (updated.uid.as_str(), updated.created_at),
        (stored.uid.as_str(), stored.created_at)
    );
    let RuleWrite::Written(again) = rules.update_tag_rule(&changed, None).await.unwrap() else {
        panic!("not updated");
    };
    assert_eq!(again.resource_version, 3);
    assert_eq!(
        rules
            .update_tag_rule(&tag_rule("team", "absent", &[], &["x"]), None)
            .await
            .unwrap(),
        RuleWrite::Missing
    );
    assert_eq!(
        rules
            .update_tag_rule(&tag_rule("gone", "releases", &[], &["x"]), None)
            .await
            .unwrap(),
        RuleWrite::NoNamespace
    );

    assert!(rules.delete_tag_rule("team", "all").await.unwrap());
    assert!(!rules.delete_tag_rule("team", "all").await.unwrap());
    // A namespace's rules go with it (it holds no protected tag), and do not come back with
    // a namespace made again under its name.
    assert!(stores.streams.delete_namespace("team").await.unwrap());
    make_namespace(stores, "team").await;
    assert!(rules.tag_rules("team").await.unwrap().is_empty());
    assert_eq!(
        names(rules.tag_rules("other").await.unwrap()),
        ["other/releases"]
    );
}

pub async fn a_protected_tag_is_neither_overwritten_nor_deleted_through_the_registry(
    stores: &Stores,
) {
    let app = repo("team/app");
    let first = try_push(stores, "team/app", "v1", "first", vec![])
        .await
        .unwrap();
    store_rule(stores, &tag_rule("team", "releases", &["**"], &["v*"])).await;
    let events_before = stores.streams.latest_event_id().await.unwrap();

    // The same image again is no overwrite.
    assert_eq!(
        try_push(stores, "team/app", "v1", "first", vec![])
            .await
            .unwrap(),
        first
    );
    // Another image is refused, and nothing of it is kept: no tag move, no link, no event.
    refused(
        try_push(stores, "team/app", "v1", "second", vec![]).await,
        "app",
        "v1",
        "releases",
    );
    assert_eq!(
        tag_image(stores, "app", "v1").await,
        (Some(first.clone()), 1)
    );
    let second = seeded_manifest("second", 10, vec![]).digest;
    assert!(
        stores
            .metadata
            .manifest_by_digest(&app, &second)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        stores.streams.latest_event_id().await.unwrap(),
        events_before
    );

    // A new tag that matches is pushed, and is protected from then on.
    let second = try_push(stores, "team/app", "v2", "second", vec![])
        .await
        .unwrap();
    refused(
        try_push(stores, "team/app", "v2", "third", vec![]).await,
        "app",
        "v2",
        "releases",
    );
    // A tag no rule matches moves as before.
    try_push(stores, "team/app", "latest", "third", vec![])
        .await
        .unwrap();
    let third = try_push(stores, "team/app", "latest", "second", vec![]).await;
    assert_eq!(third.unwrap(), second);

    // Deletes: the protected tag, and the image it names (by digest), are refused.
    refused(
        stores
            .metadata
            .delete_tag(&app, &"v1".parse().unwrap())
            .await,
        "app",
        "v1",
        "releases",
    );
    refused(
        stores.metadata.delete_manifest(&app, &first).await,
        "app",
        "v1",
        "releases",
    );
    // An image that only an unprotected tag (or none) names goes as before.
    let unprotected = seeded_manifest("third", 10, vec![]).digest;
    assert!(
        stores
            .metadata
            .delete_manifest(&app, &unprotected)
            .await
            .unwrap()
    );
    assert!(
        stores
            .metadata
            .delete_tag(&app, &"latest".parse().unwrap())
            .await
            .unwrap()
    );
    assert_eq!(tag_image(stores, "app", "v1").await, (Some(first), 1));
}

pub async fn a_protected_tag_is_neither_moved_nor_removed_through_stream_changes(stores: &Stores) {
    let streams = &stores.streams;
    let app = repo("team/app");
    let first = try_push(stores, "team/app", "v1", "first", vec![])
        .await
        .unwrap();
    let second = try_push(stores, "team/app", "latest", "second", vec![])
        .await
        .unwrap();
    store_rule(stores, &tag_rule("team", "releases", &["app"], &["v*"])).await;
    let local = |digest: &Digest| TagTarget::Local {
        source: app.clone(),
        digest: digest.clone(),
    };

    // A mapping (a status move), `oc tag` (a spec tag with a target) and an external
    // reference are all moves.
    let mut mapping = StreamChange::new(app.clone(), Presence::Update, "mapping");
    mapping.move_tags.push(("v1".into(), local(&second)));
    refused(
        streams.change_stream(&mapping).await,
        "app",
        "v1",
        "releases",
    );
    let mut tag = StreamChange::new(app.clone(), Presence::Update, "tag");
    tag.set_spec_tags.push(SpecTagWrite {
        name: "v1".into(),
        reference: tag_reference("ImageStreamImage", &format!("app@{second}"), ""),
        target: Some(local(&second)),
    });
    refused(streams.change_stream(&tag).await, "app", "v1", "releases");
    tag.set_spec_tags[0].target = Some(TagTarget::External {
        reference: "elsewhere.example/app:v1".into(),
        digest: None,
    });
    refused(streams.change_stream(&tag).await, "app", "v1", "releases");
    // A spec for the image the tag names already is no move: allowed.
    tag.set_spec_tags[0].reference = tag_reference("ImageStreamImage", &format!("app@{first}"), "");
    tag.set_spec_tags[0].target = Some(local(&first));
    let record = streams.change_stream(&tag).await.unwrap().unwrap();
    assert!(record.spec_tag("v1").is_some());
    assert_eq!(
        tag_image(stores, "app", "v1").await,
        (Some(first.clone()), 1)
    );

    // Untag (spec and status), and the deletions that would take the tag with them.
    let mut untag = StreamChange::new(app.clone(), Presence::Update, "untag");
    untag.remove_tags.push("v1".into());
    refused(streams.change_stream(&untag).await, "app", "v1", "releases");
    refused(
        streams.delete_stream("team", "app").await,
        "app",
        "v1",
        "releases",
    );
    refused(
        streams.delete_namespace("team").await,
        "app",
        "v1",
        "releases",
    );
    assert_eq!(
        tag_image(stores, "app", "v1").await,
        (Some(first.clone()), 1)
    );

    // Other tags of the stream change as before, in the same kinds of change.
    let mut moves = StreamChange::new(app.clone(), Presence::Update, "mapping");
    moves.move_tags.push(("latest".into(), local(&first)));
    moves.move_tags.push(("other".into(), local(&second)));
    streams.change_stream(&moves).await.unwrap().unwrap();
    untag.remove_tags = vec!["latest".into()];
    streams.change_stream(&untag).await.unwrap().unwrap();
    assert!(
        streams
            .get_stream("team", "app")
            .await
            .unwrap()
            .unwrap()
            .status_tag("latest")
            .is_none()
    );
}

pub async fn a_protected_index_keeps_its_children_and_tracking_tags_keep_their_image(
    stores: &Stores,
) {
    let app = repo("team/app");
    let child = try_push(stores, "team/app", "child", "amd64", vec![])
        .await
        .unwrap();
    let index = try_push(
        stores,
        "team/app",
        "v1",
        "index",
        vec![(child.clone(), "amd64")],
    )
    .await
    .unwrap();
    // The child's own tag goes; the child stays, since a protected index holds it.
    assert!(
        stores
            .metadata
            .delete_tag(&app, &"child".parse().unwrap())
            .await
            .unwrap()
    );
    store_rule(stores, &tag_rule("team", "releases", &["**"], &["v*"])).await;
    refused(
        stores.metadata.delete_manifest(&app, &child).await,
        "app",
        "v1",
        "releases",
    );

    // `v1-stable` tracks `latest`: a push of `latest` moves it until it is protected, then
    // it keeps its image and the push succeeds.
    let mut tracking = StreamChange::new(app.clone(), Presence::Update, "tag");
    tracking.set_spec_tags.push(SpecTagWrite {
        name: "v1-stable".into(),
        reference: tag_reference("ImageStreamTag", "app:latest", ""),
        target: None,
    });
    stores
        .streams
        .change_stream(&tracking)
        .await
        .unwrap()
        .unwrap();
    let first = try_push(stores, "team/app", "latest", "first", vec![])
        .await
        .unwrap();
    assert_eq!(
        tag_image(stores, "app", "v1-stable").await,
        (Some(first.clone()), 1)
    );
    let second = try_push(stores, "team/app", "latest", "second", vec![])
        .await
        .unwrap();
    assert_eq!(tag_image(stores, "app", "latest").await.0, Some(second));
    assert_eq!(
        tag_image(stores, "app", "v1-stable").await,
        (Some(first), 1)
    );
    assert_eq!(tag_image(stores, "app", "v1").await.0, Some(index));
}

pub async fn rules_protect_their_namespace_streams_and_tags_only_while_enabled(stores: &Stores) {
    make_namespace(stores, "team").await;
    make_namespace(stores, "other").await;
    for repository in ["team/app", "team/tools/app", "team/web", "other/app"] {
        try_push(stores, repository, "v1", "first", vec![])
            .await
            .unwrap();
        try_push(stores, repository, "v1-rc1", "first", vec![])
            .await
            .unwrap();
    }
    let mut rule = tag_rule("team", "releases", &["*"], &["v*"]);
    rule.repositories.exclude = vec!["web".into()];
    rule.tags.exclude = vec!["*-rc*".into()];
    store_rule(stores, &rule).await;
    let overwrite = |repository: &'static str, tag: &'static str| async move {
        try_push(stores, repository, tag, "second", vec![]).await
    };
    refused(overwrite("team/app", "v1").await, "app", "v1", "releases");
    // `*` stays within one component; `web` and release candidates are excluded; another
    // namespace's streams are its own.
    overwrite("team/tools/app", "v1").await.unwrap();
    overwrite("team/web", "v1").await.unwrap();
    overwrite("team/app", "v1-rc1").await.unwrap();
    overwrite("other/app", "v1").await.unwrap();

    // `**` reaches nested streams; the first rule by name is the one named.
    store_rule(stores, &tag_rule("team", "a-nested", &["**/app"], &["**"])).await;
    refused(overwrite("team/app", "v1").await, "app", "v1", "a-nested");
    refused(
        try_push(stores, "team/tools/app", "v1", "third", vec![]).await,
        "tools/app",
        "v1",
        "a-nested",
    );

    // Disabled rules protect nothing; enabled again, they do.
    let rules = &stores.immutability;
    for name in ["a-nested", "releases"] {
        let mut rule = rules.tag_rule("team", name).await.unwrap().unwrap();
        rule.disabled = true;
        rules.update_tag_rule(&rule, None).await.unwrap();
    }
    overwrite("team/app", "v1").await.unwrap();
    assert!(rules.delete_tag_rule("team", "a-nested").await.unwrap());
    let mut releases = rules.tag_rule("team", "releases").await.unwrap().unwrap();
    releases.disabled = false;
    rules.update_tag_rule(&releases, None).await.unwrap();
    refused(
        try_push(stores, "team/app", "v1", "first", vec![]).await,
        "app",
        "v1",
        "releases",
    );
}

pub async fn a_rule_stored_holds_for_every_change_that_starts_after_it(stores: &Stores) {
    make_namespace(stores, "team").await;
    try_push(stores, "team/app", "v1", "seed-0", vec![])
        .await
        .unwrap();
    let rule_stored = std::sync::Arc::new(std::sync::OnceLock::new());
    // Pushes that move `v1` to a new image each, while the rule is stored: none that starts
    // after the rule's write returned may succeed, and `v1` never moves after the last
    // successful push.
    let pushes: Vec<_> = (1..=40)
        .map(|n| {
            let stores_metadata = stores.metadata.clone();
            let rule_stored = rule_stored.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(n * 2)).await;
                // The last ten wait for the rule, so that some surely start after it however
                // slow its write is on a loaded machine.
                while n > 30 && rule_stored.get().is_none() {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                let started_after_rule = rule_stored.get().is_some();
                let manifest = seeded_manifest(&format!("seed-{n}"), 10, vec![]);
                let result = stores_metadata
                    .put_manifest(&repo("team/app"), &manifest, Some(&"v1".parse().unwrap()))
                    .await;
                (started_after_rule, manifest.digest, result)
            }
        })
        .collect();
    let rule = async {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        store_rule(stores, &tag_rule("team", "releases", &[], &["v1"])).await;
        rule_stored.set(()).unwrap();
    };
    let (results, ()) = tokio::join!(futures_util::future::join_all(pushes), rule);
    let mut stored = vec![seeded_manifest("seed-0", 10, vec![]).digest];
    let mut refusals = 0;
    for (started_after_rule, digest, result) in results {
        match result {
            Ok(PutManifestOutcome::Stored) => {
                assert!(
                    !started_after_rule,
                    "a push that started after the rule moved v1"
                );
                stored.push(digest);
            }
            Err(StorageError::TagImmutable(_)) => refusals += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(refusals > 0, "no push came after the rule");
    // The tag names an image a successful push brought, as its last event says.
    let (now, _) = tag_image(stores, "app", "v1").await;
    let now = now.unwrap();
    assert!(stored.contains(&now));
    let events = stores
        .streams
        .events_after(0, &EventFilter::default(), 1000)
        .await
        .unwrap()
        .0;
    let last_move = events
        .iter()
        .rev()
        .find(|e| e.tag.as_deref() == Some("v1"))
        .unwrap();
    assert_eq!(last_move.new_image, Some(now.to_string()));
}

pub async fn a_prune_step_leaves_an_immutable_tag_its_image(stores: &Stores) {
    let v1 = push_layered(stores, "team/app", "release", "r1", b"one", None, &[]).await;
    let v2 = push_layered(stores, "team/app", "release", "r2", b"two", None, &[]).await;
    stores
        .immutability
        .create_tag_rule(&tag_rule("team", "releases", &["**"], &["release"]))
        .await
        .unwrap();
    let inventory = stores.lifecycle.inventory(Some("team")).await.unwrap();
    let items: Vec<i64> = inventory
        .items
        .iter()
        .filter(|i| i.tag == "release")
        .map(|i| i.id)
        .collect();
    assert_eq!(items.len(), 2);
    // A retention that keeps nothing of `release`: its older item goes, its newest stays, and
    // so do the tag and its image.
    let outcome = stores
        .lifecycle
        .apply_prune(&lifecycle::PruneStep {
            repository: repo("team/app"),
            history_items: items,
            images: vec![v1.clone(), v2.clone()],
            keep_since: Utc::now() + chrono::TimeDelta::seconds(5),
        })
        .await
        .unwrap();
    assert_eq!(outcome.history_items, 1);
    assert!(outcome.tags.is_empty());
    assert_eq!(outcome.images, vec![v1]);
    let stream = stores
        .streams
        .get_stream("team", "app")
        .await
        .unwrap()
        .unwrap();
    let release = stream.status_tag("release").unwrap();
    assert_eq!(release.items.len(), 1);
    assert_eq!(release.items[0].digest.as_ref(), Some(&v2));
}

/// The quota store's contract ([`QuotaStore`](super::quotas::QuotaStore): quota objects, what a
/// namespace uses, and the limits enforced inside pushes and stream changes) as tests of one
/// backend's [`Stores`].
macro_rules! quotas_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; storage_usage_counts_what_images_reference_once_per_namespace, writes_past_a_quota_or_limit_range_are_refused_and_count_nothing, quota_objects_are_versioned_per_namespace_and_go_with_it, racing_pushes_never_pass_a_quota_together);
    };
}
pub(crate) use quotas_contract;

/// A quota object of `namespace` setting `limits`.
fn quota_object(
    kind: QuotaKind,
    namespace: &str,
    name: &str,
    limits: &[(Limited, u64)],
) -> QuotaObject {
    QuotaObject {
        kind,
        namespace: namespace.into(),
        name: name.into(),
        uid: format!("uid-{namespace}-{name}"),
        resource_version: 0,
        labels: Labels::new(),
        annotations: Labels::new(),
        spec: "{}".into(),
        limits: limits
            .iter()
            .map(|&(limited, max)| QuotaLimit { limited, max })
            .collect(),
        created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    }
}

async fn set_quota(stores: &Stores, kind: QuotaKind, namespace: &str, limits: &[(Limited, u64)]) {
    let object = quota_object(kind, namespace, "limits", limits);
    let written = match stores.quotas.create_quota_object(&object).await.unwrap() {
        QuotaWrite::Exists => stores
            .quotas
            .replace_quota_object(&object, None)
            .await
            .unwrap(),
        written => written,
    };
    assert!(matches!(written, QuotaWrite::Written(_)), "{written:?}");
}

/// An image of `layers` (each a name and its size, linked into `repository` first), `seed`
/// making its manifest unique.
fn layered(seed: &str, layers: &[(&str, u64)]) -> NewManifest {
    manifest(
        &format!("{{\"image\":\"{seed}\"}}"),
        layers
            .iter()
            .map(|(name, size)| Referenced {
                digest: Digest::sha256_of(name.as_bytes()),
                size: *size,
            })
            .collect(),
        None,
    )
}

/// Links the image's layers into `repository` and pushes it, as `tag` when given.
async fn put_layered(
    stores: &Stores,
    repository: &str,
    tag: Option<&str>,
    image: &NewManifest,
) -> PutManifestOutcome {
    for blob in &image.blobs {
        stores
            .metadata
            .link_blob(&repo(repository), &blob.digest, blob.size)
            .await
            .unwrap();
    }
    let tag: Option<Tag> = tag.map(|t| t.parse().unwrap());
    stores
        .metadata
        .put_manifest(&repo(repository), image, tag.as_ref())
        .await
        .unwrap()
}

async fn used_bytes(stores: &Stores, namespace: &str) -> u64 {
    stores
        .quotas
        .quota_usage(namespace)
        .await
        .unwrap()
        .storage_bytes
}

fn len(image: &NewManifest) -> u64 {
    image.content.len() as u64
}

pub async fn storage_usage_counts_what_images_reference_once_per_namespace(stores: &Stores) {
    let store = stores.metadata.as_ref();
    let first = layered("first", &[("base", 100), ("app", 200)]);
    let second = layered("second", &[("base", 100), ("tool", 50)]);
    assert_eq!(
        put_layered(stores, "ns/a", Some("v1"), &first).await,
        PutManifestOutcome::Stored
    );
    assert_eq!(used_bytes(stores, "ns").await, 300 + len(&first));
    // The shared base layer counts once in the namespace, and again in another namespace.
    put_layered(stores, "ns/b", Some("v1"), &second).await;
    assert_eq!(
        used_bytes(stores, "ns").await,
        350 + len(&first) + len(&second)
    );
    put_layered(stores, "other/a", None, &second).await;
    assert_eq!(used_bytes(stores, "other").await, 150 + len(&second));
    // The same image under another tag, or in another stream of the namespace: nothing more.
    put_layered(stores, "ns/a", Some("v2"), &first).await;
    put_layered(stores, "ns/b", Some("copy"), &first).await;
    let all = 350 + len(&first) + len(&second);
    assert_eq!(used_bytes(stores, "ns").await, all);
    // Uploaded but referenced by no image: not counted.
    store
        .link_blob(&repo("ns/a"), &Digest::sha256_of(b"loose"), 1000)
        .await
        .unwrap();
    assert_eq!(used_bytes(stores, "ns").await, all);

    // An image deleted from one stream but still in another counts on; from both, it goes
    // with what only it referenced.
    assert!(
        store
            .delete_manifest(&repo("ns/a"), &first.digest)
            .await
            .unwrap()
    );
    assert_eq!(used_bytes(stores, "ns").await, all);
    assert!(
        store
            .delete_manifest(&repo("ns/b"), &first.digest)
            .await
            .unwrap()
    );
    assert_eq!(used_bytes(stores, "ns").await, 150 + len(&second));

    // Tagged across namespaces, an image counts in the target namespace too.
    let mut tag = StreamChange::new(repo("ns/c"), Presence::Ensure, "tag");
    tag.move_tags.push((
        "v1".into(),
        TagTarget::Local {
            source: repo("other/a"),
            digest: second.digest.clone(),
        },
    ));
    stores.streams.change_stream(&tag).await.unwrap().unwrap();
    assert_eq!(used_bytes(stores, "ns").await, 150 + len(&second));
    put_layered(stores, "other/d", None, &first).await;
    let mut tag = StreamChange::new(repo("ns/c"), Presence::Ensure, "tag");
    tag.move_tags.push((
        "v2".into(),
        TagTarget::Local {
            source: repo("other/d"),
            digest: first.digest.clone(),
        },
    ));
    stores.streams.change_stream(&tag).await.unwrap().unwrap();
    assert_eq!(used_bytes(stores, "ns").await, all);

    // Deleting streams and namespaces takes what they counted away.
    assert_eq!(
        stores.quotas.quota_usage("ns").await.unwrap().image_streams,
        3
    );
    assert!(stores.streams.delete_stream("ns", "c").await.unwrap());
    assert_eq!(used_bytes(stores, "ns").await, 150 + len(&second));
    assert!(stores.streams.delete_namespace("ns").await.unwrap());
    assert_eq!(
        stores.quotas.quota_usage("ns").await.unwrap(),
        super::quotas::QuotaUsage::default()
    );
    assert_eq!(
        used_bytes(stores, "other").await,
        350 + len(&first) + len(&second)
    );
}

pub async fn writes_past_a_quota_or_limit_range_are_refused_and_count_nothing(stores: &Stores) {
    let store = stores.metadata.as_ref();
    make_namespace(stores, "team").await;
    set_quota(
        stores,
        QuotaKind::ResourceQuota,
        "team",
        &[(Limited::Storage, 1000), (Limited::ImageStreams, 2)],
    )
    .await;
    let small = layered("small", &[("six hundred", 600)]);
    assert_eq!(
        put_layered(stores, "team/app", Some("v1"), &small).await,
        PutManifestOutcome::Stored
    );
    let used = 600 + len(&small);
    let big = layered("big", &[("six hundred", 600), ("five hundred", 500)]);
    assert_eq!(
        put_layered(stores, "team/app", Some("v2"), &big).await,
        PutManifestOutcome::QuotaExceeded(QuotaRefusal {
            namespace: "team".into(),
            stream: None,
            object: "limits".into(),
            limited: Limited::Storage,
            max: 1000,
            used,
            requested: 500 + len(&big),
        })
    );
    // Nothing of the refused push was kept or counted.
    assert_eq!(used_bytes(stores, "team").await, used);
    assert!(
        store
            .manifest_by_digest(&repo("team/app"), &big.digest)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .manifest_by_tag(&repo("team/app"), &"v2".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // What adds nothing passes, even once the quota is lowered below the usage; so do
    // deletions.
    set_quota(
        stores,
        QuotaKind::ResourceQuota,
        "team",
        &[(Limited::Storage, 10)],
    )
    .await;
    assert_eq!(
        put_layered(stores, "team/app", Some("again"), &small).await,
        PutManifestOutcome::Stored
    );
    assert!(
        store
            .delete_tag(&repo("team/app"), &"again".parse().unwrap())
            .await
            .unwrap()
    );

    // Image streams: a push or a change that makes one past the quota is refused.
    set_quota(
        stores,
        QuotaKind::ResourceQuota,
        "team",
        &[(Limited::ImageStreams, 2)],
    )
    .await;
    put_layered(stores, "team/web", Some("v1"), &small).await;
    let refused = put_layered(stores, "team/third", Some("v1"), &small).await;
    let PutManifestOutcome::QuotaExceeded(refusal) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(
        (
            refusal.limited,
            refusal.max,
            refusal.used,
            refusal.requested
        ),
        (Limited::ImageStreams, 2, 2, 1)
    );
    assert!(
        stores
            .streams
            .get_stream("team", "third")
            .await
            .unwrap()
            .is_none()
    );
    let create = StreamChange::new(repo("team/fourth"), Presence::Create, "create");
    assert!(matches!(
        stores.streams.change_stream(&create).await.unwrap(),
        Err(StreamChangeError::QuotaExceeded(QuotaRefusal {
            limited: Limited::ImageStreams,
            ..
        }))
    ));
    assert_eq!(
        stores
            .quotas
            .quota_usage("team")
            .await
            .unwrap()
            .image_streams,
        2
    );

    // Limit ranges: the size of one image, and a stream's tags and images.
    make_namespace(stores, "lr").await;
    set_quota(
        stores,
        QuotaKind::LimitRange,
        "lr",
        &[
            (Limited::ImageSize, 150),
            (Limited::StreamTags, 2),
            (Limited::StreamImages, 3),
        ],
    )
    .await;
    let large = layered("large", &[("a hundred", 100), ("another hundred", 100)]);
    let refused = put_layered(stores, "lr/app", Some("v1"), &large).await;
    assert_eq!(
        refused,
        PutManifestOutcome::QuotaExceeded(QuotaRefusal {
            namespace: "lr".into(),
            stream: None,
            object: "limits".into(),
            limited: Limited::ImageSize,
            max: 150,
            used: 0,
            requested: 200,
        })
    );
    assert_eq!(used_bytes(stores, "lr").await, 0);
    let images: Vec<NewManifest> = (0..4)
        .map(|i| layered(&format!("lr{i}"), &[("a hundred", 100)]))
        .collect();
    for (tag, image) in [("t1", &images[0]), ("t2", &images[1])] {
        assert_eq!(
            put_layered(stores, "lr/app", Some(tag), image).await,
            PutManifestOutcome::Stored
        );
    }
    let refused = put_layered(stores, "lr/app", Some("t3"), &images[0]).await;
    let PutManifestOutcome::QuotaExceeded(refusal) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(
        (
            refusal.limited,
            refusal.stream.as_deref(),
            refusal.used,
            refusal.requested
        ),
        (Limited::StreamTags, Some("app"), 2, 1)
    );
    // Moving a tag adds no tag; the third image is the last the stream may name.
    assert_eq!(
        put_layered(stores, "lr/app", Some("t1"), &images[2]).await,
        PutManifestOutcome::Stored
    );
    let refused = put_layered(stores, "lr/app", Some("t1"), &images[3]).await;
    assert!(
        matches!(
            &refused,
            PutManifestOutcome::QuotaExceeded(QuotaRefusal {
                limited: Limited::StreamImages,
                used: 3,
                requested: 1,
                ..
            })
        ),
        "{refused:?}"
    );
    // Through the image stream API's changes too: a tag added past the limit.
    let mut tag = StreamChange::new(repo("lr/app"), Presence::Ensure, "tag");
    tag.move_tags.push((
        "t9".into(),
        TagTarget::Local {
            source: repo("lr/app"),
            digest: images[1].digest.clone(),
        },
    ));
    assert!(matches!(
        stores.streams.change_stream(&tag).await.unwrap(),
        Err(StreamChangeError::QuotaExceeded(QuotaRefusal {
            limited: Limited::StreamTags,
            ..
        }))
    ));
    let stream = stores
        .streams
        .get_stream("lr", "app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stream.status_tags.len(), 2);
    assert_eq!(stores.quotas.max_image_size("lr").await.unwrap(), Some(150));
    assert_eq!(stores.quotas.max_image_size("team").await.unwrap(), None);
}

pub async fn quota_objects_are_versioned_per_namespace_and_go_with_it(stores: &Stores) {
    let quotas = stores.quotas.as_ref();
    let object = quota_object(
        QuotaKind::ResourceQuota,
        "team",
        "registry",
        &[(Limited::Storage, 1 << 30)],
    );
    assert_eq!(
        quotas.create_quota_object(&object).await.unwrap(),
        QuotaWrite::NotFound,
        "the namespace must exist"
    );
    make_namespace(stores, "team").await;
    make_namespace(stores, "other").await;
    let QuotaWrite::Written(created) = quotas.create_quota_object(&object).await.unwrap() else {
        panic!("not created");
    };
    assert!(created.resource_version > 0);
    assert_eq!(
        quotas.create_quota_object(&object).await.unwrap(),
        QuotaWrite::Exists
    );
    // The same name is another object in another namespace, or of the other kind.
    let elsewhere = QuotaObject {
        namespace: "other".into(),
        ..object.clone()
    };
    let ranged = QuotaObject {
        kind: QuotaKind::LimitRange,
        limits: vec![QuotaLimit {
            limited: Limited::ImageSize,
            max: 5,
        }],
        ..object.clone()
    };
    for other in [&elsewhere, &ranged] {
        assert!(matches!(
            quotas.create_quota_object(other).await.unwrap(),
            QuotaWrite::Written(_)
        ));
    }
    assert_eq!(
        quotas
            .quota_object(QuotaKind::ResourceQuota, "team", "registry")
            .await
            .unwrap(),
        Some(created.clone())
    );

    // A replace at the current version moves it on; at an old one it conflicts. The uid and
    // creation time stay whatever the replacement says.
    let mut changed = QuotaObject {
        uid: "another".into(),
        created_at: Utc::now(),
        spec: "{\"hard\":{}}".into(),
        limits: vec![QuotaLimit {
            limited: Limited::ImageStreams,
            max: 3,
        }],
        ..object.clone()
    };
    changed.labels.insert("tier".into(), "gold".into());
    let QuotaWrite::Written(replaced) = quotas
        .replace_quota_object(&changed, Some(created.resource_version))
        .await
        .unwrap()
    else {
        panic!("not replaced");
    };
    assert!(replaced.resource_version > created.resource_version);
    assert_eq!(
        (replaced.uid.as_str(), replaced.created_at, &replaced.limits),
        (created.uid.as_str(), created.created_at, &changed.limits)
    );
    assert_eq!(
        quotas
            .quota_object(QuotaKind::ResourceQuota, "team", "registry")
            .await
            .unwrap(),
        Some(replaced.clone())
    );
    assert_eq!(
        quotas
            .replace_quota_object(&changed, Some(created.resource_version))
            .await
            .unwrap(),
        QuotaWrite::Conflict
    );
    let missing = QuotaObject {
        name: "missing".into(),
        ..changed.clone()
    };
    assert_eq!(
        quotas.replace_quota_object(&missing, None).await.unwrap(),
        QuotaWrite::NotFound
    );

    // Deleted, then made again: a new version, never one given before.
    assert!(
        quotas
            .delete_quota_object(QuotaKind::ResourceQuota, "team", "registry")
            .await
            .unwrap()
    );
    assert!(
        !quotas
            .delete_quota_object(QuotaKind::ResourceQuota, "team", "registry")
            .await
            .unwrap()
    );
    let QuotaWrite::Written(again) = quotas.create_quota_object(&object).await.unwrap() else {
        panic!("not made again");
    };
    assert!(again.resource_version > replaced.resource_version);
    let names = |objects: Vec<QuotaObject>| -> Vec<String> {
        objects.into_iter().map(|o| o.name).collect()
    };
    assert_eq!(
        names(
            quotas
                .quota_objects(QuotaKind::LimitRange, "team")
                .await
                .unwrap()
        ),
        ["registry"]
    );

    // They go with their namespace.
    assert!(stores.streams.delete_namespace("team").await.unwrap());
    make_namespace(stores, "team").await;
    for kind in [QuotaKind::ResourceQuota, QuotaKind::LimitRange] {
        assert!(quotas.quota_objects(kind, "team").await.unwrap().is_empty());
    }
    assert_eq!(
        names(
            quotas
                .quota_objects(QuotaKind::ResourceQuota, "other")
                .await
                .unwrap()
        ),
        ["registry"]
    );
}

pub async fn racing_pushes_never_pass_a_quota_together(stores: &Stores) {
    make_namespace(stores, "race").await;
    set_quota(
        stores,
        QuotaKind::ResourceQuota,
        "race",
        &[(Limited::Storage, 1000)],
    )
    .await;
    let images: Vec<NewManifest> = (0..8)
        .map(|i| layered(&format!("race{i}"), &[(&format!("layer {i}"), 400)]))
        .collect();
    // Every layer is linked first, so that the manifest pushes race each other alone.
    for image in &images {
        for blob in &image.blobs {
            stores
                .metadata
                .link_blob(&repo("race/app"), &blob.digest, blob.size)
                .await
                .unwrap();
        }
    }
    let pushes = images.iter().enumerate().map(|(i, image)| {
        let metadata = stores.metadata.clone();
        let image = image.clone();
        tokio::spawn(async move {
            let tag: Tag = format!("v{i}").parse().unwrap();
            metadata
                .put_manifest(&repo("race/app"), &image, Some(&tag))
                .await
                .unwrap()
        })
    });
    let outcomes = futures_util::future::join_all(pushes).await;
    let stored = outcomes
        .iter()
        .filter(|outcome| matches!(outcome.as_ref().unwrap(), PutManifestOutcome::Stored))
        .count();
    // Each image is 400 bytes of layer and its manifest: two fit in 1000, a third does not.
    assert_eq!(stored, 2, "{outcomes:?}");
    // Exactly what the stored images reference is counted.
    let mut expected = 0;
    for image in &images {
        if stores
            .metadata
            .manifest_by_digest(&repo("race/app"), &image.digest)
            .await
            .unwrap()
            .is_some()
        {
            expected += 400 + len(image);
        }
    }
    let used = used_bytes(stores, "race").await;
    assert!(used <= 1000, "{used}");
    assert_eq!(used, expected);
}

// Trusted keys (`trusted_keys.rs`).

macro_rules! trusted_keys_contract {
    ($open:expr) => {
        $crate::storage::contract::checks!($open; trusted_keys_are_kept_per_namespace_and_go_with_it);
    };
}
pub(crate) use trusted_keys_contract;

pub async fn trusted_keys_are_kept_per_namespace_and_go_with_it(stores: &Stores) {
    use super::trusted_keys::TrustedKeyRecord;
    let key = |namespace: &str, name: &str| TrustedKeyRecord {
        namespace: namespace.into(),
        name: name.into(),
        uid: format!("uid-{namespace}-{name}"),
        public_key: format!("-----BEGIN PUBLIC KEY-----\n{name}\n-----END PUBLIC KEY-----\n"),
        created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    };
    let keys = &stores.trusted_keys;
    // The namespace must exist.
    assert!(keys.put_trusted_key(&key("ghost", "ci")).await.is_err());
    make_namespace(stores, "team").await;
    make_namespace(stores, "other").await;
    assert!(keys.put_trusted_key(&key("team", "release")).await.unwrap());
    assert!(keys.put_trusted_key(&key("team", "ci")).await.unwrap());
    assert!(keys.put_trusted_key(&key("other", "ci")).await.unwrap());
    // A name is taken once per namespace; the first key stays.
    let mut again = key("team", "ci");
    again.public_key = "changed".into();
    assert!(!keys.put_trusted_key(&again).await.unwrap());
    let listed = keys.trusted_keys("team").await.unwrap();
    assert_eq!(listed, vec![key("team", "ci"), key("team", "release")]);
    assert!(keys.delete_trusted_key("team", "ci").await.unwrap());
    assert!(!keys.delete_trusted_key("team", "ci").await.unwrap());
    assert_eq!(keys.trusted_keys("team").await.unwrap().len(), 1);
    // Deleted with the namespace; one made again under the name starts without keys.
    assert!(stores.streams.delete_namespace("team").await.unwrap());
    make_namespace(stores, "team").await;
    assert!(keys.trusted_keys("team").await.unwrap().is_empty());
    assert_eq!(keys.trusted_keys("other").await.unwrap().len(), 1);
}
