//! ImageStreamMappings: a write-only resource that points a tag at an image the stream's
//! repository holds already, as a push does.

use axum::extract::{Path, State};
use axum::response::Response;

use super::changes::change_error;
use super::model::ImageStreamMapping;
use super::names::{repository, stream_name_error};
use super::{Api, ImageStreamApi};
use crate::auth::http::Caller;
use crate::auth::{Action, Subject, Target};
use crate::kube::{
    ApiError, ApiJson, ApiResult, FieldError, IMAGE_STREAM_MAPPINGS, Status, created,
};
use crate::oci::{Digest, Tag};
use crate::storage::{Presence, StreamChange, TagTarget};

impl ImageStreamApi {
    /// Records that an image of the stream's repository is `tag` now, as a push does.
    pub async fn create_mapping(
        &self,
        who: &Subject,
        namespace: &str,
        body: ImageStreamMapping,
    ) -> ApiResult<Status> {
        let stream = body.metadata.name.clone();
        self.auth.authorizer.require(
            who,
            Action::Push,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_MAPPINGS,
            &stream,
        )?;
        let repository = repository(namespace, &stream).map_err(|_| {
            ApiError::invalid(IMAGE_STREAM_MAPPINGS, &stream, stream_name_error(&stream))
        })?;
        let tag = body.tag.parse::<Tag>().map_err(|err| {
            ApiError::invalid(
                IMAGE_STREAM_MAPPINGS,
                &stream,
                FieldError::new("tag", err.to_string()),
            )
        })?;
        let digest = body.image.metadata.name.parse::<Digest>().map_err(|err| {
            ApiError::invalid(
                IMAGE_STREAM_MAPPINGS,
                &stream,
                FieldError::new("image.metadata.name", err.to_string()),
            )
        })?;
        self.require_namespace(namespace).await?;
        if self
            .store
            .image_in_repository(&repository, &digest)
            .await?
            .is_none()
        {
            return Err(ApiError::invalid(
                IMAGE_STREAM_MAPPINGS,
                &stream,
                FieldError::new(
                    "image.metadata.name",
                    format!("image {digest} is not in {repository}; push it first"),
                ),
            ));
        }
        let mut change = StreamChange::new(repository.clone(), Presence::Ensure, "push");
        change.actor = Some(who.display_name());
        change.move_tags = vec![(
            tag.as_str().to_owned(),
            TagTarget::Local {
                source: repository,
                digest,
            },
        )];
        self.store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAM_MAPPINGS, &stream))?;
        let mut status = crate::kube::deleted(IMAGE_STREAM_MAPPINGS, &stream);
        status.code = 201;
        Ok(status)
    }
}

pub(super) async fn create_mapping(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<ImageStreamMapping>,
) -> Response {
    created(api.create_mapping(&caller.subject, &namespace, body).await)
}
