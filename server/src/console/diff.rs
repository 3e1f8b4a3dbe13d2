//! Image diff, the same in both modes: the references (tags or digests) resolved against the
//! stream, one platform of an index chosen, and what was read of the two images at push time
//! compared (run configuration, layers in order, size). Each mode reads images through
//! [`ImageSource`], which decides as a pull of the image does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use app::api::diff::{
    Change, Comparison, ConfigChange, ConfigField, DEFAULT_PLATFORM, DiffSide,
    FILE_CHANGES_PER_PAGE, FileAspect, FileChange, FileFilter, FileSide, FilesDiff, ImageDiff,
    LayerDiffRow, LayerPlace, RECENT_IMAGES, RefChoice,
};
use app::api::images::RunConfigView;
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::views::{attestation_for, platform_name, run_config_view, time};
use crate::imagestream::model::ImageStream;
use crate::layers::MergedEntry;
use crate::oci::Digest;
use crate::registry::image_metadata::{ImageMetadata, Layer};

/// Stacks longer than this are aligned by their common bottom only (the full alignment costs
/// the product of their lengths).
const MAX_ALIGNED_CELLS: usize = 1 << 20;

/// The images of one stream, as the caller may read them.
#[async_trait]
pub(crate) trait ImageSource: Sync {
    /// What was read of an image of the stream at push time; refused as a pull of it would be,
    /// not found when the stream has no such image.
    async fn image(&self, digest: &Digest) -> ConsoleResult<ImageMetadata>;
}

/// The two images of a comparison, each with what was read of it at push time.
pub(crate) struct Picked {
    /// What the form offers and what was picked; no difference yet.
    pub comparison: Comparison,
    /// `None` when there is nothing to compare.
    pub sides: Option<[(DiffSide, ImageMetadata); 2]>,
}

/// Compares `from` with `to` (tags or digests of `object`; empty for the newest image and the
/// one before it) on `platform` (empty for linux/amd64, else the first an index offers).
pub(crate) async fn compare(
    source: &dyn ImageSource,
    namespace: &str,
    stream: &str,
    object: &ImageStream,
    refs: (&str, &str, &str),
) -> ConsoleResult<Comparison> {
    let Picked {
        mut comparison,
        sides,
    } = pick(source, namespace, stream, object, refs).await?;
    if let Some([(from, from_image), (to, to_image)]) = sides {
        comparison.diff = Some(image_diff(from, &from_image, to, &to_image));
    }
    Ok(comparison)
}

/// The images `from` and `to` name (see [`compare`]), the platform's of an index.
pub(crate) async fn pick(
    source: &dyn ImageSource,
    namespace: &str,
    stream: &str,
    object: &ImageStream,
    (from, to, platform): (&str, &str, &str),
) -> ConsoleResult<Picked> {
    let history = history(object);
    let to = match to.trim() {
        "" => history.first().map(|(_, _, image)| image.clone()),
        to => Some(to.to_owned()),
    };
    let from = match (from.trim(), &to) {
        ("", Some(to)) => previous(object, &history, to)?,
        ("", None) => None,
        (from, _) => Some(from.to_owned()),
    };
    let mut comparison = Comparison {
        namespace: namespace.to_owned(),
        stream: stream.to_owned(),
        choices: choices(object, &history, [from.as_deref(), to.as_deref()]),
        from: from.clone().unwrap_or_default(),
        to: to.clone().unwrap_or_default(),
        platforms: Vec::new(),
        platform: None,
        diff: None,
    };
    let (Some(from), Some(to)) = (from, to) else {
        return Ok(Picked {
            comparison,
            sides: None,
        });
    };
    let (from_digest, to_digest) = (resolve(object, &from)?, resolve(object, &to)?);
    let (from_image, to_image) =
        tokio::try_join!(source.image(&from_digest), source.image(&to_digest))?;
    let platforms = platforms(&from_image, &to_image);
    let chosen = [platform.trim(), DEFAULT_PLATFORM]
        .into_iter()
        .find(|p| platforms.iter().any(|offered| offered == p))
        .map(str::to_owned)
        .or_else(|| platforms.first().cloned());
    let ((from_compared, from_image), (to_compared, to_image)) = tokio::try_join!(
        for_platform(source, &from_digest, from_image, chosen.as_deref()),
        for_platform(source, &to_digest, to_image, chosen.as_deref()),
    )?;
    let side = |reference: String, digest: &Digest, compared: Digest, image: &ImageMetadata| {
        let digest = digest.to_string();
        DiffSide {
            reference,
            tags: tags_naming(object, &digest),
            digest,
            compared: compared.to_string(),
            platform: platform_name(
                image.os.as_deref(),
                image.architecture.as_deref(),
                image.variant.as_deref(),
            ),
            size: image.size,
            created: image.created.clone(),
        }
    };
    let sides = [
        (
            side(from, &from_digest, from_compared, &from_image),
            from_image,
        ),
        (side(to, &to_digest, to_compared, &to_image), to_image),
    ];
    comparison.platforms = platforms;
    comparison.platform = chosen;
    Ok(Picked {
        comparison,
        sides: Some(sides),
    })
}

/// Two images compared: their run configuration, their layers and their size.
pub(crate) fn image_diff(
    from: DiffSide,
    from_image: &ImageMetadata,
    to: DiffSide,
    to_image: &ImageMetadata,
) -> ImageDiff {
    let view = |image: &ImageMetadata| image.run.as_ref().map(run_config_view).unwrap_or_default();
    let bytes = |image: &ImageMetadata| i64::try_from(image.size).unwrap_or(i64::MAX);
    ImageDiff {
        config: config_changes(&view(from_image), &view(to_image)),
        layers: layer_rows(&from_image.layers, &to_image.layers),
        size_delta: bytes(to_image).saturating_sub(bytes(from_image)),
        from,
        to,
    }
}

/// What changed in the run configuration: the entrypoint, command, user and working directory
/// as wholes; environment variables, labels, ports and volumes one by one.
pub(crate) fn config_changes(from: &RunConfigView, to: &RunConfigView) -> Vec<ConfigChange> {
    let mut changes = Vec::new();
    let argv = |args: &[String]| {
        (!args.is_empty()).then(|| serde_json::to_string(args).unwrap_or_default())
    };
    for (field, before, after) in [
        (
            ConfigField::Entrypoint,
            argv(&from.entrypoint),
            argv(&to.entrypoint),
        ),
        (ConfigField::Command, argv(&from.cmd), argv(&to.cmd)),
        (ConfigField::User, from.user.clone(), to.user.clone()),
        (
            ConfigField::WorkingDir,
            from.working_dir.clone(),
            to.working_dir.clone(),
        ),
    ] {
        if before != after {
            changes.push(ConfigChange {
                field,
                key: None,
                before,
                after,
            });
        }
    }
    // The runtime takes the last of a variable set twice.
    let env = |view: &RunConfigView| -> BTreeMap<String, String> {
        view.env
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (pair.clone(), String::new()),
            })
            .collect()
    };
    keyed_changes(&mut changes, ConfigField::Env, env(from), env(to));
    let set = |items: &[String]| -> BTreeMap<String, String> {
        items.iter().map(|i| (i.clone(), i.clone())).collect()
    };
    keyed_changes(
        &mut changes,
        ConfigField::Ports,
        set(&from.ports),
        set(&to.ports),
    );
    keyed_changes(
        &mut changes,
        ConfigField::Volumes,
        set(&from.volumes),
        set(&to.volumes),
    );
    let labels = |view: &RunConfigView| -> BTreeMap<String, String> {
        view.labels.iter().cloned().collect()
    };
    keyed_changes(&mut changes, ConfigField::Labels, labels(from), labels(to));
    changes
}

/// Each key added, removed or given another value, by key.
fn keyed_changes(
    changes: &mut Vec<ConfigChange>,
    field: ConfigField,
    mut from: BTreeMap<String, String>,
    mut to: BTreeMap<String, String>,
) {
    let keys: BTreeSet<String> = from.keys().chain(to.keys()).cloned().collect();
    for key in keys {
        let (before, after) = (from.remove(&key), to.remove(&key));
        if before != after {
            changes.push(ConfigChange {
                field,
                key: Some(key),
                before,
                after,
            });
        }
    }
}

/// Both stacks in order, bottom first: the longest run of layers they share in the same order
/// once, each image's other layers where they sit.
pub(crate) fn layer_rows(from: &[Layer], to: &[Layer]) -> Vec<LayerDiffRow> {
    let pairs = aligned(from, to);
    let mut rows = Vec::with_capacity(from.len() + to.len());
    let (mut f, mut t) = (0, 0);
    let only = |layer: &Layer, place: LayerPlace, position: usize| LayerDiffRow {
        digest: layer.digest.clone(),
        size: layer.size,
        place,
        from_position: (place == LayerPlace::OnlyFrom).then_some(position + 1),
        to_position: (place == LayerPlace::OnlyTo).then_some(position + 1),
    };
    for (pf, pt) in pairs.into_iter().chain([(from.len(), to.len())]) {
        rows.extend((f..pf).map(|i| only(&from[i], LayerPlace::OnlyFrom, i)));
        rows.extend((t..pt).map(|i| only(&to[i], LayerPlace::OnlyTo, i)));
        if let (Some(layer), true) = (from.get(pf), pt < to.len()) {
            rows.push(LayerDiffRow {
                digest: layer.digest.clone(),
                size: layer.size,
                place: LayerPlace::Shared,
                from_position: Some(pf + 1),
                to_position: Some(pt + 1),
            });
        }
        (f, t) = (pf + 1, pt + 1);
    }
    rows
}

/// The positions of the layers both stacks share, in order: their longest common subsequence
/// by digest (stacks too long for it: their common bottom).
fn aligned(from: &[Layer], to: &[Layer]) -> Vec<(usize, usize)> {
    let same = |i: usize, j: usize| from[i].digest == to[j].digest;
    if from.len().saturating_mul(to.len()) > MAX_ALIGNED_CELLS {
        return (0..from.len().min(to.len()))
            .take_while(|&i| same(i, i))
            .map(|i| (i, i))
            .collect();
    }
    // longest[i][j]: the longest common subsequence of from[i..] and to[j..].
    let width = to.len() + 1;
    let mut longest = vec![0u32; (from.len() + 1) * width];
    for i in (0..from.len()).rev() {
        for j in (0..to.len()).rev() {
            longest[i * width + j] = if same(i, j) {
                longest[(i + 1) * width + j + 1] + 1
            } else {
                longest[(i + 1) * width + j].max(longest[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j, mut pairs) = (0, 0, Vec::new());
    while i < from.len() && j < to.len() {
        if same(i, j) {
            pairs.push((i, j));
            (i, j) = (i + 1, j + 1);
        } else if longest[(i + 1) * width + j] >= longest[i * width + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

/// Every path added, removed or changed from one merged view to the other, by path.
pub(crate) fn file_changes(from: &[MergedEntry], to: &[MergedEntry]) -> Vec<FileChange> {
    let before: HashMap<&str, &MergedEntry> = from.iter().map(|e| (e.path.as_str(), e)).collect();
    let after: HashSet<&str> = to.iter().map(|e| e.path.as_str()).collect();
    let mut changes: Vec<FileChange> = to
        .iter()
        .filter_map(|entry| match before.get(entry.path.as_str()) {
            None => Some(FileChange {
                path: entry.path.clone(),
                change: Change::Added,
                before: None,
                after: Some(file_side(entry)),
                differs: Vec::new(),
            }),
            Some(old) => {
                let differs = differences(old, entry);
                (!differs.is_empty()).then(|| FileChange {
                    path: entry.path.clone(),
                    change: Change::Changed,
                    before: Some(file_side(old)),
                    after: Some(file_side(entry)),
                    differs,
                })
            }
        })
        .collect();
    changes.extend(
        from.iter()
            .filter(|entry| !after.contains(entry.path.as_str()))
            .map(|entry| FileChange {
                path: entry.path.clone(),
                change: Change::Removed,
                before: Some(file_side(entry)),
                after: None,
                differs: Vec::new(),
            }),
    );
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    changes
}

/// What differs in a path both views have (not its modification time: a rebuild changes it).
fn differences(before: &MergedEntry, after: &MergedEntry) -> Vec<FileAspect> {
    [
        (FileAspect::Kind, before.kind != after.kind),
        (FileAspect::Size, before.size != after.size),
        (FileAspect::Mode, before.mode != after.mode),
        (
            FileAspect::Owner,
            (before.uid, before.gid) != (after.uid, after.gid),
        ),
        (
            FileAspect::Content,
            before.content_digest != after.content_digest,
        ),
        (
            FileAspect::LinkTarget,
            before.link_target != after.link_target,
        ),
    ]
    .into_iter()
    .filter_map(|(aspect, differs)| differs.then_some(aspect))
    .collect()
}

fn file_side(entry: &MergedEntry) -> FileSide {
    FileSide {
        kind: entry.kind.as_str().to_owned(),
        mode: entry.mode,
        size: entry.size,
        uid: entry.uid,
        gid: entry.gid,
        content_digest: entry.content_digest.clone(),
        link_target: entry.link_target.clone(),
        layer: entry.layer,
    }
}

/// The counts of `changes`, and the page of those that pass `filter`.
pub(crate) fn files_page(
    changes: Vec<FileChange>,
    filter: &FileFilter,
    notes: Vec<String>,
) -> FilesDiff {
    let count = |change: Change| changes.iter().filter(|c| c.change == change).count();
    let (added, removed, changed) = (
        count(Change::Added),
        count(Change::Removed),
        count(Change::Changed),
    );
    let wanted = match filter.change.as_str() {
        "added" => Some(Change::Added),
        "removed" => Some(Change::Removed),
        "changed" => Some(Change::Changed),
        _ => None,
    };
    let path = filter.path.trim();
    let matching: Vec<FileChange> = changes
        .into_iter()
        .filter(|c| wanted.is_none_or(|w| c.change == w))
        .filter(|c| path.is_empty() || c.path.contains(path))
        .collect();
    let matched = matching.len();
    let offset = filter.offset.min(matched);
    FilesDiff {
        added,
        removed,
        changed,
        matched,
        offset,
        files: matching
            .into_iter()
            .skip(offset)
            .take(FILE_CHANGES_PER_PAGE)
            .collect(),
        notes,
    }
}

/// Every tag's items, newest first: (when, tag, image).
fn history(object: &ImageStream) -> Vec<(DateTime<Utc>, String, String)> {
    let mut items: Vec<_> = object
        .status
        .tags
        .iter()
        .flat_map(|tag| {
            tag.items
                .iter()
                .map(|item| (item.created, tag.tag.clone(), item.image.clone()))
        })
        .filter(|(_, _, image)| !image.is_empty())
        .collect();
    items.sort_by_key(|(created, ..)| std::cmp::Reverse(*created));
    items
}

/// The image before `to`: the tag's previous image when `to` is a tag, else the image the
/// stream had before it.
fn previous(
    object: &ImageStream,
    history: &[(DateTime<Utc>, String, String)],
    to: &str,
) -> ConsoleResult<Option<String>> {
    let digest = resolve(object, to)?.to_string();
    let tag_items = object.status.tags.iter().find(|t| t.tag == to);
    let images: Vec<&str> = match tag_items {
        Some(tag) => tag.items.iter().map(|item| item.image.as_str()).collect(),
        None => history.iter().map(|(_, _, image)| image.as_str()).collect(),
    };
    Ok(images
        .iter()
        .skip_while(|image| **image != digest)
        .find(|image| **image != digest)
        .map(|image| (*image).to_owned()))
}

/// The image a tag names now, or a digest as it is (whether the stream has it is the image
/// source's to say).
fn resolve(object: &ImageStream, reference: &str) -> ConsoleResult<Digest> {
    if let Ok(digest) = reference.parse::<Digest>() {
        return Ok(digest);
    }
    object
        .status
        .tags
        .iter()
        .find(|tag| tag.tag == reference)
        .and_then(|tag| tag.items.first())
        .and_then(|item| item.image.parse().ok())
        .ok_or_else(|| {
            ConsoleError::NotFound(format!(
                "{reference:?} is neither a tag of {} nor an image digest",
                object.metadata.name
            ))
        })
}

fn tags_naming(object: &ImageStream, digest: &str) -> Vec<String> {
    object
        .status
        .tags
        .iter()
        .filter(|tag| tag.items.first().is_some_and(|item| item.image == digest))
        .map(|tag| tag.tag.clone())
        .collect()
}

/// What the form offers: the tags, then the stream's recent images (and the references asked
/// for, when they are neither).
fn choices(
    object: &ImageStream,
    history: &[(DateTime<Utc>, String, String)],
    asked: [Option<&str>; 2],
) -> Vec<RefChoice> {
    let short = |digest: &str| app::format::short_digest(digest);
    let mut choices: Vec<RefChoice> = object
        .status
        .tags
        .iter()
        .filter_map(|tag| {
            let image = &tag.items.first()?.image;
            Some(RefChoice {
                value: tag.tag.clone(),
                label: format!("{} ({})", tag.tag, short(image)),
                is_tag: true,
            })
        })
        .collect();
    let mut seen = HashSet::new();
    choices.extend(
        history
            .iter()
            .filter(|(_, _, image)| seen.insert(image.clone()))
            .take(RECENT_IMAGES)
            .map(|(created, tag, image)| RefChoice {
                value: image.clone(),
                label: format!(
                    "{} · {tag} · {}",
                    short(image),
                    app::format::time(&time(*created))
                ),
                is_tag: false,
            }),
    );
    for reference in asked.into_iter().flatten() {
        if !choices.iter().any(|c| c.value == reference) {
            choices.push(RefChoice {
                value: reference.to_owned(),
                label: short(reference),
                is_tag: false,
            });
        }
    }
    choices
}

/// The platforms either image offers as an index (attestations are not platforms).
fn platforms(from: &ImageMetadata, to: &ImageMetadata) -> Vec<String> {
    let mut platforms: Vec<String> = Vec::new();
    for name in [from, to]
        .into_iter()
        .flat_map(|image| platform_children(image).into_iter().map(|(name, _)| name))
    {
        if !platforms.contains(&name) {
            platforms.push(name);
        }
    }
    platforms
}

/// An index's children that run somewhere, by platform.
fn platform_children(image: &ImageMetadata) -> Vec<(String, &str)> {
    image
        .manifests
        .iter()
        .filter(|child| attestation_for(child).is_none())
        .filter_map(|child| {
            let name = platform_name(
                child.os.as_deref(),
                child.architecture.as_deref(),
                child.variant.as_deref(),
            )?;
            Some((name, child.digest.as_str()))
        })
        .collect()
}

/// The image compared for `digest`: itself, or for an index its child of `platform` (else its
/// first platform's, which the page shows beside the other side's).
async fn for_platform(
    source: &dyn ImageSource,
    digest: &Digest,
    image: ImageMetadata,
    platform: Option<&str>,
) -> ConsoleResult<(Digest, ImageMetadata)> {
    let children = platform_children(&image);
    let child = children
        .iter()
        .find(|(name, _)| Some(name.as_str()) == platform)
        .or_else(|| children.first())
        .and_then(|(_, child)| child.parse::<Digest>().ok());
    match child {
        Some(child) => {
            let image = source.image(&child).await?;
            Ok((child, image))
        }
        None => Ok((digest.clone(), image)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::EntryKind;
    use crate::registry::image_metadata::RunConfig;

    fn layer(name: &str, size: u64) -> Layer {
        Layer {
            digest: format!("sha256:{name}"),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size,
        }
    }

    fn side(reference: &str) -> DiffSide {
        DiffSide {
            reference: reference.into(),
            digest: format!("sha256:{reference}"),
            compared: format!("sha256:{reference}"),
            platform: Some("linux/amd64".into()),
            size: 0,
            created: None,
            tags: Vec::new(),
        }
    }

    fn places(rows: &[LayerDiffRow]) -> Vec<(String, LayerPlace)> {
        rows.iter()
            .map(|r| (r.digest.trim_start_matches("sha256:").to_owned(), r.place))
            .collect()
    }

    #[test]
    fn two_images_differ_in_config_layers_and_size() {
        let run = |env: &[&str], cmd: &[&str], labels: &[(&str, &str)], ports: &[&str]| RunConfig {
            env: Some(env.iter().map(|e| (*e).to_owned()).collect()),
            cmd: Some(cmd.iter().map(|c| (*c).to_owned()).collect()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            exposed_ports: Some(
                ports
                    .iter()
                    .map(|p| ((*p).to_owned(), serde_json::json!({})))
                    .collect(),
            ),
            working_dir: Some("/app".into()),
            ..RunConfig::default()
        };
        let from = ImageMetadata {
            size: 1_000,
            layers: vec![layer("base", 700), layer("deps", 200), layer("app1", 100)],
            run: Some(run(
                &["PATH=/usr/bin", "MODE=dev", "OLD=1"],
                &["serve"],
                &[("version", "1"), ("team", "web")],
                &["8080/tcp"],
            )),
            ..ImageMetadata::default()
        };
        let to = ImageMetadata {
            size: 1_250,
            layers: vec![layer("base", 700), layer("deps", 200), layer("app2", 350)],
            run: Some(RunConfig {
                user: Some("1001".into()),
                ..run(
                    &["PATH=/usr/bin", "MODE=prod", "NEW=yes"],
                    &["serve", "--port", "9090"],
                    &[("version", "2"), ("team", "web")],
                    &["9090/tcp"],
                )
            }),
            ..ImageMetadata::default()
        };
        let diff = image_diff(side("a"), &from, side("b"), &to);
        assert_eq!(diff.size_delta, 250);
        assert_eq!(
            places(&diff.layers),
            [
                ("base".into(), LayerPlace::Shared),
                ("deps".into(), LayerPlace::Shared),
                ("app1".into(), LayerPlace::OnlyFrom),
                ("app2".into(), LayerPlace::OnlyTo),
            ]
        );
        assert_eq!(diff.layers[3].to_position, Some(3));
        type Change<'a> = (
            ConfigField,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let changes: Vec<Change> = diff
            .config
            .iter()
            .map(|c| {
                (
                    c.field,
                    c.key.as_deref(),
                    c.before.as_deref(),
                    c.after.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            changes,
            [
                (
                    ConfigField::Command,
                    None,
                    Some(r#"["serve"]"#),
                    Some(r#"["serve","--port","9090"]"#)
                ),
                (ConfigField::User, None, None, Some("1001")),
                (ConfigField::Env, Some("MODE"), Some("dev"), Some("prod")),
                (ConfigField::Env, Some("NEW"), None, Some("yes")),
                (ConfigField::Env, Some("OLD"), Some("1"), None),
                (ConfigField::Ports, Some("8080/tcp"), Some("8080/tcp"), None),
                (ConfigField::Ports, Some("9090/tcp"), None, Some("9090/tcp")),
                (ConfigField::Labels, Some("version"), Some("1"), Some("2")),
            ]
        );
        assert_eq!(
            diff.config
                .iter()
                .map(|c| c.change().label())
                .collect::<Vec<_>>(),
            [
                "changed", "added", "changed", "added", "removed", "removed", "added", "changed"
            ]
        );
        // The same image: nothing differs.
        let same = image_diff(side("a"), &from, side("a"), &from);
        assert!(same.config.is_empty());
        assert!(same.layers.iter().all(|r| r.place == LayerPlace::Shared));
        assert_eq!(same.size_delta, 0);
    }

    fn merged(path: &str, kind: EntryKind, size: u64, mode: u32, content: &str) -> MergedEntry {
        MergedEntry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            size,
            mtime: 1,
            link_target: None,
            content_digest: (kind == EntryKind::File).then(|| format!("sha256:{content}")),
            layer: 0,
            layer_digest: "sha256:layer".into(),
            entry: 0,
        }
    }

    #[test]
    fn files_are_added_removed_or_changed_in_size_mode_or_content() {
        use EntryKind::{Dir, File};
        let from = [
            merged("etc", Dir, 0, 0o755, ""),
            merged("etc/app.conf", File, 10, 0o644, "a"),
            merged("usr/bin/tool", File, 100, 0o755, "t"),
            merged("var/old.log", File, 5, 0o644, "o"),
            merged("var/same.txt", File, 3, 0o644, "s"),
        ];
        let mut to = vec![
            merged("etc", Dir, 0, 0o700, ""),
            merged("etc/app.conf", File, 12, 0o644, "b"),
            merged("usr/bin/tool", File, 100, 0o4755, "t"),
            merged("usr/bin/new", File, 7, 0o755, "n"),
            merged("var/same.txt", File, 3, 0o644, "s"),
        ];
        // A rebuild's new modification times are no change.
        to[4].mtime = 99;
        let changes = file_changes(&from, &to);
        let seen: Vec<(&str, Change, Vec<FileAspect>)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.change, c.differs.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("etc", Change::Changed, vec![FileAspect::Mode]),
                (
                    "etc/app.conf",
                    Change::Changed,
                    vec![FileAspect::Size, FileAspect::Content]
                ),
                ("usr/bin/new", Change::Added, vec![]),
                ("usr/bin/tool", Change::Changed, vec![FileAspect::Mode]),
                ("var/old.log", Change::Removed, vec![]),
            ]
        );
        assert_eq!(changes[1].before.as_ref().map(|s| s.size), Some(10));
        assert_eq!(changes[1].after.as_ref().map(|s| s.size), Some(12));

        // Counts of all, a page of those the filter keeps.
        let page = files_page(changes.clone(), &FileFilter::default(), Vec::new());
        assert_eq!(
            (page.added, page.removed, page.changed, page.matched),
            (1, 1, 3, 5)
        );
        let filter = FileFilter {
            change: "changed".into(),
            path: "usr/".into(),
            offset: 0,
        };
        let page = files_page(changes.clone(), &filter, Vec::new());
        assert_eq!(page.matched, 1);
        assert_eq!(page.files[0].path, "usr/bin/tool");
        let past = FileFilter {
            offset: 99,
            ..FileFilter::default()
        };
        let page = files_page(changes, &past, Vec::new());
        assert_eq!((page.offset, page.files.len()), (5, 0));
    }

    #[test]
    fn a_large_diff_is_paged() {
        let to: Vec<MergedEntry> = (0..FILE_CHANGES_PER_PAGE + 5)
            .map(|i| merged(&format!("f{i:04}"), EntryKind::File, 1, 0o644, "x"))
            .collect();
        let page = files_page(file_changes(&[], &to), &FileFilter::default(), Vec::new());
        assert_eq!(page.matched, FILE_CHANGES_PER_PAGE + 5);
        assert_eq!(page.files.len(), FILE_CHANGES_PER_PAGE);
        let next = FileFilter {
            offset: FILE_CHANGES_PER_PAGE,
            ..FileFilter::default()
        };
        let page = files_page(file_changes(&[], &to), &next, Vec::new());
        assert_eq!(page.files.len(), 5);
    }

    #[test]
    fn layers_align_in_order_around_what_differs() {
        let stack = |names: &str| -> Vec<Layer> {
            names.chars().map(|c| layer(&c.to_string(), 1)).collect()
        };
        // A layer inserted in the middle, one dropped at the top.
        let rows = layer_rows(&stack("abcd"), &stack("abxc"));
        assert_eq!(
            places(&rows),
            [
                ("a".into(), LayerPlace::Shared),
                ("b".into(), LayerPlace::Shared),
                ("x".into(), LayerPlace::OnlyTo),
                ("c".into(), LayerPlace::Shared),
                ("d".into(), LayerPlace::OnlyFrom),
            ]
        );
        // Nothing shared; an empty side.
        let rows = layer_rows(&stack("ab"), &stack("cd"));
        assert_eq!(
            rows.iter().map(|r| r.place).collect::<Vec<_>>(),
            [
                LayerPlace::OnlyFrom,
                LayerPlace::OnlyFrom,
                LayerPlace::OnlyTo,
                LayerPlace::OnlyTo
            ]
        );
        assert!(layer_rows(&[], &[]).is_empty());
        assert_eq!(layer_rows(&stack("a"), &[]).len(), 1);
    }
}
