//! The merged view of an image: its layers' entries applied in order, as a container's root
//! filesystem is (the OCI image spec's changeset rules): a later layer's entry replaces an
//! earlier one at the same path, `.wh.NAME` deletes NAME (and everything under it) of the
//! layers below, `.wh..wh..opq` hides what the layers below hold in its directory, and a
//! non-directory replacing a directory removes what was under it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::index::{EntryKind, LayerIndex};

/// One path of the merged view: what the topmost layer that has it says of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedEntry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    pub link_target: Option<String>,
    /// `sha256:<hex>` of a regular file's content.
    pub content_digest: Option<String>,
    /// The layer it comes from: its position in the image (0 = the base layer) and digest.
    pub layer: usize,
    pub layer_digest: String,
    /// Its position in that layer's index (to read or download it).
    pub entry: usize,
}

/// Applies `layers` (base first, each with its digest) in order; entries sorted by path bytes.
pub fn merge(layers: &[(String, Arc<LayerIndex>)]) -> Vec<MergedEntry> {
    let mut tree: BTreeMap<Vec<u8>, MergedEntry> = BTreeMap::new();
    for (position, (digest, index)) in layers.iter().enumerate() {
        // A layer's whiteouts apply to the layers below it only, never to its own entries,
        // whatever their order in the tar stream: removals first, then additions.
        for entry in &index.entries {
            let key = entry.key();
            let (dir, base) = split(key);
            match entry.kind {
                EntryKind::OpaqueWhiteout => remove_under(&mut tree, dir),
                EntryKind::Whiteout => {
                    let mut target = dir.to_vec();
                    if !target.is_empty() {
                        target.push(b'/');
                    }
                    target.extend_from_slice(&base[b".wh.".len()..]);
                    tree.remove(&target);
                    remove_under(&mut tree, &target);
                }
                _ => {}
            }
        }
        for (at, entry) in index.entries.iter().enumerate() {
            if matches!(entry.kind, EntryKind::Whiteout | EntryKind::OpaqueWhiteout) {
                continue;
            }
            let key = entry.key().to_vec();
            if entry.kind != EntryKind::Dir {
                remove_under(&mut tree, &key);
            }
            tree.insert(
                key,
                MergedEntry {
                    path: entry.path.clone(),
                    kind: entry.kind,
                    mode: entry.mode,
                    uid: entry.uid,
                    gid: entry.gid,
                    size: entry.size,
                    mtime: entry.mtime,
                    link_target: entry.link_target.clone(),
                    content_digest: entry.content_digest.clone(),
                    layer: position,
                    layer_digest: digest.clone(),
                    entry: at,
                },
            );
        }
    }
    tree.into_values().collect()
}

/// `dir/base` into `dir` and `base`.
fn split(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().rposition(|&b| b == b'/') {
        Some(at) => (&key[..at], &key[at + 1..]),
        None => (&[], key),
    }
}

/// Removes every path strictly under `dir` (everything, for the root).
fn remove_under(tree: &mut BTreeMap<Vec<u8>, MergedEntry>, dir: &[u8]) {
    if dir.is_empty() {
        tree.clear();
        return;
    }
    let mut prefix = dir.to_vec();
    prefix.push(b'/');
    let under: Vec<Vec<u8>> = tree
        .range(prefix.clone()..)
        .take_while(|(key, _)| key.starts_with(&prefix))
        .map(|(key, _)| key.clone())
        .collect();
    for key in under {
        tree.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::decode::Compression;
    use crate::layers::index::Entry;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            stored_as: None,
            raw_path: None,
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            size: 1,
            mtime: 0,
            link_target: None,
            offset: 0,
            content_digest: None,
            truncated: false,
        }
    }

    fn layer(entries: Vec<Entry>) -> (String, Arc<LayerIndex>) {
        (
            "sha256:x".into(),
            Arc::new(LayerIndex {
                compression: Compression::None,
                entries,
                uncompressed_size: 0,
                omitted: 0,
                incomplete: None,
                checkpoints: Vec::new(),
                windows: Vec::new(),
            }),
        )
    }

    fn paths(merged: &[MergedEntry]) -> Vec<(&str, usize)> {
        merged.iter().map(|e| (e.path.as_str(), e.layer)).collect()
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_the_layers_below() {
        use EntryKind::*;
        let base = layer(vec![
            entry("etc", Dir),
            entry("etc/a", File),
            entry("etc/b", File),
            entry("opt", Dir),
            entry("opt/x", File),
            entry("opt/y/z", File),
            entry("var", Dir),
            entry("var/lib", File),
        ]);
        let top = layer(vec![
            // The whiteout comes after the layer's own file of the same directory.
            entry("opt/new", File),
            entry("opt/.wh..wh..opq", OpaqueWhiteout),
            entry("etc/.wh.a", Whiteout),
            entry("var/lib", Dir),
            entry("etc/b", File),
        ]);
        let merged = merge(&[base, top]);
        assert_eq!(
            paths(&merged),
            vec![
                ("etc", 0),
                ("etc/b", 1),
                ("opt", 0),
                ("opt/new", 1),
                ("var", 0),
                ("var/lib", 1),
            ]
        );
    }

    #[test]
    fn a_file_replacing_a_directory_removes_its_contents() {
        use EntryKind::*;
        let base = layer(vec![entry("d", Dir), entry("d/f", File), entry("dd", File)]);
        let top = layer(vec![entry("d", Symlink)]);
        assert_eq!(paths(&merge(&[base, top])), vec![("d", 1), ("dd", 0)]);
    }
}
