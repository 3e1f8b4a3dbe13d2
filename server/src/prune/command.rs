//! `berth adm prune images`: an `ImagePrune` sent to a running Berth (cluster-wide, or one
//! namespace with `--namespace`), what it removed or would remove printed as `oc adm prune
//! images` prints it, with the bytes freed.

use anyhow::{Context, bail};

use super::{ImagePrune, ImagePruneSpec, PruneStatus};
use crate::cli::PruneImagesArgs;
use crate::kube::Status;

/// Sends the prune and prints its answer.
pub async fn prune_images(args: PruneImagesArgs) -> anyhow::Result<()> {
    if let Some(Err(why)) = args
        .keep_younger_than
        .as_deref()
        .map(super::duration::parse)
    {
        bail!("--keep-younger-than: {why}");
    }
    let body = ImagePrune {
        api_version: super::API_VERSION.into(),
        kind: "ImagePrune".into(),
        spec: ImagePruneSpec {
            keep_tag_revisions: args.keep_tag_revisions,
            keep_younger_than: args.keep_younger_than.clone(),
            all: Some(args.all),
            prune_over_size_limit: args.prune_over_size_limit.then_some(true),
            confirm: args.confirm,
        },
        ..ImagePrune::default()
    };
    let server = args.server.trim_end_matches('/');
    let url = match &args.namespace {
        Some(namespace) => format!("{server}/apis/berth.io/v1/namespaces/{namespace}/imageprunes"),
        None => format!("{server}/apis/berth.io/v1/imageprunes"),
    };
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(args.insecure_skip_tls_verify)
        .build()?;
    if !args.confirm {
        eprintln!(
            "Dry run enabled - no modifications will be made. Add --confirm to remove images"
        );
    }
    let response = client
        .post(&url)
        .bearer_auth(&args.token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("reaching Berth at {}", args.server))?;
    if !response.status().is_success() {
        let status: Status = response
            .json()
            .await
            .context("reading Berth's answer (not a Status)")?;
        bail!("{} ({})", status.message, status.reason);
    }
    let answer: ImagePrune = response.json().await.context("reading Berth's answer")?;
    let status = answer.status.context("Berth's answer has no status")?;
    print!("{}", report(&status));
    for error in &status.errors {
        eprintln!("error: {error}");
    }
    if status.errors.is_empty() {
        Ok(())
    } else {
        bail!("{} steps failed", status.errors.len())
    }
}

/// What a prune removed, as `oc adm prune images` says it, and the summary line.
pub fn report(status: &PruneStatus) -> String {
    let mut out = String::new();
    for stream in &status.image_streams {
        let place = format!("{}/{}", stream.namespace, stream.name);
        if !stream.deleted_items.is_empty() {
            out += &format!(
                "Deleting {} items from image stream {place}\n",
                stream.deleted_items.len()
            );
            for item in &stream.deleted_items {
                out += &format!(
                    "  {place}:{} revision {} (created {})\n",
                    item.tag,
                    item.image,
                    item.created
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
        }
        for image in &stream.deleted_images {
            out += &format!(
                "Deleting manifest link {} in repository {place}\n",
                image.digest
            );
        }
    }
    let mut parts = Vec::new();
    if status.deleted_items > 0 {
        parts.push(format!(
            "deleted {} image stream tag item(s)",
            status.deleted_items
        ));
    }
    if status.deleted_images > 0 {
        parts.push(format!("deleted {} image(s)", status.deleted_images));
    }
    if status.skipped_images > 0 {
        parts.push(format!(
            "kept {} image(s) found in use again",
            status.skipped_images
        ));
    }
    let verb = if status.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let summary = if parts.is_empty() {
        "deleted 0 objects".to_owned()
    } else if status.dry_run {
        parts.join(", ").replace("deleted", verb)
    } else {
        parts.join(", ")
    };
    out += &format!(
        "Summary: {summary}; {} {} in {} blob(s) freed{}\n",
        human_bytes(status.bytes_freed),
        format_args!("({} bytes)", status.bytes_freed),
        status.blobs_freed,
        if status.dry_run {
            " when confirmed"
        } else {
            ""
        }
    );
    out
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::{PrunedImage, PrunedItem, PrunedStream};

    #[test]
    fn the_report_lists_items_and_images_then_the_bytes() {
        let status = PruneStatus {
            dry_run: true,
            image_streams: vec![PrunedStream {
                namespace: "team".into(),
                name: "app".into(),
                deleted_items: vec![PrunedItem {
                    tag: "latest".into(),
                    image: "sha256:aa".into(),
                    created: "2026-01-02T03:04:05Z".parse().unwrap(),
                }],
                deleted_images: vec![PrunedImage {
                    digest: "sha256:aa".into(),
                    media_type: "m".into(),
                }],
                deleted_tags: Vec::new(),
            }],
            deleted_items: 1,
            deleted_images: 1,
            blobs_freed: 2,
            bytes_freed: 3 * 1024 * 1024,
            ..PruneStatus::default()
        };
        assert_eq!(
            report(&status),
            "Deleting 1 items from image stream team/app\n\
             \x20 team/app:latest revision sha256:aa (created 2026-01-02T03:04:05Z)\n\
             Deleting manifest link sha256:aa in repository team/app\n\
             Summary: would delete 1 image stream tag item(s), would delete 1 image(s); \
             3.0 MiB (3145728 bytes) in 2 blob(s) freed when confirmed\n"
        );
    }
}
