//! `berth import-image`: an `ImageStreamImport` sent to a running Berth, its outcome printed
//! one line per tag, as `oc import-image` does.

use anyhow::{Context, bail};

use crate::cli::ImportImageArgs;
use crate::imagestream::model::{
    ImageImportStatus, ImageStreamImport, ImageStreamImportSpec, TagImportPolicy,
};
use crate::kube::Status;

/// Sends the import; `Ok(false)` when some image failed (each said on standard error).
pub async fn import_image(args: ImportImageArgs) -> anyhow::Result<bool> {
    let (namespace, stream_tag) = args.target.split_once('/').with_context(|| {
        format!(
            "{:?}: name the target as NAMESPACE/STREAM[:TAG]",
            args.target
        )
    })?;
    let (stream, tag) = match stream_tag.split_once(':') {
        Some((stream, tag)) => (stream, Some(tag)),
        None => (stream_tag, None),
    };
    if args.all && tag.is_some() {
        bail!(
            "--all imports every remote tag into tags of the same names: name the target as NAMESPACE/STREAM"
        );
    }
    let spec = ImageStreamImportSpec::new(
        &args.from,
        tag,
        args.all,
        TagImportPolicy {
            insecure: args.insecure,
            scheduled: args.scheduled,
            import_mode: String::new(),
        },
        args.reference_policy_local,
        !args.dry_run,
    );
    let body = ImageStreamImport::new(stream, spec);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(args.insecure_skip_tls_verify)
        .build()?;
    let url = format!(
        "{}/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreamimports",
        args.server.trim_end_matches('/')
    );
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
    let answer: ImageStreamImport = response.json().await.context("reading Berth's answer")?;
    let mut images = answer.status.images;
    if let Some(repository) = answer.status.repository {
        if repository.status.status != "Success" {
            eprintln!(
                "{}: {} ({})",
                args.from, repository.status.message, repository.status.reason
            );
            return Ok(false);
        }
        images.extend(repository.images);
    }
    let verb = if args.dry_run {
        "would import"
    } else {
        "imported"
    };
    let mut all_good = true;
    for image in &images {
        all_good &= report(namespace, stream, verb, image);
    }
    Ok(all_good)
}

/// One line for a tag: what it now names, or why it does not.
fn report(namespace: &str, stream: &str, verb: &str, image: &ImageImportStatus) -> bool {
    let place = format!("{namespace}/{stream}:{}", image.tag);
    if image.status.status != "Success" {
        eprintln!(
            "{place}: import failed: {} ({})",
            image.status.message, image.status.reason
        );
        return false;
    }
    match &image.image {
        Some(found) => {
            let layers = found.docker_image_layers.len();
            let platforms: Vec<String> = found
                .docker_image_manifests
                .iter()
                .map(|m| format!("{}/{}", m.os, m.architecture))
                .collect();
            let shape = if platforms.is_empty() {
                format!("{layers} layers")
            } else {
                platforms.join(", ")
            };
            println!("{place}: {verb} {} ({shape})", found.metadata.name);
        }
        None => println!("{place}: {verb}"),
    }
    true
}
