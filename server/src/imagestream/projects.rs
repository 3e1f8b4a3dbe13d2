//! Projects (`/apis/project.openshift.io/v1/projects`), as `oc login`, `oc project` and
//! `oc projects` read them: the namespaces the caller may see, each as OpenShift's `Project`
//! (a namespace under another kind). Read only: a project is made and deleted as a namespace.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::Api;
use crate::auth::http::Caller;
use crate::kube::{ApiError, ApiResult, ListParams, Namespace, ok};

const PROJECT_API: &str = "project.openshift.io/v1";

/// A namespace as the `Project` of its name.
fn project(mut namespace: Namespace) -> Namespace {
    namespace.kind = "Project".into();
    namespace.api_version = PROJECT_API.into();
    namespace
}

pub(super) async fn list_projects(
    State(api): Api,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = ListParams::parse(query)?;
        if params.watching() {
            return Err(ApiError::BadRequest(
                "projects cannot be watched here; watch namespaces (/api/v1/namespaces?watch=true)"
                    .into(),
            ));
        }
        let mut list = api
            .list_namespaces(&caller.subject, &params.page()?)
            .await?;
        list.kind = "ProjectList";
        list.api_version = PROJECT_API;
        list.items = list.items.into_iter().map(project).collect();
        ApiResult::Ok(list)
    };
    ok(result.await)
}

pub(super) async fn get_project(
    State(api): Api,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    ok(api.get_namespace(&caller.subject, &name).await.map(project))
}
