//! Tag immutability rules against the running server, with real clients: skopeo and podman
//! overwriting an immutable tag are `DENIED` with the rule named, a re-push of the same image
//! succeeds, a new matching tag is pushed and protected from then on; moves and deletes through
//! the registry and the image stream API are refused (a Forbidden `Status` naming the tag and
//! the rule); rules are managed by namespace admins only (two users, each admin of their own
//! namespace, see and change nothing of the other's), audited, checked field by field, updated
//! with a resourceVersion, previewed with `dryRun=All`; the console marks immutable tags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::images::{ContainerEnv, run, skopeo_copy, umoci_image};
use common::{
    ADMIN_PASSWORD, TestServer, console_session, create_namespace, expect_kube_status, grant_user,
    item_names, json_of, push_image, push_image_as,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const API: &str = "/apis/image.openshift.io/v1";

fn rules_path(namespace: &str) -> String {
    format!("/apis/berth.io/v1/namespaces/{namespace}/immutabletagrules")
}

/// A server with namespace `team`, and its administrator's client.
async fn with_team() -> (TestServer, reqwest::Client) {
    let server = TestServer::start();
    let admin = server.client();
    create_namespace(&admin, &server, "team").await;
    (server, admin)
}

/// A rule over every stream protecting tags `tags` (but not release candidates).
fn releases(name: &str, tags: &[&str]) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"tags": {"include": tags, "exclude": ["*-rc*"]}},
    })
}

/// Creates a rule as `client`, which must succeed; answers it.
async fn create_rule(
    client: &reqwest::Client,
    server: &TestServer,
    namespace: &str,
    rule: Value,
) -> Value {
    let response = client
        .post(server.url(&rules_path(namespace)))
        .json(&rule)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Runs a client that is expected to fail; answers what it printed.
fn run_failing(program: &str, args: &[&str], env: &[(&str, &std::path::Path)]) -> String {
    let mut command = Command::new(program);
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "{program} {args:?} succeeded: {printed}"
    );
    printed
}

/// Asserts that a client's output says the push was denied by rule `rule` for tag `tag`.
#[track_caller]
fn denied_by(printed: &str, tag: &str, rule: &str) {
    // skopeo writes its messages logfmt-quoted.
    let printed = printed.replace("\\\"", "\"");
    let lowered = printed.to_lowercase();
    assert!(lowered.contains("denied"), "{printed}");
    assert!(
        printed.contains(&format!("tag \"{tag}\""))
            && printed.contains(&format!("rule \"{rule}\"")),
        "{printed}"
    );
}

#[tokio::test]
async fn skopeo_and_podman_overwrites_of_an_immutable_tag_are_denied_with_the_rule_named() {
    let (server, admin) = with_team().await;
    let rule = create_rule(&admin, &server, "team", releases("releases", &["v*"])).await;
    // The default for streams, filled in.
    assert_eq!(rule["spec"]["repositories"]["include"], json!(["**"]));
    assert_eq!(rule["metadata"]["resourceVersion"], "1");

    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let one = umoci_image(&layout, "one", "amd64", 1);
    let two = umoci_image(&layout, "two", "amd64", 1);
    let creds = server.creds();
    let to = |tag: &str| format!("docker://{}/team/app:{tag}", server.addr);

    // The first push of a matching tag is allowed, and so is the same image again.
    skopeo_copy(&format!("oci:{one}"), &to("v1"), &creds);
    skopeo_copy(&format!("oci:{one}"), &to("v1"), &creds);
    let printed = run_failing(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{two}"),
            &to("v1"),
        ],
        &[],
    );
    denied_by(&printed, "v1", "releases");
    // Tags no rule matches move as before; a release candidate is excluded.
    skopeo_copy(&format!("oci:{one}"), &to("latest"), &creds);
    skopeo_copy(&format!("oci:{two}"), &to("latest"), &creds);
    skopeo_copy(&format!("oci:{one}"), &to("v2-rc1"), &creds);
    skopeo_copy(&format!("oci:{two}"), &to("v2-rc1"), &creds);

    // podman: the same refusal, and the same image pushed again is fine.
    let env = ContainerEnv::new(&work.path().join("containers"), &server.addr);
    let vars = env.vars();
    for (image, local) in [
        (&one, "localhost/immutable:one"),
        (&two, "localhost/immutable:two"),
    ] {
        run(
            "skopeo",
            &[
                "copy",
                &format!("oci:{image}"),
                &format!("containers-storage:{local}"),
            ],
            &vars,
        );
    }
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
    let podman_push = |local: &str, tag: &str| {
        vec![
            "push".to_owned(),
            "--tls-verify=false".to_owned(),
            local.to_owned(),
            to(tag),
        ]
    };
    let args = podman_push("localhost/immutable:two", "v1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    denied_by(&run_failing("podman", &args, &vars), "v1", "releases");
    // A new matching tag is pushed, then is immutable too; the same image again is fine
    // (podman writes its own manifest of an image from its storage: the same image as podman
    // pushed it, not as skopeo did).
    for (local, tag) in [
        ("localhost/immutable:two", "v2"),
        ("localhost/immutable:two", "v2"),
    ] {
        let args = podman_push(local, tag);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("podman", &args, &vars);
    }
    let args = podman_push("localhost/immutable:one", "v2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    denied_by(&run_failing("podman", &args, &vars), "v2", "releases");

    // v1 and v2 still name the images first pushed to them.
    let digest_of = |tag: &str| {
        common::images::skopeo_inspect(&["--format", "{{.Digest}}"], &to(tag), Some(creds.as_str()))
    };
    let one_digest =
        common::images::skopeo_inspect(&["--format", "{{.Digest}}"], &format!("oci:{one}"), None);
    assert_eq!(digest_of("v1"), one_digest);
    assert_ne!(digest_of("v2"), one_digest);
}

#[tokio::test]
async fn moves_and_deletes_of_an_immutable_tag_are_refused_by_the_registry_and_the_api() {
    let (server, admin) = with_team().await;
    let first = push_image(&server, "team/app", "v1", "first").await;
    let second = push_image(&server, "team/app", "latest", "second").await;
    create_rule(&admin, &server, "team", releases("releases", &["v*"])).await;

    // The registry: DENIED, with the repository, tag and rule in the error's detail.
    for reference in ["v1".to_owned(), first.clone()] {
        let response = server
            .delete(&format!("/v2/team/app/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{reference}");
        let body: Value = response.json().await.unwrap();
        let error = &body["errors"][0];
        assert_eq!(error["code"], "DENIED", "{body}");
        assert_eq!(
            error["detail"],
            json!({"repository": "team/app", "tag": "v1", "rule": "releases"})
        );
    }

    // The image stream API: `oc tag` of another image, untag, and the deletions that would take
    // the tag with them are Forbidden, naming the tag and the rule.
    let tag_path = server.url(&format!("{API}/namespaces/team/imagestreamtags/app:v1"));
    let refusals = [
        admin.put(&tag_path).json(&json!({
            "tag": {"from": {"kind": "ImageStreamImage", "name": format!("app@{second}")}}
        })),
        admin.put(&tag_path).json(&json!({
            "tag": {"from": {"kind": "DockerImage", "name": "elsewhere.example/app:v9"}}
        })),
        admin.delete(&tag_path),
        admin.delete(server.url(&format!("{API}/namespaces/team/imagestreams/app"))),
        admin.delete(server.url("/api/v1/namespaces/team")),
    ];
    for request in refusals {
        let status = expect_kube_status(request, StatusCode::FORBIDDEN, "Forbidden").await;
        let message = status["message"].as_str().unwrap();
        assert!(
            message.contains("\"app:v1\"") && message.contains("rule \"releases\""),
            "{message}"
        );
    }
    // Pointing the tag at the image it names already is no move.
    let response = admin
        .put(&tag_path)
        .json(
            &json!({"tag": {"from": {"kind": "ImageStreamImage", "name": format!("app@{first}")}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Unprotected tags move and go as before.
    let latest = server.url(&format!("{API}/namespaces/team/imagestreamtags/app:latest"));
    let response = admin
        .put(&latest)
        .json(
            &json!({"tag": {"from": {"kind": "ImageStreamImage", "name": format!("app@{first}")}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    expect_kube_status(admin.delete(&latest), StatusCode::OK, "").await;

    // The rule's status names what it protects; disabled, it protects nothing.
    let rule_path = server.url(&format!("{}/releases", rules_path("team")));
    let mut rule = json_of(admin.get(&rule_path)).await;
    assert_eq!(
        rule["status"],
        json!({"matchingTags": 1, "tags": ["app:v1"]})
    );
    rule["spec"]["disabled"] = json!(true);
    let response = admin.put(&rule_path).json(&rule).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    expect_kube_status(admin.delete(&tag_path), StatusCode::OK, "").await;
    let stream =
        json_of(admin.get(server.url(&format!("{API}/namespaces/team/imagestreams/app")))).await;
    // No status tag left (an empty list is left out).
    assert!(
        stream["status"]["tags"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{stream}"
    );
}

#[tokio::test]
async fn only_namespace_admins_manage_rules_and_bad_patterns_name_their_fields() {
    let server = TestServer::start();
    // Two tenants, each the admin of the namespace they made.
    let alice = server.user("alice");
    let bob = server.user("bob");
    create_namespace(&alice, &server, "alpha").await;
    create_namespace(&bob, &server, "beta").await;
    create_rule(&alice, &server, "alpha", releases("releases", &["v*"])).await;
    create_rule(&bob, &server, "beta", releases("stable", &["stable"])).await;

    // Neither sees, makes, changes nor deletes the other's.
    let beta_rules = server.url(&rules_path("beta"));
    let refused = [
        alice.get(&beta_rules),
        alice.get(format!("{beta_rules}/stable")),
        alice.post(&beta_rules).json(&releases("mine", &["**"])),
        alice
            .put(format!("{beta_rules}/stable"))
            .json(&releases("stable", &["**"])),
        alice.delete(format!("{beta_rules}/stable")),
    ];
    for request in refused {
        let status = expect_kube_status(request, StatusCode::FORBIDDEN, "Forbidden").await;
        assert_eq!(status["details"]["kind"], "immutabletagrules");
        assert_eq!(status["details"]["group"], "berth.io");
        assert!(!status.to_string().contains("\"stable\"]"), "{status}");
    }
    let listed = json_of(bob.get(&beta_rules)).await;
    assert_eq!(item_names(&listed), ["stable"]);
    assert_eq!(listed["kind"], "ImmutableTagRuleList");

    // An editor of alpha pushes but does not manage rules, and is held by them.
    let carol_token = server.add_user("carol", "carol-password", &[]);
    let carol = common::client_with_token(&carol_token);
    grant_user(&server, "alpha", "editor", "carol").await;
    let alpha_rules = server.url(&rules_path("alpha"));
    expect_kube_status(carol.get(&alpha_rules), StatusCode::FORBIDDEN, "Forbidden").await;
    assert_eq!(
        push_image_as(&carol, &server, "alpha/app", "v1", "first").await,
        StatusCode::CREATED
    );
    assert_eq!(
        push_image_as(&carol, &server, "alpha/app", "v1", "second").await,
        StatusCode::FORBIDDEN
    );

    // Every bad field named; taken names, missing namespaces, stale versions.
    let body = expect_kube_status(
        alice.post(&alpha_rules).json(&json!({
            "metadata": {"name": "Bad_Name"},
            "spec": {
                "repositories": {"include": ["team/{a,b"], "exclude": [""]},
                "tags": {"include": [], "exclude": ["[z-a]"]},
            },
        })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    let causes = body["details"]["causes"].as_array().unwrap();
    let fields: Vec<&str> = causes
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "metadata.name",
            "spec.tags.include",
            "spec.repositories.include[0]",
            "spec.repositories.exclude[0]",
            "spec.tags.exclude[0]"
        ]
    );
    assert!(
        causes[2]["message"]
            .as_str()
            .unwrap()
            .contains("unclosed alternate"),
        "{body}"
    );
    expect_kube_status(
        alice
            .post(&alpha_rules)
            .json(&releases("releases", &["**"])),
        StatusCode::CONFLICT,
        "AlreadyExists",
    )
    .await;
    expect_kube_status(
        server
            .client()
            .post(server.url(&rules_path("nowhere")))
            .json(&releases("r", &["**"])),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    let rule_path = format!("{alpha_rules}/releases");
    let mut rule = json_of(alice.get(&rule_path)).await;
    rule["spec"]["tags"]["include"] = json!(["v*", "release-*"]);
    rule["metadata"]["resourceVersion"] = json!("7");
    expect_kube_status(
        alice.put(&rule_path).json(&rule),
        StatusCode::CONFLICT,
        "Conflict",
    )
    .await;
    rule["metadata"]["resourceVersion"] = json!("1");
    let updated = json_of(alice.put(&rule_path).json(&rule)).await;
    assert_eq!(updated["metadata"]["resourceVersion"], "2");
    assert_eq!(
        updated["spec"]["tags"]["include"],
        json!(["v*", "release-*"])
    );

    // A dry run answers what a rule would match and stores nothing.
    let preview = json_of(
        alice
            .post(format!("{alpha_rules}?dryRun=All"))
            .json(&releases("everything", &["**"])),
    )
    .await;
    assert_eq!(
        preview["status"],
        json!({"matchingTags": 1, "tags": ["app:v1"]})
    );
    expect_kube_status(
        alice.get(format!("{alpha_rules}/everything")),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    expect_kube_status(
        alice.delete(format!("{alpha_rules}/everything")),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    expect_kube_status(alice.delete(&rule_path), StatusCode::OK, "").await;
    assert_eq!(
        push_image_as(&carol, &server, "alpha/app", "v1", "second").await,
        StatusCode::CREATED
    );

    // Each change audited.
    let audit = json_of(server.get("/apis/access.berth.io/v1/auditevents?limit=500")).await;
    let entries = audit["items"].as_array().unwrap();
    for action in [
        "immutabletagrule-create",
        "immutabletagrule-update",
        "immutabletagrule-delete",
    ] {
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == action && e["target"] == "alpha/releases"),
            "no {action}: {audit}"
        );
    }
}

#[tokio::test]
async fn the_console_marks_immutable_tags_with_their_rule() {
    let (server, admin) = with_team().await;
    push_image(&server, "team/app", "v1", "first").await;
    push_image(&server, "team/app", "latest", "second").await;
    create_rule(&admin, &server, "team", releases("releases", &["v*"])).await;
    let (browser, _) = console_session(&server, "admin", ADMIN_PASSWORD).await;
    let detail =
        json_of(browser.get(server.url("/console/api/stream?namespace=team&stream=app"))).await;
    let marks: Vec<(&str, &Value)> = detail["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| (tag["name"].as_str().unwrap(), &tag["immutable_rule"]))
        .collect();
    assert_eq!(
        marks,
        [("latest", &Value::Null), ("v1", &json!("releases"))]
    );
    // The ImageStream itself keeps OpenShift's shape: nothing added.
    let stream =
        json_of(admin.get(server.url(&format!("{API}/namespaces/team/imagestreams/app")))).await;
    assert!(!stream.to_string().contains("releases"), "{stream}");
}
