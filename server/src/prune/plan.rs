//! The plan of a prune or retention run, computed from the store's inventory without writing:
//! which history items go, and which images then go from each repository.
//!
//! A policy decides per stream which history items to remove (OpenShift's revisions and ages,
//! [`openshift`]; a retention policy's rules, `retention.rs`). What follows is the same for
//! both: an image stays in its repository when a remaining history item names it, when it was
//! pushed since the plan's `keep_since`, when the policy keeps it, or when it is a child of an
//! image that stays (an index's platforms), a referrer of one (its signatures, SBOMs) or the
//! subject of one; every other image of the repository goes, referrers and indexes before what
//! they name.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};

use crate::oci::{Digest, RepositoryName};
use crate::storage::lifecycle::{Inventory, InventoryImage, InventoryItem, InventoryStream};

/// A history item to remove.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedItem {
    pub id: i64,
    pub tag: String,
    /// The digest, or the pull spec of an image kept elsewhere.
    pub image: String,
    pub created: DateTime<Utc>,
}

/// What a plan removes from one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPlan {
    pub repository: RepositoryName,
    pub repository_id: i64,
    pub items: Vec<PlannedItem>,
    /// In the order they are to go.
    pub images: Vec<InventoryImage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Streams with something to remove, in namespace and name order.
    pub streams: Vec<StreamPlan>,
    /// Nothing pushed (or named by a history item made) since then goes.
    pub keep_since: DateTime<Utc>,
}

/// What a policy decided of one stream.
#[derive(Debug, Default)]
pub struct Decision {
    /// History items to remove.
    pub remove_items: HashSet<i64>,
    /// Images kept whatever else (by the policy's own rules).
    pub keep: HashSet<Digest>,
    /// Keep the images no history item ever named (pushed by digest only).
    pub keep_untracked: bool,
}

/// One stream as a policy sees it: its history items (per tag, newest first) and its images.
pub struct StreamView<'a> {
    pub stream: &'a InventoryStream,
    /// Tag by tag, each newest first.
    pub tags: BTreeMap<&'a str, Vec<&'a InventoryItem>>,
    pub images: Vec<&'a InventoryImage>,
    /// Tags whose spec imports from another registry.
    pub imported_tags: HashSet<&'a str>,
}

/// Makes the plan: `decide` is asked about each stream (`None`: nothing of it goes).
pub fn plan(
    inventory: &Inventory,
    keep_since: DateTime<Utc>,
    mut decide: impl FnMut(&StreamView<'_>) -> Option<Decision>,
) -> Plan {
    let mut items_of: HashMap<i64, Vec<&InventoryItem>> = HashMap::new();
    for item in &inventory.items {
        items_of.entry(item.repository_id).or_default().push(item);
    }
    let mut images_of: HashMap<i64, Vec<&InventoryImage>> = HashMap::new();
    for image in &inventory.images {
        images_of
            .entry(image.repository_id)
            .or_default()
            .push(image);
    }
    let mut imported_of: HashMap<i64, HashSet<&str>> = HashMap::new();
    for (repository_id, tag) in &inventory.imported_tags {
        imported_of
            .entry(*repository_id)
            .or_default()
            .insert(tag.as_str());
    }
    let mut children_of: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    for (index, child) in &inventory.children {
        children_of.entry(index).or_default().push(child);
    }

    let mut streams = Vec::new();
    for stream in &inventory.streams {
        let items = items_of.remove(&stream.repository_id).unwrap_or_default();
        let mut tags: BTreeMap<&str, Vec<&InventoryItem>> = BTreeMap::new();
        for item in &items {
            tags.entry(item.tag.as_str()).or_default().push(item);
        }
        let view = StreamView {
            stream,
            tags,
            images: images_of.remove(&stream.repository_id).unwrap_or_default(),
            imported_tags: imported_of
                .remove(&stream.repository_id)
                .unwrap_or_default(),
        };
        let Some(decision) = decide(&view) else {
            continue;
        };
        let planned = plan_stream(&view, &items, &decision, keep_since, &children_of);
        if !planned.items.is_empty() || !planned.images.is_empty() {
            streams.push(planned);
        }
    }
    Plan {
        streams,
        keep_since,
    }
}

fn plan_stream(
    view: &StreamView<'_>,
    items: &[&InventoryItem],
    decision: &Decision,
    keep_since: DateTime<Utc>,
    children_of: &HashMap<&Digest, Vec<&Digest>>,
) -> StreamPlan {
    // Items made since `keep_since` stay whatever the policy said (the store checks it again).
    let removed: Vec<&InventoryItem> = items
        .iter()
        .copied()
        .filter(|item| decision.remove_items.contains(&item.id) && item.created_at < keep_since)
        .collect();
    let removed_ids: HashSet<i64> = removed.iter().map(|item| item.id).collect();
    let named_ever: HashSet<&Digest> = items.iter().filter_map(|i| i.digest.as_ref()).collect();

    let mut kept: HashSet<&Digest> = HashSet::new();
    let mut queue: VecDeque<&Digest> = VecDeque::new();
    let roots = items
        .iter()
        .filter(|item| !removed_ids.contains(&item.id))
        .filter_map(|item| item.digest.as_ref())
        .chain(decision.keep.iter())
        .chain(view.images.iter().filter_map(|image| {
            let recent = image.pushed_at >= keep_since;
            let untracked = decision.keep_untracked && !named_ever.contains(&image.digest);
            (recent || untracked).then_some(&image.digest)
        }));
    for root in roots {
        if kept.insert(root) {
            queue.push_back(root);
        }
    }
    // Referrers in this repository by subject.
    let mut referrers_of: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    for image in &view.images {
        if let Some(subject) = &image.subject {
            referrers_of.entry(subject).or_default().push(&image.digest);
        }
    }
    let subject_of: HashMap<&Digest, &Digest> = view
        .images
        .iter()
        .filter_map(|image| Some((&image.digest, image.subject.as_ref()?)))
        .collect();
    while let Some(digest) = queue.pop_front() {
        let linked = children_of
            .get(digest)
            .into_iter()
            .flatten()
            .chain(referrers_of.get(digest).into_iter().flatten())
            .chain(subject_of.get(digest));
        for next in linked {
            if kept.insert(next) {
                queue.push_back(next);
            }
        }
    }

    let going: Vec<&InventoryImage> = view
        .images
        .iter()
        .copied()
        .filter(|image| !kept.contains(&image.digest))
        .collect();
    StreamPlan {
        repository: view.stream.repository.clone(),
        repository_id: view.stream.repository_id,
        items: removed
            .into_iter()
            .map(|item| PlannedItem {
                id: item.id,
                tag: item.tag.clone(),
                image: item
                    .digest
                    .as_ref()
                    .map(Digest::to_string)
                    .unwrap_or_default(),
                created: item.created_at,
            })
            .collect(),
        images: removal_order(going, children_of),
    }
}

/// Orders images to go so that each comes before those it names (an index before its children,
/// a referrer before its subject): when its turn comes, nothing still linked holds it.
fn removal_order(
    going: Vec<&InventoryImage>,
    children_of: &HashMap<&Digest, Vec<&Digest>>,
) -> Vec<InventoryImage> {
    let position: HashMap<&Digest, usize> = going
        .iter()
        .enumerate()
        .map(|(at, image)| (&image.digest, at))
        .collect();
    let mut named_by = vec![0usize; going.len()];
    let mut names: Vec<Vec<usize>> = vec![Vec::new(); going.len()];
    for (at, image) in going.iter().enumerate() {
        let targets = children_of
            .get(&image.digest)
            .into_iter()
            .flatten()
            .copied()
            .chain(image.subject.as_ref());
        for target in targets {
            if let Some(&to) = position.get(target) {
                names[at].push(to);
                named_by[to] += 1;
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..going.len()).filter(|&i| named_by[i] == 0).collect();
    let mut order = Vec::with_capacity(going.len());
    while let Some(at) = ready.pop_front() {
        order.push(at);
        for &to in &names[at] {
            named_by[to] -= 1;
            if named_by[to] == 0 {
                ready.push_back(to);
            }
        }
    }
    // Digests name their content, so there is no cycle; anything left goes last regardless.
    let placed: HashSet<usize> = order.iter().copied().collect();
    order.extend((0..going.len()).filter(|i| !placed.contains(i)));
    order.into_iter().map(|at| going[at].clone()).collect()
}

/// What `oc adm prune images` keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenShiftRules {
    /// `--keep-tag-revisions`: the newest revisions of each tag that stay.
    pub keep_tag_revisions: usize,
    /// `--keep-younger-than` as a time: streams made, items made and images pushed since then
    /// stay.
    pub keep_since: DateTime<Utc>,
    /// `--all`: images imported from other registries are candidates too.
    pub all_images: bool,
}

/// OpenShift's pruning of one stream: a stream made since `keep_since` is left whole; of each
/// tag, items made since then and the newest `keep_tag_revisions` stay, the rest go (the
/// newest only with all the others, so a tag never points at an image that its history lost);
/// an image no history item names is an image no stream references, and goes once old enough
/// (OpenShift's second stage). With `all_images` false, imported images stay.
pub fn openshift(rules: OpenShiftRules, view: &StreamView<'_>) -> Option<Decision> {
    if view.stream.created_at >= rules.keep_since {
        return None;
    }
    let mut decision = Decision::default();
    for items in view.tags.values() {
        let going: Vec<i64> = items
            .iter()
            .enumerate()
            .filter(|(revision, item)| {
                *revision >= rules.keep_tag_revisions && item.created_at < rules.keep_since
            })
            .map(|(_, item)| item.id)
            .collect();
        let newest_goes = items.first().is_some_and(|item| going.contains(&item.id));
        if newest_goes && going.len() < items.len() {
            // Only the newest with all the others (see above).
            decision
                .remove_items
                .extend(going.into_iter().filter(|id| *id != items[0].id));
        } else {
            decision.remove_items.extend(going);
        }
    }
    if !rules.all_images {
        keep_imported(view, &mut decision);
    }
    Some(decision)
}

/// `oc adm prune images --prune-over-size-limit`: in a namespace whose `LimitRange` bounds an
/// image's size (`openshift.io/Image` `max.storage`, `limit`), every history item and image of
/// an image larger than that goes, whatever its revision or age; nothing else does. `sizes` are
/// the images' stored bytes (config and layers). With `all_images` false, imported images stay.
pub fn over_size_limit(
    limit: Option<u64>,
    sizes: &HashMap<Digest, u64>,
    all_images: bool,
    view: &StreamView<'_>,
) -> Option<Decision> {
    let limit = limit?;
    let over = |digest: &Digest| sizes.get(digest).is_some_and(|size| *size > limit);
    let mut decision = Decision::default();
    decision.remove_items.extend(
        view.tags
            .values()
            .flatten()
            .filter(|item| item.digest.as_ref().is_some_and(over))
            .map(|item| item.id),
    );
    decision.keep.extend(
        view.images
            .iter()
            .filter(|image| !over(&image.digest))
            .map(|image| image.digest.clone()),
    );
    if !all_images {
        keep_imported(view, &mut decision);
    }
    Some(decision)
}

/// `--all=false`: images imported from other registries stay, and so do the history items of
/// tags that import.
fn keep_imported(view: &StreamView<'_>, decision: &mut Decision) {
    let imported_items = view
        .tags
        .iter()
        .filter(|(tag, _)| view.imported_tags.contains(*tag))
        .flat_map(|(_, items)| items.iter().filter_map(|item| item.digest.clone()));
    decision.keep.extend(imported_items);
    decision.keep.extend(
        view.images
            .iter()
            .filter(|image| image.imported)
            .map(|image| image.digest.clone()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn digest(seed: &str) -> Digest {
        Digest::sha256_of(seed.as_bytes())
    }

    struct Fixture {
        inventory: Inventory,
        now: DateTime<Utc>,
        next_id: i64,
    }

    impl Fixture {
        fn new() -> Self {
            let now = Utc::now();
            Fixture {
                inventory: Inventory {
                    streams: vec![InventoryStream {
                        repository_id: 1,
                        repository: "team/app".parse().unwrap(),
                        created_at: now - TimeDelta::days(30),
                    }],
                    ..Inventory::default()
                },
                now,
                next_id: 0,
            }
        }

        /// An image pushed `hours_ago`, with a history item under `tag` (none when empty).
        fn push(&mut self, tag: &str, seed: &str, hours_ago: i64) -> Digest {
            let at = self.now - TimeDelta::hours(hours_ago);
            self.image(seed, at, None);
            if !tag.is_empty() {
                self.next_id += 1;
                self.inventory.items.push(InventoryItem {
                    id: self.next_id,
                    repository_id: 1,
                    tag: tag.into(),
                    digest: Some(digest(seed)),
                    created_at: at,
                });
                // Newest first within a tag, as the store reads them.
                self.inventory
                    .items
                    .sort_by(|a, b| a.tag.cmp(&b.tag).then(b.id.cmp(&a.id)));
            }
            digest(seed)
        }

        fn image(&mut self, seed: &str, at: DateTime<Utc>, subject: Option<Digest>) {
            if self
                .inventory
                .images
                .iter()
                .any(|i| i.digest == digest(seed))
            {
                return;
            }
            self.inventory.images.push(InventoryImage {
                repository_id: 1,
                digest: digest(seed),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: 100,
                subject,
                pushed_at: at,
                pulled_at: None,
                imported: false,
            });
        }

        fn prune(&self, revisions: usize, all_images: bool) -> (Vec<String>, Vec<Digest>) {
            let rules = OpenShiftRules {
                keep_tag_revisions: revisions,
                keep_since: self.now - TimeDelta::hours(1),
                all_images,
            };
            let plan = plan(&self.inventory, rules.keep_since, |view| {
                openshift(rules, view)
            });
            let Some(stream) = plan.streams.first() else {
                return (Vec::new(), Vec::new());
            };
            (
                stream
                    .items
                    .iter()
                    .map(|i| format!("{}@{}", i.tag, &i.image[7..11]))
                    .collect(),
                stream.images.iter().map(|i| i.digest.clone()).collect(),
            )
        }
    }

    fn short(d: &Digest) -> String {
        d.to_string()[7..11].to_owned()
    }

    #[test]
    fn revisions_beyond_the_newest_n_go_with_images_nothing_else_names() {
        let mut f = Fixture::new();
        let v: Vec<Digest> = (1..=5)
            .map(|n| f.push("latest", &format!("v{n}"), 20 - n))
            .collect();
        // v1 is also `stable`'s only revision.
        f.push("stable", "v1", 10);
        let (items, images) = f.prune(3, true);
        assert_eq!(
            items,
            [
                format!("latest@{}", short(&v[1])),
                format!("latest@{}", short(&v[0]))
            ]
        );
        assert_eq!(images, [v[1].clone()]);
    }

    #[test]
    fn over_the_size_limit_every_revision_and_image_larger_than_it_goes_whatever_its_age() {
        let mut f = Fixture::new();
        let small_old = f.push("latest", "small-old", 30);
        let big = f.push("latest", "big", 20);
        let small_new = f.push("latest", "small-new", 0);
        let big_untagged = f.push("", "big-untagged", 0);
        let big_stable = f.push("stable", "big-stable", 0);
        let sizes: HashMap<Digest, u64> = [
            (&small_old, 10),
            (&big, 1000),
            (&small_new, 100),
            (&big_untagged, 101),
            (&big_stable, 5000),
        ]
        .into_iter()
        .map(|(digest, size)| (digest.clone(), size))
        .collect();
        let pruned = |limit: Option<u64>| {
            // A prune over the size limit keeps only what is pushed after it starts.
            let plan = plan(&f.inventory, f.now + TimeDelta::seconds(1), |view| {
                over_size_limit(limit, &sizes, true, view)
            });
            plan.streams
                .first()
                .map(|stream| {
                    let mut items: Vec<String> = stream
                        .items
                        .iter()
                        .map(|i| format!("{}@{}", i.tag, &i.image[7..11]))
                        .collect();
                    items.sort();
                    let mut images: Vec<Digest> =
                        stream.images.iter().map(|i| i.digest.clone()).collect();
                    images.sort();
                    (items, images)
                })
                .unwrap_or_default()
        };
        let mut going = vec![big.clone(), big_untagged.clone(), big_stable.clone()];
        going.sort();
        assert_eq!(
            pruned(Some(100)),
            (
                vec![
                    format!("latest@{}", short(&big)),
                    format!("stable@{}", short(&big_stable))
                ],
                going
            )
        );
        // Without a limit in the namespace, nothing goes.
        assert_eq!(pruned(None), (Vec::new(), Vec::new()));
    }

    #[test]
    fn young_items_and_images_stay_and_a_young_stream_is_left_whole() {
        let mut f = Fixture::new();
        let old = f.push("latest", "old", 48);
        let recent = f.push("latest", "recent", 0);
        let (items, images) = f.prune(0, true);
        // The newest revision is young; the old one goes.
        assert_eq!(items, [format!("latest@{}", short(&old))]);
        assert_eq!(images, [old]);
        let _ = recent;
        f.inventory.streams[0].created_at = f.now;
        assert_eq!(f.prune(0, true), (Vec::new(), Vec::new()));
    }

    #[test]
    fn untagged_images_go_once_old_but_children_and_referrers_of_kept_ones_stay() {
        let mut f = Fixture::new();
        let untagged = f.push("", "untagged", 5);
        let recent_untagged = f.push("", "recent", 0);
        let child = f.push("", "child", 5);
        let index = f.push("multi", "index", 5);
        f.inventory.children.push((index.clone(), child.clone()));
        let signature = digest("sig");
        f.image("sig", f.now - TimeDelta::hours(5), Some(index.clone()));
        // A referrer of an image that goes, goes first.
        let orphan_sig = digest("orphan-sig");
        f.image(
            "orphan-sig",
            f.now - TimeDelta::hours(5),
            Some(untagged.clone()),
        );
        let (items, images) = f.prune(3, true);
        assert!(items.is_empty());
        assert_eq!(images, [orphan_sig, untagged]);
        let _ = (recent_untagged, signature, child);
    }

    #[test]
    fn an_index_goes_before_its_children_and_a_young_referrer_keeps_its_subject() {
        let mut f = Fixture::new();
        let child = f.push("", "child", 5);
        let index = f.push("multi", "index", 5);
        f.push("multi", "newer", 4);
        f.inventory.children.push((index.clone(), child.clone()));
        let (items, images) = f.prune(1, true);
        assert_eq!(items, [format!("multi@{}", short(&index))]);
        assert_eq!(images, [index.clone(), child.clone()]);
        // A signature pushed just now keeps what it signs.
        f.image("sig", f.now, Some(index.clone()));
        let (_, images) = f.prune(1, true);
        assert!(images.is_empty(), "{images:?}");
    }

    #[test]
    fn the_newest_revision_goes_only_with_all_of_its_tag() {
        let mut f = Fixture::new();
        let a = f.push("latest", "a", 10);
        let b = f.push("latest", "b", 9);
        let (items, images) = f.prune(0, true);
        assert_eq!(items.len(), 2);
        assert_eq!(images.len(), 2);
        // Were the older revision young (a clock set back), the newest would stay with it.
        f.inventory.items.iter_mut().for_each(|item| {
            if item.digest.as_ref() == Some(&a) {
                item.created_at = f.now;
            }
        });
        let (items, _) = f.prune(0, true);
        assert!(items.is_empty(), "{items:?}");
        let _ = b;
    }

    #[test]
    fn imported_images_stay_unless_all() {
        let mut f = Fixture::new();
        let a = f.push("remote", "a", 10);
        f.push("remote", "b", 9);
        f.inventory.imported_tags.push((1, "remote".into()));
        let (items, images) = f.prune(1, false);
        assert_eq!(items.len(), 1);
        assert!(images.is_empty());
        let (_, images) = f.prune(1, true);
        assert_eq!(images, [a]);
    }
}
