//! Quotas with the real server and real clients: skopeo and podman pushes refused past a
//! `ResourceQuota` (`berth.io/storage`, `openshift.io/imagestreams`) and a `LimitRange`
//! (`openshift.io/Image` `max.storage`, `openshift.io/ImageStream` `max` of images and tags),
//! each with a `DENIED` naming the limit and the usage, the image stream API's refusals in
//! OpenShift's words; usage right after pushes and deletions (shared layers once, a refused
//! push counting nothing); and who may read and change them, with two real users. Runs on the
//! embedded stores and on PostgreSQL + S3 (`BERTH_TEST_STORAGE=postgres-s3`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::images::{ContainerEnv, raw_manifest, run, run_refused, skopeo_copy, umoci_image};
use common::remote::{RemoteRegistry, import_one_tag};
use common::{
    ALLOW_LOOPBACK, OCI_MANIFEST, TestServer, cause_fields, create_namespace, expect_json,
    expect_kube_status, expect_status, grant_user, image_blobs, item_names, json_of, manifest_of,
    push_blob, put_manifest, sha256,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CORE: &str = "/api/v1/namespaces";

fn quotas_path(namespace: &str) -> String {
    format!("{CORE}/{namespace}/resourcequotas")
}

fn ranges_path(namespace: &str) -> String {
    format!("{CORE}/{namespace}/limitranges")
}

fn resource_quota(name: &str, hard: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name},
        "spec": {"hard": hard},
    })
}

fn limit_range(name: &str, limits: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name},
        "spec": {"limits": limits},
    })
}

/// Bytes of a quantity as Berth writes one back: a number, or a whole number of `Ki`, `Mi`,
/// `Gi`.
fn bytes(quantity: &str) -> u64 {
    for (suffix, unit) in [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)] {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return number.parse::<u64>().unwrap() * unit;
        }
    }
    quantity.parse().unwrap()
}

/// What quota `name` of `namespace` says is used of `resource`, as the administrator reads it.
async fn used(server: &TestServer, namespace: &str, name: &str, resource: &str) -> String {
    let quota = json_of(server.get(&format!("{}/{name}", quotas_path(namespace)))).await;
    quota["status"]["used"][resource]
        .as_str()
        .unwrap_or_else(|| panic!("no usage of {resource}: {quota}"))
        .to_owned()
}

async fn used_bytes(server: &TestServer, namespace: &str) -> u64 {
    bytes(&used(server, namespace, "registry", "berth.io/storage").await)
}

/// Sets quota `registry` of `namespace` to `hard`, making or replacing it as the administrator.
async fn set_quota(server: &TestServer, namespace: &str, hard: Value) -> Value {
    let path = format!("{}/registry", quotas_path(namespace));
    let response = server.get(&path).send().await.unwrap();
    if response.status() == StatusCode::NOT_FOUND {
        expect_json(
            server
                .post(&quotas_path(namespace))
                .json(&resource_quota("registry", hard)),
            StatusCode::CREATED,
        )
        .await
    } else {
        expect_json(
            server.put(&path).json(&resource_quota("registry", hard)),
            StatusCode::OK,
        )
        .await
    }
}

/// `skopeo copy` of a local image to `docker://ADDR/reference`, which must be refused:
/// answers what skopeo said (its log quotes `"` as `\"`; unquoted here).
fn skopeo_refused(server: &TestServer, image: &str, reference: &str) -> String {
    let said = run_refused(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &server.creds(),
            &format!("oci:{image}"),
            &format!("docker://{}/{reference}", server.addr),
        ],
        &[],
    );
    said.replace("\\\"", "\"")
}

/// The size of a local image as OpenShift measures it: its config and layers.
fn image_size(image: &str) -> u64 {
    let manifest: Value =
        serde_json::from_str(&raw_manifest(&format!("oci:{image}"), None)).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    std::iter::once(&manifest["config"])
        .chain(layers)
        .map(|descriptor| descriptor["size"].as_u64().unwrap())
        .sum()
}

fn skopeo_push(server: &TestServer, image: &str, reference: &str) {
    skopeo_copy(
        &format!("oci:{image}"),
        &format!("docker://{}/{reference}", server.addr),
        &server.creds(),
    );
}

#[tokio::test]
async fn skopeo_and_podman_pushes_past_each_limit_are_refused_with_the_limit_named() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    // Images of one layer, and one of two layers (larger).
    let one = umoci_image(&layout, "one", "amd64", 1);
    let other = umoci_image(&layout, "other", "arm64", 1);
    let third = umoci_image(&layout, "third", "s390x", 1);
    let big = umoci_image(&layout, "big", "amd64", 2);
    for namespace in ["team", "lr"] {
        create_namespace(&server.client(), &server, namespace).await;
    }

    // berth.io/storage: a second image past the quota is refused and counts nothing; the same
    // image again (another tag, another stream) adds nothing and passes.
    set_quota(
        &server,
        "team",
        json!({"berth.io/storage": "1Gi", "openshift.io/imagestreams": 2}),
    )
    .await;
    skopeo_push(&server, &one, "team/app:v1");
    let first = used_bytes(&server, "team").await;
    assert!(first > image_size(&one), "{first}");
    set_quota(
        &server,
        "team",
        json!({"berth.io/storage": (first + 1000).to_string(), "openshift.io/imagestreams": 2}),
    )
    .await;
    let said = skopeo_refused(&server, &other, "team/app:v2");
    let expected = format!(
        "denied: namespace team: quota \"registry\" limits berth.io/storage to {}; ",
        first + 1000
    );
    assert!(said.contains(&expected), "{said}");
    assert!(said.contains(" used, this push adds "), "{said}");
    assert_eq!(used_bytes(&server, "team").await, first);
    expect_status(
        server.get("/v2/team/app/manifests/v2"),
        StatusCode::NOT_FOUND,
    )
    .await;
    skopeo_push(&server, &one, "team/app:again");
    skopeo_push(&server, &one, "team/web:v1");
    assert_eq!(used_bytes(&server, "team").await, first);

    // openshift.io/imagestreams: podman's push that would make a third stream is refused, and
    // so is the image stream API's create, in Kubernetes' words.
    set_quota(
        &server,
        "team",
        json!({"berth.io/storage": "1Gi", "openshift.io/imagestreams": 2}),
    )
    .await;
    let containers = ContainerEnv::new(&work.path().join("containers"), &server.addr);
    let vars = containers.vars();
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci:{other}"),
            "containers-storage:localhost/quota-test:v1",
        ],
        &vars,
    );
    run(
        "podman",
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "admin",
            "-p",
            &server.admin_token,
            &server.addr,
        ],
        &vars,
    );
    let said = run_refused(
        "podman",
        &[
            "push",
            "--tls-verify=false",
            "localhost/quota-test:v1",
            &format!("docker://{}/team/third:v1", server.addr),
        ],
        &vars,
    );
    assert!(
        said.contains(
            "denied: namespace team: quota \"registry\" limits openshift.io/imagestreams to 2; 2 used, this push adds 1"
        ),
        "{said}"
    );
    let refused = expect_kube_status(
        server
            .post("/apis/image.openshift.io/v1/namespaces/team/imagestreams")
            .json(&json!({"metadata": {"name": "fourth"}})),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    assert_eq!(
        refused["message"],
        "imagestreams.image.openshift.io \"fourth\" is forbidden: exceeded quota: registry, requested: openshift.io/imagestreams=1, used: openshift.io/imagestreams=2, limited: openshift.io/imagestreams=2"
    );
    assert_eq!(
        used(&server, "team", "registry", "openshift.io/imagestreams").await,
        "2"
    );
    // The refused push's layers were uploaded, but no stream was made.
    expect_kube_status(
        server.get("/apis/image.openshift.io/v1/namespaces/team/imagestreams/third"),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;

    // LimitRange: the largest image, and a stream's tags and images.
    let largest = image_size(&one)
        .max(image_size(&other))
        .max(image_size(&third));
    assert!(image_size(&big) > largest);
    expect_json(
        server.post(&ranges_path("lr")).json(&limit_range(
            "images",
            json!([
                {"type": "openshift.io/Image", "max": {"storage": largest.to_string()}},
                {"type": "openshift.io/ImageStream",
                 "max": {"openshift.io/image-tags": 2, "openshift.io/images": 2}},
            ]),
        )),
        StatusCode::CREATED,
    )
    .await;
    let said = skopeo_refused(&server, &big, "lr/app:v1");
    assert!(
        said.contains(&format!(
            "denied: namespace lr: limit range \"images\" limits openshift.io/Image storage to {largest}; this image is "
        )),
        "{said}"
    );
    skopeo_push(&server, &one, "lr/app:v1");
    skopeo_push(&server, &one, "lr/app:v2");
    let said = skopeo_refused(&server, &one, "lr/app:v3");
    assert!(
        said.contains(
            "denied: namespace lr: limit range \"images\" limits openshift.io/image-tags per openshift.io/ImageStream to 2; lr/app has 2, this push adds 1"
        ),
        "{said}"
    );
    // A tag moved to another image adds an image, not a tag; a third image is one too many.
    skopeo_push(&server, &other, "lr/app:v1");
    let said = skopeo_refused(&server, &third, "lr/app:v2");
    assert!(
        said.contains(
            "limits openshift.io/images per openshift.io/ImageStream to 2; lr/app has 2, this push adds 1"
        ),
        "{said}"
    );
    // `oc tag` through the API: OpenShift's limit range words.
    let refused = expect_kube_status(
        server
            .put("/apis/image.openshift.io/v1/namespaces/lr/imagestreamtags/app:v3")
            .json(&json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:v1"}}})),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    assert_eq!(
        refused["message"],
        "imagestreamtags.image.openshift.io \"app:v3\" is forbidden: requested usage of openshift.io/image-tags exceeds the maximum limit per openshift.io/ImageStream (3 > 2)"
    );
    let tags = json_of(server.get("/v2/lr/app/tags/list")).await;
    assert_eq!(tags["tags"], json!(["v1", "v2"]));
}

#[tokio::test]
async fn usage_counts_shared_layers_once_and_follows_pushes_and_deletions() {
    let server = TestServer::start();
    create_namespace(&server.client(), &server, "team").await;
    let quota = set_quota(&server, "team", json!({"berth.io/storage": "1Gi"})).await;
    assert_eq!(quota["status"]["hard"]["berth.io/storage"], "1Gi");
    assert_eq!(quota["status"]["used"]["berth.io/storage"], "0");

    // An image: its config, its layer and its manifest.
    let first = image_blobs("first");
    for blob in &first {
        push_blob(&server, "team/app", blob).await;
    }
    let first_manifest = manifest_of(&first);
    let response = put_manifest(&server, "team/app", "v1", OCI_MANIFEST, &first_manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let size = |blobs: &[&[u8]]| blobs.iter().map(|b| b.len() as u64).sum::<u64>();
    let mut expected = size(&[&first[0], &first[1], &first_manifest]);
    assert_eq!(used_bytes(&server, "team").await, expected);

    // Another image in another stream with the same layer: the layer counts once.
    let second = [image_blobs("second")[0].clone(), first[1].clone()];
    for blob in &second {
        push_blob(&server, "team/web", blob).await;
    }
    let second_manifest = manifest_of(&second);
    let response = put_manifest(&server, "team/web", "v1", OCI_MANIFEST, &second_manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    expected += size(&[&second[0], &second_manifest]);
    assert_eq!(used_bytes(&server, "team").await, expected);

    // Deleted, the first image takes its config and manifest away; the layer stays counted.
    expect_status(
        server.delete(&format!(
            "/v2/team/app/manifests/{}",
            sha256(&first_manifest)
        )),
        StatusCode::ACCEPTED,
    )
    .await;
    expected -= size(&[&first[0], &first_manifest]);
    assert_eq!(used_bytes(&server, "team").await, expected);

    // A push past the quota is refused with the quota's numbers, and counts nothing.
    set_quota(
        &server,
        "team",
        json!({"berth.io/storage": (expected + 10).to_string()}),
    )
    .await;
    let third = image_blobs("third");
    for blob in &third {
        push_blob(&server, "team/app", blob).await;
    }
    let third_manifest = manifest_of(&third);
    let response = put_manifest(&server, "team/app", "v3", OCI_MANIFEST, &third_manifest).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    let error = &body["errors"][0];
    assert_eq!(error["code"], "DENIED");
    assert_eq!(
        error["detail"],
        json!({
            "namespace": "team",
            "kind": "ResourceQuota",
            "name": "registry",
            "type": null,
            "resource": "berth.io/storage",
            "limit": expected + 10,
            "used": expected,
            "requested": size(&[&third[0], &third[1], &third_manifest]),
        })
    );
    assert_eq!(used_bytes(&server, "team").await, expected);

    // Deleting the streams takes everything away.
    for stream in ["app", "web"] {
        expect_kube_status(
            server.delete(&format!(
                "/apis/image.openshift.io/v1/namespaces/team/imagestreams/{stream}"
            )),
            StatusCode::OK,
            "",
        )
        .await;
    }
    assert_eq!(used_bytes(&server, "team").await, 0);
    assert_eq!(
        used(&server, "team", "registry", "berth.io/storage").await,
        "0"
    );
}

#[tokio::test]
async fn only_cluster_admins_change_quotas_and_members_read_their_own() {
    let server = TestServer::start();
    let alice = server.user("alice");
    let bob = server.user("bob");
    let carol = server.user("carol");
    // Each user makes a namespace and administers it.
    create_namespace(&alice, &server, "alice-ns").await;
    create_namespace(&bob, &server, "bob-ns").await;
    grant_user(&server, "alice-ns", "viewer", "carol").await;
    let quota = resource_quota("registry", json!({"berth.io/storage": "10Gi"}));
    let range = limit_range(
        "images",
        json!([{"type": "openshift.io/Image", "max": {"storage": "1Gi"}}]),
    );

    // A namespace admin creates no quota, in its namespace or any other.
    for (namespace, path, body) in [
        ("alice-ns", quotas_path("alice-ns"), &quota),
        ("bob-ns", quotas_path("bob-ns"), &quota),
        ("alice-ns", ranges_path("alice-ns"), &range),
    ] {
        let refused = expect_kube_status(
            alice.post(server.url(&path)).json(body),
            StatusCode::FORBIDDEN,
            "Forbidden",
        )
        .await;
        assert!(
            refused["message"].as_str().unwrap().ends_with(&format!(
                "User \"alice\" cannot create resource \"{}\" in API group \"\" in the namespace \"{namespace}\"",
                path.rsplit('/').next().unwrap()
            )),
            "{refused}"
        );
    }
    // Nor does an admin of the whole registry short of cluster-admin (OpenShift's `admin`
    // cluster role reads quotas only).
    let dora = server.user("dora");
    expect_json(
        server.post("/apis/access.berth.io/v1/rolebindings").json(
            &json!({"roleRef": {"name": "admin"}, "subject": {"kind": "User", "name": "dora"}}),
        ),
        StatusCode::CREATED,
    )
    .await;
    expect_kube_status(
        dora.post(server.url(&quotas_path("alice-ns"))).json(&quota),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    // The cluster administrator does.
    for namespace in ["alice-ns", "bob-ns"] {
        expect_json(
            server.post(&quotas_path(namespace)).json(&quota),
            StatusCode::CREATED,
        )
        .await;
        expect_json(
            server.post(&ranges_path(namespace)).json(&range),
            StatusCode::CREATED,
        )
        .await;
    }
    // Nor does the namespace admin raise, replace or delete its own.
    let raised = resource_quota("registry", json!({"berth.io/storage": "1Ti"}));
    for request in [
        alice
            .put(server.url(&format!("{}/registry", quotas_path("alice-ns"))))
            .json(&raised),
        alice.delete(server.url(&format!("{}/registry", quotas_path("alice-ns")))),
        alice
            .put(server.url(&format!("{}/images", ranges_path("alice-ns"))))
            .json(&range),
        alice.delete(server.url(&format!("{}/images", ranges_path("alice-ns")))),
        bob.delete(server.url(&format!("{}/registry", quotas_path("alice-ns")))),
    ] {
        expect_kube_status(request, StatusCode::FORBIDDEN, "Forbidden").await;
    }
    let kept = json_of(server.get(&format!("{}/registry", quotas_path("alice-ns")))).await;
    assert_eq!(kept["spec"]["hard"]["berth.io/storage"], "10Gi");

    // Members read their namespace's quotas, with what is used; nobody else's.
    for member in [&alice, &carol] {
        let list = expect_json(
            member.get(server.url(&quotas_path("alice-ns"))),
            StatusCode::OK,
        )
        .await;
        assert_eq!(list["kind"], "ResourceQuotaList");
        assert_eq!(item_names(&list), ["registry"]);
        assert_eq!(
            list["items"][0]["status"],
            json!({"hard": {"berth.io/storage": "10Gi"}, "used": {"berth.io/storage": "0"}})
        );
        let ranges = expect_json(
            member.get(server.url(&ranges_path("alice-ns"))),
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            ranges["items"][0]["spec"],
            json!({"limits": [{"type": "openshift.io/Image", "max": {"storage": "1Gi"}}]})
        );
    }
    for request in [
        alice.get(server.url(&quotas_path("bob-ns"))),
        alice.get(server.url(&format!("{}/registry", quotas_path("bob-ns")))),
        carol.get(server.url(&ranges_path("bob-ns"))),
        bob.get(server.url(&format!("{}/images", ranges_path("alice-ns")))),
    ] {
        expect_kube_status(request, StatusCode::FORBIDDEN, "Forbidden").await;
    }

    // The cluster administrator replaces (at the current resourceVersion only) and deletes.
    let path = format!("{}/registry", quotas_path("alice-ns"));
    let mut replacement = resource_quota("registry", json!({"berth.io/storage": "20Gi"}));
    replacement["metadata"]["resourceVersion"] = kept["metadata"]["resourceVersion"].clone();
    let replaced = expect_json(server.put(&path).json(&replacement), StatusCode::OK).await;
    assert_eq!(replaced["spec"]["hard"]["berth.io/storage"], "20Gi");
    assert_eq!(replaced["metadata"]["uid"], kept["metadata"]["uid"]);
    assert_ne!(
        replaced["metadata"]["resourceVersion"],
        kept["metadata"]["resourceVersion"]
    );
    expect_kube_status(
        server.put(&path).json(&replacement),
        StatusCode::CONFLICT,
        "Conflict",
    )
    .await;
    expect_kube_status(server.delete(&path), StatusCode::OK, "").await;
    expect_kube_status(server.get(&path), StatusCode::NOT_FOUND, "NotFound").await;

    // Bad specs are refused naming each field.
    let invalid = expect_kube_status(
        server.post(&quotas_path("alice-ns")).json(&resource_quota(
            "bad",
            json!({"pods": "10", "berth.io/storage": "10GB", "openshift.io/imagestreams": "-1"}),
        )),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    assert_eq!(
        cause_fields(&invalid),
        [
            "spec.hard[berth.io/storage]",
            "spec.hard[openshift.io/imagestreams]",
            "spec.hard[pods]"
        ]
    );
    let invalid = expect_kube_status(
        server.post(&ranges_path("alice-ns")).json(&limit_range(
            "bad",
            json!([{"type": "Container", "max": {"cpu": "1"}}]),
        )),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    assert_eq!(cause_fields(&invalid), ["spec.limits[0].type"]);
    expect_kube_status(
        server.post(&quotas_path("nowhere")).json(&quota),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;

    // Every change is in the audit log, with what it set.
    let audit = json_of(server.get("/apis/access.berth.io/v1/auditevents?limit=500")).await;
    let entries = audit["items"].as_array().unwrap();
    for action in [
        "resourcequota-create",
        "resourcequota-update",
        "resourcequota-delete",
        "limitrange-create",
    ] {
        assert!(
            entries.iter().any(|e| e["action"] == action),
            "{action} missing from {audit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_are_held_to_the_same_limits() {
    let dir = tempfile::tempdir().unwrap();
    let remote =
        RemoteRegistry::start(&dir.path().join("remote"), "remote-user", "remote-password").await;
    let image = umoci_image(&dir.path().join("layout"), "v1", "amd64", 2);
    remote.push(&format!("oci:{image}"), "team/app:v1", false);
    let server = TestServer::start_with(ALLOW_LOOPBACK);
    create_namespace(&server.client(), &server, "mirror").await;
    remote.pull_secret(&server, "mirror", "remote").await;
    let from = format!("{}/team/app:v1", remote.host);
    let imports = "/apis/image.openshift.io/v1/namespaces/mirror/imagestreamimports";

    // An image larger than the limit range allows: that image's import fails, Forbidden.
    let below = image_size(&image) - 1;
    expect_json(
        server.post(&ranges_path("mirror")).json(&limit_range(
            "images",
            json!([{"type": "openshift.io/Image", "max": {"storage": below}}]),
        )),
        StatusCode::CREATED,
    )
    .await;
    let answer = expect_json(
        server
            .post(imports)
            .json(&import_one_tag("app", &from, "v1")),
        StatusCode::CREATED,
    )
    .await;
    let status = &answer["status"]["images"][0]["status"];
    assert_eq!(
        (&status["status"], &status["reason"], &status["code"]),
        (&json!("Failure"), &json!("Forbidden"), &json!(403)),
        "{answer}"
    );
    assert_eq!(
        status["message"],
        format!(
            "requested usage of storage exceeds the maximum limit per openshift.io/Image ({} > {below})",
            image_size(&image)
        )
    );
    expect_json(
        server.delete(&format!("{}/images", ranges_path("mirror"))),
        StatusCode::OK,
    )
    .await;

    // An import that would make a stream past the quota is refused whole, as OpenShift's is.
    set_quota(
        &server,
        "mirror",
        json!({"openshift.io/imagestreams": 1, "berth.io/storage": "1Gi"}),
    )
    .await;
    expect_json(
        server
            .post(imports)
            .json(&import_one_tag("app", &from, "v1")),
        StatusCode::CREATED,
    )
    .await;
    let refused = expect_kube_status(
        server
            .post(imports)
            .json(&import_one_tag("other", &from, "v1")),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .ends_with("is forbidden: exceeded quota: registry, requested: openshift.io/imagestreams=1, used: openshift.io/imagestreams=1, limited: openshift.io/imagestreams=1"),
        "{refused}"
    );
    // The imported image counts at its declared size (its layers are fetched on first pull).
    let manifest = raw_manifest(&format!("oci:{image}"), None);
    assert_eq!(
        used_bytes(&server, "mirror").await,
        image_size(&image) + manifest.len() as u64
    );
}
