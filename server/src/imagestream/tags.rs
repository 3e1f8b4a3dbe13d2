//! ImageStreamTags (`stream:tag`): a tag's spec and current image, listed per namespace, read,
//! created or pointed elsewhere (how `oc tag` and a rollback to an earlier image work) and
//! deleted; and the record of what an import brought for a tag.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::changes::{change_error, resource_version};
use super::model::*;
use super::names::{repository, split_stream_tag};
use super::spec_tags::{normalize, stored_reference};
use super::{Api, ImageStreamApi};
use crate::auth::http::Caller;
use crate::auth::{Action, Subject, Target, Visible};
use crate::kube::{
    ApiError, ApiJson, ApiResult, FieldError, IMAGE_STREAM_IMPORTS, IMAGE_STREAM_TAGS, List,
    ListMeta, ListParams, ObjectMeta, Page, Patch, Put, Status, created, fill, ok, put,
};
use crate::oci::{Digest, Tag};
use crate::storage::{ImageRecord, Presence, SpecTagWrite, StreamChange, StreamRecord, TagTarget};

impl ImageStreamApi {
    /// An ImageStreamTag: the spec tag, and the tag's current image.
    fn tag_object(
        &self,
        stream: &StreamRecord,
        tag: &str,
        image: Option<&ImageRecord>,
    ) -> ImageStreamTag {
        let status = stream.status_tag(tag);
        let current = status.and_then(|s| s.items.first());
        ImageStreamTag {
            kind: kinds::image_stream_tag(),
            api_version: kinds::image_api(),
            metadata: ObjectMeta {
                name: format!("{}:{tag}", stream.name),
                namespace: Some(stream.namespace.clone()),
                uid: stream.uid.clone(),
                resource_version: stream.resource_version.to_string(),
                creation_timestamp: Some(current.map_or(stream.created_at, |c| c.created)),
                ..ObjectMeta::default()
            },
            tag: stream.spec_tag(tag).map(Self::spec_tag),
            generation: current.map_or(0, |c| c.generation),
            lookup_policy: ImageLookupPolicy {
                local: stream.lookup_local,
            },
            conditions: status.map(Self::conditions).unwrap_or_default(),
            image: image.map(|image| {
                let reference = current
                    .map(|c| self.pull_spec(&stream.namespace, &stream.name, c))
                    .unwrap_or_default();
                self.image_object(image, reference)
            }),
        }
    }

    /// The image the tag's newest item names, when this registry holds it.
    async fn current_image(
        &self,
        stream: &StreamRecord,
        tag: &str,
    ) -> ApiResult<Option<ImageRecord>> {
        let digest = stream
            .status_tag(tag)
            .and_then(|t| t.items.first())
            .and_then(|i| i.digest.clone());
        Ok(match digest {
            Some(digest) => self.store.get_image(&digest).await?,
            None => None,
        })
    }

    /// The stream holding ImageStreamTag `name` (`stream:tag`) and the tag, once `who` may
    /// `action` on the stream; not found unless the tag has a spec or an image.
    async fn existing_tag(
        &self,
        who: &Subject,
        action: Action,
        namespace: &str,
        name: &str,
    ) -> ApiResult<(StreamRecord, Tag)> {
        let (stream, tag) = split_stream_tag(name)?;
        self.auth.authorizer.require(
            who,
            action,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_TAGS,
            name,
        )?;
        let record = self
            .store
            .get_stream(namespace, &stream)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_TAGS, name))?;
        if record.status_tag(tag.as_str()).is_none() && record.spec_tag(tag.as_str()).is_none() {
            return Err(ApiError::not_found(IMAGE_STREAM_TAGS, name));
        }
        Ok((record, tag))
    }

    pub async fn get_tag(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ImageStreamTag> {
        let (record, tag) = self
            .existing_tag(who, Action::Pull, namespace, name)
            .await?;
        let image = self.current_image(&record, tag.as_str()).await?;
        Ok(self.tag_object(&record, tag.as_str(), image.as_ref()))
    }

    pub async fn list_tags(
        &self,
        who: &Subject,
        namespace: &str,
        page: &Page,
    ) -> ApiResult<List<ImageStreamTag>> {
        let visible = self.visible_streams(who, namespace)?;
        self.require_namespace(namespace).await?;
        let list = format!("imagestreamtags/{namespace}");
        let after = self.continue_tokens.start(page, &list, &who.key())?;
        let version = self.list_version().await?;
        let key = |(stream, tag): &(String, String)| format!("{stream}:{tag}");
        let store = &self.store;
        let (names, more) = fill(
            page.limit,
            after,
            visible != Visible::All,
            |after: Option<String>, count| async move {
                let after = after.as_deref().and_then(|a| a.rsplit_once(':'));
                Ok(store.list_stream_tags(namespace, after, count).await?)
            },
            key,
            |(stream, _)| visible.contains(stream),
        )
        .await?;
        // Each stream of the page, with only the page's tags.
        let mut streams: Vec<StreamRecord> = Vec::new();
        for (stream, _) in &names {
            if streams.iter().any(|s| &s.name == stream) {
                continue;
            }
            let wanted: Vec<String> = names
                .iter()
                .filter(|(s, _)| s == stream)
                .map(|(_, t)| t.clone())
                .collect();
            if let Some(record) = self
                .store
                .get_stream_tags(namespace, stream, &wanted)
                .await?
            {
                streams.push(record);
            }
        }
        let mut items = Vec::with_capacity(names.len());
        let digests: Vec<Digest> = streams
            .iter()
            .flat_map(|s| s.status_tags.iter())
            .filter_map(|t| t.items.first().and_then(|i| i.digest.clone()))
            .collect();
        let images = self.store.get_images(&digests).await?;
        for (stream, tag) in &names {
            let Some(record) = streams.iter().find(|s| &s.name == stream) else {
                continue;
            };
            let digest = record
                .status_tag(tag)
                .and_then(|t| t.items.first())
                .and_then(|i| i.digest.as_ref());
            let image = digest.and_then(|d| images.iter().find(|i| &i.digest == d));
            items.push(self.tag_object(record, tag, image));
        }
        Ok(List {
            kind: "ImageStreamTagList",
            api_version: IMAGE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(more, &list, who, names.last().map(key).as_deref()),
                ..ListMeta::default()
            },
            items,
        })
    }

    /// Creates (`create`: must be new) or updates a spec tag, pointing the tag where it says:
    /// how `oc tag` and a rollback to an earlier image work. Says whether the tag is new.
    pub async fn put_tag(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        body: ImageStreamTag,
        create: bool,
    ) -> ApiResult<Put<ImageStreamTag>> {
        let (stream, tag) = split_stream_tag(name)?;
        self.auth.authorizer.require(
            who,
            Action::Push,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_TAGS,
            name,
        )?;
        if !body.metadata.name.is_empty() && body.metadata.name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body.metadata.name
            )));
        }
        let repository = repository(namespace, &stream)?;
        self.require_namespace(namespace).await?;
        let reference = body.tag.ok_or_else(|| {
            ApiError::invalid(IMAGE_STREAM_TAGS, name, FieldError::new("tag", "required"))
        })?;
        let normalized = normalize(reference, tag.as_str(), IMAGE_STREAM_TAGS, name)?;
        let current = self.store.get_stream(namespace, &stream).await?;
        let exists = current.as_ref().is_some_and(|c| {
            c.spec_tag(tag.as_str()).is_some() || c.status_tag(tag.as_str()).is_some()
        });
        if create && exists {
            return Err(ApiError::AlreadyExists {
                resource: IMAGE_STREAM_TAGS,
                name: name.into(),
            });
        }
        let target = self
            .resolve(who, namespace, &normalized, IMAGE_STREAM_TAGS, name)
            .await?;
        let mut change = StreamChange::new(repository, Presence::Ensure, "tag");
        change.actor = Some(who.display_name());
        change.expected_resource_version =
            resource_version(&body.metadata.resource_version, IMAGE_STREAM_TAGS, name)?;
        change.set_spec_tags = vec![SpecTagWrite {
            name: tag.as_str().to_owned(),
            reference: stored_reference(&normalized)?,
            target,
        }];
        let record = self
            .store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAM_TAGS, name))?;
        let image = self.current_image(&record, tag.as_str()).await?;
        Ok(Put {
            object: self.tag_object(&record, tag.as_str(), image.as_ref()),
            created: !exists,
        })
    }

    /// A patch of a tag (`kubectl patch istag web:prod --type=merge -p
    /// '{"tag":{"from":...}}'`, `oc tag`'s effect), written as a `put_tag` of the patched tag.
    pub async fn patch_tag(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        patch: &Patch,
    ) -> ApiResult<ImageStreamTag> {
        let (stream, _) = split_stream_tag(name)?;
        self.require_patch(who, namespace, &stream, IMAGE_STREAM_TAGS, name)?;
        patch
            .update(
                IMAGE_STREAM_TAGS,
                name,
                |tag: &ImageStreamTag| &tag.metadata.resource_version,
                || self.get_tag(who, namespace, name),
                |patched| async {
                    Ok(self
                        .put_tag(who, namespace, name, patched, false)
                        .await?
                        .object)
                },
            )
            .await
    }

    /// Records what an import brought for `tag`: the spec tag (when new or changed) and the
    /// image as the tag's newest item, or a failure as the tag's `ImportSuccess` condition,
    /// the tag keeping its image. A re-import of an unchanged spec moves the status only.
    pub async fn record_import(
        &self,
        namespace: &str,
        stream: &str,
        tag: &Tag,
        reference: TagReference,
        outcome: Result<Digest, (&str, String)>,
    ) -> ApiResult<StreamRecord> {
        let repository = repository(namespace, stream)?;
        let normalized = normalize(reference, tag.as_str(), IMAGE_STREAM_IMPORTS, stream)?;
        let stored = stored_reference(&normalized)?;
        let current = self.store.get_stream(namespace, stream).await?;
        let existing = current.as_ref().and_then(|c| c.spec_tag(tag.as_str()));
        let spec_unchanged = existing.is_some_and(|existing| existing.reference == stored);
        let mut change = StreamChange::new(repository.clone(), Presence::Ensure, "import");
        let spec = |target| SpecTagWrite {
            name: tag.as_str().to_owned(),
            reference: stored.clone(),
            target,
        };
        match outcome {
            Ok(digest) => {
                let target = TagTarget::Local {
                    source: repository,
                    digest,
                };
                if spec_unchanged {
                    change.move_tags.push((tag.as_str().to_owned(), target));
                } else {
                    change.set_spec_tags.push(spec(Some(target)));
                }
                change.tag_conditions.push((tag.as_str().to_owned(), None));
            }
            Err((reason, message)) => {
                // As OpenShift (`ensureSpecTag` without reset): a failed import gives a new tag
                // its spec, and leaves an existing tag's `from` where it was.
                if existing.is_none() {
                    change.set_spec_tags.push(spec(None));
                }
                let condition = TagEventCondition {
                    condition_type: "ImportSuccess".into(),
                    status: "False".into(),
                    last_transition_time: Some(chrono::Utc::now()),
                    reason: reason.to_owned(),
                    message,
                    generation: current.as_ref().map_or(1, |c| c.generation),
                };
                let conditions = serde_json::to_string(&[condition])
                    .map_err(|err| ApiError::BadRequest(err.to_string()))?;
                change
                    .tag_conditions
                    .push((tag.as_str().to_owned(), Some(conditions)));
            }
        }
        self.store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAM_IMPORTS, stream))
    }

    pub async fn delete_tag(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Status> {
        let (record, tag) = self
            .existing_tag(who, Action::Delete, namespace, name)
            .await?;
        let mut change = StreamChange::new(
            repository(namespace, &record.name)?,
            Presence::Update,
            "untag",
        );
        change.remove_tags = vec![tag.as_str().to_owned()];
        self.store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAM_TAGS, name))?;
        self.audit(who, "imagestreamtag-delete", &format!("{namespace}/{name}"))
            .await;
        Ok(crate::kube::deleted(IMAGE_STREAM_TAGS, name))
    }
}

pub(super) async fn list_tags(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = ListParams::parse(query)?;
        api.list_tags(&caller.subject, &namespace, &params.page()?)
            .await
    };
    ok(result.await)
}

pub(super) async fn create_tag(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<ImageStreamTag>,
) -> Response {
    let name = body.metadata.name.clone();
    created(
        api.put_tag(&caller.subject, &namespace, &name, body, true)
            .await
            .map(|put| put.object),
    )
}

pub(super) async fn get_tag(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.get_tag(&caller.subject, &namespace, &name).await)
}

pub(super) async fn put_tag(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<ImageStreamTag>,
) -> Response {
    put(api
        .put_tag(&caller.subject, &namespace, &name, body, false)
        .await)
}

pub(super) async fn patch_tag(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    patch: Patch,
) -> Response {
    ok(api
        .patch_tag(&caller.subject, &namespace, &name, &patch)
        .await)
}

pub(super) async fn delete_tag(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.delete_tag(&caller.subject, &namespace, &name).await)
}
