//! What the console's forms become: the API bodies built from them (`oc tag`'s source and body,
//! a namespace, an image stream import, a tag immutability rule, a retention policy), an
//! import's answer as one outcome per tag, and a refusal of a form's body named by its labels.
//! Both modes send the same bodies.

use app::api::immutability::TagRuleForm;
use app::api::imports::{ImportOutcome, ImportRequest};
use app::api::prune::PruneOptions;
use app::api::retention::RetentionForm;
use app::api::{ConsoleError, ConsoleResult};

use crate::imagestream::model::{
    ImageLookupPolicy, ImageStream, ImageStreamImport, ImageStreamImportSpec, ImageStreamTag,
    TagImportPolicy, TagReference, kinds,
};
use crate::immutability::{ImmutableTagRule, ImmutableTagRuleSpec};
use crate::kube::{
    ApiError, Namespace, NamespaceSpec, NamespaceStatus, ObjectMeta, ObjectReference,
};
use crate::oci::Digest;
use crate::prune::retention::{RetentionPolicy, RetentionPolicySpec, RetentionRule, Selector};
use crate::prune::{ImagePrune, ImagePruneSpec};
use crate::storage::immutability::PatternLists;

/// Where `oc tag` takes an image from: `other:tag`, `stream@sha256:…`, or a bare digest (an
/// image of this stream, as a rollback names it).
pub(crate) fn tag_source(stream: &str, from: &str) -> Result<ObjectReference, ApiError> {
    let from = from.trim();
    let (kind, name) = if from.contains('@') {
        ("ImageStreamImage", from.to_owned())
    } else if from.parse::<Digest>().is_ok() {
        ("ImageStreamImage", format!("{stream}@{from}"))
    } else if from.contains(':') {
        ("ImageStreamTag", from.to_owned())
    } else if !from.is_empty() {
        ("ImageStreamTag", format!("{stream}:{from}"))
    } else {
        return Err(ApiError::BadRequest(
            "say which image to tag: a tag of this stream, <stream>:<tag>, <stream>@<digest> or a digest".into(),
        ));
    };
    Ok(ObjectReference {
        kind: kind.into(),
        namespace: String::new(),
        name,
    })
}

/// As `oc tag` does without --alias: a tag made from another tag takes that tag's current
/// image (`current`), and stays there when the source moves on.
pub(crate) fn pin_to_image(
    stream: &str,
    source: ObjectReference,
    current: Option<crate::imagestream::model::Image>,
) -> ConsoleResult<ObjectReference> {
    let (source_stream, _) = source.name.split_once(':').unwrap_or((stream, ""));
    let image = current
        .map(|image| image.metadata.name)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ConsoleError::Invalid(format!("{} has no image yet", source.name)))?;
    Ok(ObjectReference {
        kind: "ImageStreamImage".into(),
        namespace: String::new(),
        name: format!("{source_stream}@{image}"),
    })
}

/// The stream with the labels and annotations the console's form gives (replacing its own).
pub(crate) fn with_metadata(
    object: &mut ImageStream,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
) {
    object.metadata.labels = labels.into_iter().collect();
    object.metadata.annotations = annotations.into_iter().collect();
}

/// `oc tag`'s body: the tag takes its image from `source`.
pub(crate) fn tag_body(source: ObjectReference) -> ImageStreamTag {
    ImageStreamTag {
        kind: kinds::image_stream_tag(),
        api_version: kinds::image_api(),
        metadata: ObjectMeta::default(),
        tag: Some(TagReference {
            from: Some(source),
            ..TagReference::default()
        }),
        generation: 0,
        lookup_policy: ImageLookupPolicy::default(),
        conditions: Vec::new(),
        image: None,
    }
}

pub(crate) fn namespace_body(name: &str) -> Namespace {
    Namespace {
        kind: crate::kube::kinds::namespace(),
        api_version: crate::kube::kinds::core_api(),
        metadata: ObjectMeta {
            name: name.trim().to_owned(),
            ..ObjectMeta::default()
        },
        spec: NamespaceSpec::default(),
        status: NamespaceStatus::default(),
    }
}

/// The `ImageStreamImport` the import dialog asks for.
pub(crate) fn import_body(request: &ImportRequest) -> ImageStreamImport {
    let tag = request.tag.trim();
    let spec = ImageStreamImportSpec::new(
        &request.from,
        (!tag.is_empty()).then_some(tag),
        request.all_tags,
        TagImportPolicy {
            insecure: request.insecure,
            scheduled: request.scheduled,
            import_mode: String::new(),
        },
        request.local,
        !request.dry_run,
    );
    ImageStreamImport::new(request.stream.trim(), spec)
}

/// An import's answer as one outcome per tag; a repository that could not be read at all is
/// the error.
pub(crate) fn import_outcomes(answer: ImageStreamImport) -> ConsoleResult<Vec<ImportOutcome>> {
    if let Some(repository) = &answer.status.repository
        && repository.status.status != "Success"
    {
        return Err(ConsoleError::Invalid(repository.status.message.clone()));
    }
    let (stream, dry_run) = (answer.metadata.name.clone(), !answer.spec.import);
    let images = answer.status.images.into_iter().chain(
        answer
            .status
            .repository
            .into_iter()
            .flat_map(|repository| repository.images),
    );
    Ok(images
        .map(|image| {
            let failed = image.status.status != "Success";
            ImportOutcome {
                stream: stream.clone(),
                tag: image.tag,
                digest: image.image.map(|i| i.metadata.name),
                error: failed
                    .then(|| format!("{} ({})", image.status.message, image.status.reason)),
                dry_run,
            }
        })
        .collect())
}

/// Glob patterns typed in one field: separated by commas or white space, except the commas
/// of a `{a,b}` alternation, which belong to their pattern.
pub(crate) fn patterns(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c.is_whitespace() || (c == ',' && depth == 0) {
            if !current.is_empty() {
                found.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        found.push(current);
    }
    found
}

/// A refusal of a body made from a form, each field at fault named by the form's label
/// (`Tags: "{x" is not a valid pattern`) so that the message beside the form says which input
/// to fix: `labels` maps API fields (by prefix, the first that matches) to labels; other
/// refusals are the console's as usual.
pub(crate) fn form_refusal(err: ApiError, labels: &[(&str, &str)]) -> ConsoleError {
    let ApiError::Invalid { causes, .. } = &err else {
        return err.into();
    };
    let said: Vec<String> = causes
        .iter()
        .map(|cause| {
            let label = labels
                .iter()
                .find(|(field, _)| cause.field.starts_with(field))
                .map_or(cause.field.as_str(), |(_, label)| label);
            format!("{label}: {}", cause.message)
        })
        .collect();
    ConsoleError::Invalid(said.join("; "))
}

/// The labels of the immutability rule form, by the fields of an `ImmutableTagRule`.
pub(crate) const TAG_RULE_LABELS: &[(&str, &str)] = &[
    ("metadata.name", "Name"),
    ("spec.repositories.include", "Streams"),
    ("spec.repositories.exclude", "Except streams"),
    ("spec.tags.include", "Tags"),
    ("spec.tags.exclude", "Except tags"),
];

/// The `ImmutableTagRule` the console's form describes.
pub(crate) fn tag_rule_body(form: &TagRuleForm) -> ImmutableTagRule {
    ImmutableTagRule {
        metadata: ObjectMeta {
            name: form.name.trim().to_owned(),
            ..ObjectMeta::default()
        },
        spec: ImmutableTagRuleSpec {
            repositories: PatternLists {
                include: patterns(&form.streams),
                exclude: patterns(&form.exclude_streams),
            },
            tags: PatternLists {
                include: patterns(&form.tags),
                exclude: patterns(&form.exclude_tags),
            },
            disabled: false,
        },
        ..ImmutableTagRule::default()
    }
}

/// The labels of the retention policy form, by the fields of a `RetentionPolicy`.
pub(crate) const RETENTION_LABELS: &[(&str, &str)] = &[
    ("metadata.name", "Name"),
    ("spec.schedule", "Schedule"),
    ("spec.repositories.include", "Streams"),
    ("spec.repositories.exclude", "Except streams"),
    ("spec.rules[0].tags.include", "Tags"),
    ("spec.rules[0].tags.exclude", "Except tags"),
    ("spec.rules[0]", "Keep"),
];

/// The `RetentionPolicy` the console's form describes: one rule of what stays.
pub(crate) fn retention_body(form: &RetentionForm) -> ConsoleResult<RetentionPolicy> {
    let count = || {
        let text = form.count.trim();
        text.parse::<u32>().map_err(|_| {
            ConsoleError::Invalid(format!(
                "How many: {text:?} is not a whole number (0 to {})",
                u32::MAX
            ))
        })
    };
    let mut rule = RetentionRule {
        tags: Selector {
            include: patterns(&form.tags),
            exclude: patterns(&form.exclude_tags),
        },
        ..RetentionRule::default()
    };
    match form.keep.as_str() {
        "pushed" => rule.most_recently_pushed = Some(count()?),
        "pulled" => rule.most_recently_pulled = Some(count()?),
        "pushed_days" => rule.pushed_within_days = Some(count()?),
        "pulled_days" => rule.pulled_within_days = Some(count()?),
        "always" => rule.always = true,
        other => {
            return Err(ConsoleError::Invalid(format!(
                "Keep: {other:?} is not one of the choices"
            )));
        }
    }
    let schedule = form.schedule.trim();
    Ok(RetentionPolicy {
        metadata: ObjectMeta {
            name: form.name.trim().to_owned(),
            ..ObjectMeta::default()
        },
        spec: RetentionPolicySpec {
            schedule: (!schedule.is_empty()).then(|| schedule.to_owned()),
            suspend: false,
            repositories: Selector {
                include: patterns(&form.streams),
                exclude: patterns(&form.exclude_streams),
            },
            untagged: form.untagged,
            rules: vec![rule],
        },
        ..RetentionPolicy::default()
    })
}

/// The labels of the prune form, by the fields of an `ImagePrune`.
pub(crate) const PRUNE_LABELS: &[(&str, &str)] = &[
    ("spec.keepYoungerThan", "Keep younger than"),
    ("spec.keepTagRevisions", "Keep tag revisions"),
    ("spec.pruneOverSizeLimit", "Over the size limit"),
];

/// The `ImagePrune` the console's prune form describes, and the namespace it is narrowed to.
/// Over the size limit, revisions and age are not asked (`oc` takes neither with it).
pub(crate) fn prune_body(
    options: &PruneOptions,
    confirm: bool,
) -> ConsoleResult<(Option<String>, ImagePrune)> {
    let revisions = options.keep_tag_revisions.trim();
    let keep_tag_revisions = if revisions.is_empty() || options.over_size_limit {
        None
    } else {
        Some(revisions.parse::<u32>().map_err(|_| {
            ConsoleError::Invalid(format!(
                "Keep tag revisions: {revisions:?} is not a whole number"
            ))
        })?)
    };
    let younger = options.keep_younger_than.trim();
    let namespace = options.namespace.trim();
    Ok((
        (!namespace.is_empty()).then(|| namespace.to_owned()),
        ImagePrune {
            api_version: crate::prune::API_VERSION.into(),
            kind: "ImagePrune".into(),
            spec: ImagePruneSpec {
                keep_tag_revisions,
                keep_younger_than: (!younger.is_empty() && !options.over_size_limit)
                    .then(|| younger.to_owned()),
                all: Some(options.all),
                prune_over_size_limit: options.over_size_limit.then_some(true),
                confirm,
            },
            ..ImagePrune::default()
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oc_tag_sources() {
        let digest = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        let source = |from: &str| tag_source("app", from).map(|r| (r.kind, r.name));
        assert_eq!(
            source("other:v1").unwrap(),
            ("ImageStreamTag".into(), "other:v1".into())
        );
        assert_eq!(
            source(&format!("other@{digest}")).unwrap(),
            ("ImageStreamImage".into(), format!("other@{digest}"))
        );
        assert_eq!(
            source(digest).unwrap(),
            ("ImageStreamImage".into(), format!("app@{digest}"))
        );
        // A bare name is a tag of this stream, as `oc tag latest stable` reads it.
        assert_eq!(
            source("latest").unwrap(),
            ("ImageStreamTag".into(), "app:latest".into())
        );
        assert!(source("  ").is_err());
    }

    #[test]
    fn patterns_split_at_commas_and_spaces_but_not_inside_alternations() {
        assert_eq!(
            patterns(" v*, release-*  latest"),
            ["v*", "release-*", "latest"]
        );
        assert_eq!(patterns("{a,b}-*,c"), ["{a,b}-*", "c"]);
        assert!(patterns(" , ").is_empty());
    }

    #[test]
    fn a_prune_over_the_size_limit_asks_no_revisions_nor_age() {
        let mut options = PruneOptions {
            namespace: " team ".into(),
            keep_tag_revisions: "2".into(),
            keep_younger_than: "1h".into(),
            all: true,
            over_size_limit: false,
        };
        let (namespace, body) = prune_body(&options, false).unwrap();
        assert_eq!(namespace.as_deref(), Some("team"));
        assert_eq!(body.spec.keep_tag_revisions, Some(2));
        assert_eq!(body.spec.prune_over_size_limit, None);
        options.over_size_limit = true;
        let (_, body) = prune_body(&options, true).unwrap();
        assert_eq!(
            (
                body.spec.keep_tag_revisions,
                body.spec.keep_younger_than,
                body.spec.prune_over_size_limit,
                body.spec.confirm
            ),
            (None, None, Some(true), true)
        );
        options.over_size_limit = false;
        options.keep_tag_revisions = "some".into();
        assert!(matches!(
            prune_body(&options, false),
            Err(ConsoleError::Invalid(message)) if message.starts_with("Keep tag revisions: ")
        ));
    }

    #[test]
    fn refusals_name_the_form_labels() {
        let err = ApiError::Invalid {
            resource: crate::kube::IMMUTABLE_TAG_RULES,
            name: "r".into(),
            causes: vec![
                crate::kube::FieldError::new(
                    "spec.tags.include[1]",
                    "\"{x\" is not a valid pattern",
                ),
                crate::kube::FieldError::new("metadata.name", "too long"),
            ],
        };
        assert_eq!(
            form_refusal(err, TAG_RULE_LABELS),
            ConsoleError::Invalid("Tags: \"{x\" is not a valid pattern; Name: too long".into())
        );
    }
}
