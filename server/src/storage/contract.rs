//! What every backend of a store must do, written once: the checks below take a store by its
//! trait, and `metadata_contract!` makes them tests of one backend (as distribution runs one
//! driver suite against every storage driver). Each backend's test module invokes it with a
//! future that opens a fresh store: `(something kept alive for the test, the store)`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use chrono::Utc;

use super::*;
use crate::oci::{Algorithm, Digest, RepositoryName, Tag};

/// The registry metadata contract ([`MetadataStore`]) as tests of one backend.
macro_rules! metadata_contract {
    ($open:expr) => {
        #[tokio::test]
        async fn a_manifest_needs_its_blobs_in_the_same_repository() {
            let (_kept, store) = $open.await;
            $crate::storage::contract::a_manifest_needs_its_blobs_in_the_same_repository(store.as_ref()).await;
        }

        #[tokio::test]
        async fn deleting_a_manifest_removes_its_tags_and_pagination_is_ordered() {
            let (_kept, store) = $open.await;
            $crate::storage::contract::deleting_a_manifest_removes_its_tags_and_pagination_is_ordered(store.as_ref()).await;
        }

        #[tokio::test]
        async fn referrers_are_found_by_subject_within_the_repository() {
            let (_kept, store) = $open.await;
            $crate::storage::contract::referrers_are_found_by_subject_within_the_repository(store.as_ref()).await;
        }

        #[tokio::test]
        async fn a_remote_link_serves_nothing_until_its_bytes_are_verified() {
            let (_kept, store) = $open.await;
            $crate::storage::contract::a_remote_link_serves_nothing_until_its_bytes_are_verified(store.as_ref()).await;
        }

        #[tokio::test]
        async fn declared_sizes_must_be_the_stored_ones() {
            let (_kept, store) = $open.await;
            $crate::storage::contract::declared_sizes_must_be_the_stored_ones(store.as_ref()).await;
        }

        #[tokio::test]
        async fn upload_progress_is_compare_and_set() {
            let (_kept, store) = $open.await;
            $crate::storage::contract::upload_progress_is_compare_and_set(store.as_ref()).await;
        }
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
    }
}

pub(crate) fn source() -> RemoteSource {
    RemoteSource {
        repository: "remote.example/team/app".into(),
        insecure: false,
    }
}

pub async fn a_manifest_needs_its_blobs_in_the_same_repository(store: &dyn MetadataStore) {
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

pub async fn deleting_a_manifest_removes_its_tags_and_pagination_is_ordered(
    store: &dyn MetadataStore,
) {
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

pub async fn referrers_are_found_by_subject_within_the_repository(store: &dyn MetadataStore) {
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

pub async fn a_remote_link_serves_nothing_until_its_bytes_are_verified(store: &dyn MetadataStore) {
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

pub async fn declared_sizes_must_be_the_stored_ones(store: &dyn MetadataStore) {
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

pub async fn upload_progress_is_compare_and_set(store: &dyn MetadataStore) {
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
