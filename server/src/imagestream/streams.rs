//! ImageStreamApi: listed per namespace or across all (as their caller may see them), read,
//! created and updated with their spec tags resolved, and deleted with their tags.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::changes::{change_error, resource_version};
use super::model::*;
use super::names::{repository, stream_name_error};
use super::spec_tags::{normalize, stored_reference};
use super::watch::list_or_watch;
use super::{Api, ImageStreamApi};
use crate::auth::http::Caller;
use crate::auth::{Action, Subject, Target, Visible};
use crate::kube::{
    ApiError, ApiJson, ApiResult, FieldError, IMAGE_STREAMS, List, ListMeta, Page, Patch, Status,
    created, fill, ok,
};
use crate::limits::ClientAddress;
use crate::oci::{RepositoryName, Tag};
use crate::storage::{
    EventKind, Presence, SpecTagWrite, StreamChange, StreamChangeError, StreamRecord,
};

impl ImageStreamApi {
    /// The streams of a namespace `who` may see; refused when none could ever be.
    pub fn visible_streams(&self, who: &Subject, namespace: &str) -> ApiResult<Visible> {
        let visible = self.auth.authorizer.visible_streams(who, namespace);
        if visible == Visible::Only(Default::default()) {
            self.auth.authorizer.require(
                who,
                Action::Pull,
                Target::namespace(namespace),
                IMAGE_STREAMS,
                "",
            )?;
        }
        Ok(visible)
    }

    pub async fn list_streams(
        &self,
        who: &Subject,
        namespace: &str,
        page: &Page,
    ) -> ApiResult<List<ImageStream>> {
        let visible = self.visible_streams(who, namespace)?;
        self.require_namespace(namespace).await?;
        let list = format!("imagestreams/{namespace}");
        let after = self.continue_tokens.start(page, &list, &who.key())?;
        let from = after.as_deref();
        // The page, its version and (as Kubernetes gives for lists nothing was filtered from)
        // the count from the page's start, read at once.
        let count_from_start = async {
            match visible {
                Visible::All => self
                    .store
                    .count_streams_after(namespace, from.unwrap_or(""))
                    .await
                    .map(Some),
                Visible::Only(_) => Ok(None),
            }
        };
        let store = &self.store;
        let (version, (records, more), from_start) = tokio::try_join!(
            self.list_version(),
            fill(
                page.limit,
                after.clone(),
                visible != Visible::All,
                |after: Option<String>, count| async move {
                    Ok(store
                        .list_streams(namespace, after.as_deref(), count)
                        .await?)
                },
                |r: &StreamRecord| r.name.clone(),
                |r| visible.contains(&r.name),
            ),
            async { Ok::<_, ApiError>(count_from_start.await?) },
        )?;
        let count = records.len();
        let remaining_item_count = from_start
            .filter(|_| more)
            .map(|from_start| from_start.saturating_sub(count as u64));
        // A full last page needs no further (empty) one.
        let more = more && remaining_item_count != Some(0);
        let remaining_item_count = remaining_item_count.filter(|remaining| *remaining > 0);
        Ok(List {
            kind: "ImageStreamList",
            api_version: IMAGE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(
                    more,
                    &list,
                    who,
                    records.last().map(|r| r.name.as_str()),
                ),
                remaining_item_count,
            },
            items: records.iter().map(|r| self.stream_object(r)).collect(),
        })
    }

    /// Streams of every namespace `who` may see, paged by (namespace, name).
    pub async fn list_all_streams(
        &self,
        who: &Subject,
        page: &Page,
    ) -> ApiResult<List<ImageStream>> {
        const LIST: &str = "imagestreams";
        let after = self.continue_tokens.start(page, LIST, &who.key())?;
        let version = self.list_version().await?;
        let key = |r: &StreamRecord| format!("{}/{}", r.namespace, r.name);
        let store = &self.store;
        let (records, more) = fill(
            page.limit,
            after,
            self.auth.authorizer.visible_namespaces(who) != Visible::All,
            |after: Option<String>, count| async move {
                let after = after.as_deref().and_then(|a| a.split_once('/'));
                Ok(store.list_all_streams(after, count).await?)
            },
            key,
            |r| {
                self.auth.authorizer.allows(
                    who,
                    Action::Pull,
                    Target::stream(&r.namespace, &r.name),
                )
            },
        )
        .await?;
        Ok(List {
            kind: "ImageStreamList",
            api_version: IMAGE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(
                    more,
                    LIST,
                    who,
                    records.last().map(key).as_deref(),
                ),
                ..ListMeta::default()
            },
            items: records.iter().map(|r| self.stream_object(r)).collect(),
        })
    }

    pub async fn stream_record(&self, namespace: &str, name: &str) -> ApiResult<StreamRecord> {
        repository(namespace, name)?;
        self.store
            .get_stream(namespace, name)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAMS, name))
    }

    pub async fn get_stream(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ImageStream> {
        self.auth.authorizer.require(
            who,
            Action::Pull,
            Target::stream(namespace, name),
            IMAGE_STREAMS,
            name,
        )?;
        Ok(self.stream_object(&self.stream_record(namespace, name).await?))
    }

    /// The spec tags of `body` that differ from `current` (all of them for a new stream),
    /// resolved, and the names of those it drops.
    async fn spec_changes(
        &self,
        who: &Subject,
        namespace: &str,
        stream: &str,
        body: &[TagReference],
        current: Option<&StreamRecord>,
    ) -> ApiResult<(Vec<SpecTagWrite>, Vec<String>)> {
        let mut writes = Vec::new();
        for (i, tag) in body.iter().enumerate() {
            let field = format!("spec.tags[{i}].name");
            tag.name.parse::<Tag>().map_err(|err| {
                ApiError::invalid(
                    IMAGE_STREAMS,
                    stream,
                    FieldError::new(field, err.to_string()),
                )
            })?;
            let forced = tag.generation == Some(0);
            let normalized = normalize(tag.clone(), &tag.name, IMAGE_STREAMS, stream)?;
            let reference = stored_reference(&normalized)?;
            let unchanged = current
                .and_then(|c| c.spec_tag(&tag.name))
                .is_some_and(|existing| existing.reference == reference);
            if unchanged && !forced {
                continue;
            }
            let target = self
                .resolve(who, namespace, &normalized, IMAGE_STREAMS, stream)
                .await?;
            writes.push(SpecTagWrite {
                name: tag.name.clone(),
                reference,
                target,
            });
        }
        let removed = current
            .map(|c| {
                c.spec_tags
                    .iter()
                    .filter(|t| !body.iter().any(|b| b.name == t.name))
                    .map(|t| t.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok((writes, removed))
    }

    pub async fn create_stream(
        &self,
        who: &Subject,
        namespace: &str,
        body: ImageStream,
    ) -> ApiResult<ImageStream> {
        let name = body.metadata.name.clone();
        self.auth.authorizer.require(
            who,
            Action::Push,
            Target::stream(namespace, &name),
            IMAGE_STREAMS,
            &name,
        )?;
        if let Some(given) = body.metadata.namespace.as_deref()
            && !given.is_empty()
            && given != namespace
        {
            return Err(ApiError::BadRequest(format!(
                "the namespace of the object ({given}) does not match the namespace on the request ({namespace})"
            )));
        }
        let repository = RepositoryName::of_stream(namespace, &name)
            .map_err(|_| ApiError::invalid(IMAGE_STREAMS, &name, stream_name_error(&name)))?;
        self.require_namespace(namespace).await?;
        let (writes, _) = self
            .spec_changes(who, namespace, &name, &body.spec.tags, None)
            .await?;
        let mut change = StreamChange::new(repository, Presence::Create, "create");
        change.actor = Some(who.display_name());
        change.metadata = Some((body.metadata.labels, body.metadata.annotations));
        change.lookup_local = Some(body.spec.lookup_policy.local);
        change.set_spec_tags = writes;
        let record = self
            .store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAMS, &name))?;
        Ok(self.stream_object(&record))
    }

    pub async fn update_stream(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        body: ImageStream,
    ) -> ApiResult<ImageStream> {
        self.auth.authorizer.require(
            who,
            Action::Push,
            Target::stream(namespace, name),
            IMAGE_STREAMS,
            name,
        )?;
        if body.metadata.name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body.metadata.name
            )));
        }
        let given = resource_version(&body.metadata.resource_version, IMAGE_STREAMS, name)?;
        // Without a resourceVersion the update applies to the stream as it is when written: the
        // changes are computed against a read, and computed again if the stream moved since.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = self.stream_record(namespace, name).await?;
            let (writes, removed) = self
                .spec_changes(who, namespace, name, &body.spec.tags, Some(&current))
                .await?;
            let mut change =
                StreamChange::new(repository(namespace, name)?, Presence::Update, "update");
            change.actor = Some(who.display_name());
            change.expected_resource_version = Some(given.unwrap_or(current.resource_version));
            if body.metadata.labels != current.labels
                || body.metadata.annotations != current.annotations
            {
                change.metadata = Some((
                    body.metadata.labels.clone(),
                    body.metadata.annotations.clone(),
                ));
            }
            if body.spec.lookup_policy.local != current.lookup_local {
                change.lookup_local = Some(body.spec.lookup_policy.local);
            }
            change.set_spec_tags = writes;
            change.remove_tags = removed;
            match self.store.change_stream(&change).await? {
                Ok(record) => return Ok(self.stream_object(&record)),
                Err(StreamChangeError::Conflict { .. }) if given.is_none() && attempts < 5 => {}
                Err(err) => return Err(change_error(err, IMAGE_STREAMS, name)),
            }
        }
    }

    /// A patch of a stream (merge, JSON or strategic, as `kubectl apply` and `kubectl patch`
    /// send them), written as an update of the patched stream.
    pub async fn patch_stream(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        patch: &Patch,
    ) -> ApiResult<ImageStream> {
        self.require_patch(who, namespace, name, IMAGE_STREAMS, name)?;
        patch
            .update(
                IMAGE_STREAMS,
                name,
                |stream: &ImageStream| &stream.metadata.resource_version,
                || async { Ok(self.stream_object(&self.stream_record(namespace, name).await?)) },
                |patched| self.update_stream(who, namespace, name, patched),
            )
            .await
    }

    pub async fn delete_stream(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Status> {
        repository(namespace, name)?;
        self.auth.authorizer.require(
            who,
            Action::Delete,
            Target::stream(namespace, name),
            IMAGE_STREAMS,
            name,
        )?;
        if self.store.delete_stream(namespace, name).await? {
            self.audit(who, "imagestream-delete", &format!("{namespace}/{name}"))
                .await;
            Ok(crate::kube::deleted(IMAGE_STREAMS, name))
        } else {
            Err(ApiError::not_found(IMAGE_STREAMS, name))
        }
    }
}

pub(super) async fn list_streams(
    State(api): Api,
    caller: Caller,
    address: ClientAddress,
    Path(namespace): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    list_or_watch(
        api,
        caller.subject,
        address,
        query,
        EventKind::ImageStream,
        Some(namespace.clone()),
        |api, who, page| async move { api.list_streams(&who, &namespace, &page).await },
    )
    .await
}

/// Image streams of every namespace: a list paged by (namespace, name), or a watch.
pub(super) async fn list_all_streams(
    State(api): Api,
    caller: Caller,
    address: ClientAddress,
    RawQuery(query): RawQuery,
) -> Response {
    list_or_watch(
        api,
        caller.subject,
        address,
        query,
        EventKind::ImageStream,
        None,
        |api, who, page| async move { api.list_all_streams(&who, &page).await },
    )
    .await
}

pub(super) async fn create_stream(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<ImageStream>,
) -> Response {
    created(api.create_stream(&caller.subject, &namespace, body).await)
}

pub(super) async fn get_stream(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.get_stream(&caller.subject, &namespace, &name).await)
}

pub(super) async fn update_stream(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<ImageStream>,
) -> Response {
    ok(api
        .update_stream(&caller.subject, &namespace, &name, body)
        .await)
}

pub(super) async fn patch_stream(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    patch: Patch,
) -> Response {
    ok(api
        .patch_stream(&caller.subject, &namespace, &name, &patch)
        .await)
}

pub(super) async fn delete_stream(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.delete_stream(&caller.subject, &namespace, &name).await)
}
