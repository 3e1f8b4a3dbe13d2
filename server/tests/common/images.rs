//! Test images built with real tools and no container engine: umoci for OCI layouts, buildah
//! for a multi-platform index. Missing tools fail the test with the package to install.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `program` to its end; a program that cannot start fails the test with the package to
/// install.
fn output(program: &str, args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut command = Command::new(program);
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap_or_else(|err| {
        panic!("{program} could not start ({err}); install Debian's {program} package (scripts/test does)")
    })
}

pub fn run(program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let output = output(program, args, env);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `program`, which must fail; answers what it said (stderr, then stdout), for the checks
/// of its message.
pub fn run_refused(program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let output = output(program, args, env);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        !output.status.success(),
        "{program} {args:?} succeeded: {said}"
    );
    said
}

/// `skopeo copy` between a local image (`oci:…`) and a plain-HTTP registry on loopback
/// (`docker://…`), with `creds` for the registry's side.
pub fn skopeo_copy(from: &str, to: &str, creds: &str) {
    skopeo_copy_with(&[], from, to, creds);
}

/// [`skopeo_copy`] of an index with every platform (`--all`).
pub fn skopeo_copy_all(from: &str, to: &str, creds: &str) {
    skopeo_copy_with(&["--all"], from, to, creds);
}

fn skopeo_copy_with(flags: &[&str], from: &str, to: &str, creds: &str) {
    let (tls, credentials) = if to.starts_with("docker://") {
        ("--dest-tls-verify=false", "--dest-creds")
    } else {
        ("--src-tls-verify=false", "--src-creds")
    };
    let mut args = vec!["copy"];
    args.extend(flags);
    args.extend([tls, credentials, creds, from, to]);
    run("skopeo", &args, &[]);
}

/// `skopeo inspect` with `flags` (`--config`, `--format …`) of `reference`: a local image
/// (`creds` None) or one in a plain-HTTP registry, with `creds`; answers its output.
pub fn skopeo_inspect(flags: &[&str], reference: &str, creds: Option<&str>) -> String {
    let mut args = vec!["inspect"];
    args.extend(flags);
    if let Some(creds) = creds {
        args.extend(["--tls-verify=false", "--creds", creds]);
    }
    args.push(reference);
    run("skopeo", &args, &[])
}

/// The manifest of `reference`, byte for byte ([`skopeo_inspect`] `--raw`).
pub fn raw_manifest(reference: &str, creds: Option<&str>) -> String {
    skopeo_inspect(&["--raw"], reference, creds)
}

/// Storage and engine settings for buildah and podman: vfs in a private folder, no cgroups.
pub struct ContainerEnv {
    pub dir: PathBuf,
    pub auth_file: PathBuf,
    pub storage_conf: PathBuf,
    pub containers_conf: PathBuf,
    pub registries_conf: PathBuf,
}

impl ContainerEnv {
    pub fn new(dir: &Path, insecure_registry: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let storage_conf = dir.join("storage.conf");
        std::fs::write(
            &storage_conf,
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
                dir.display()
            ),
        )
        .unwrap();
        let containers_conf = dir.join("containers.conf");
        std::fs::write(
            &containers_conf,
            "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        let registries_conf = dir.join("registries.conf");
        std::fs::write(
            &registries_conf,
            format!("[[registry]]\nlocation = \"{insecure_registry}\"\ninsecure = true\n"),
        )
        .unwrap();
        let auth_file = dir.join("auth.json");
        std::fs::write(&auth_file, "{}").unwrap();
        ContainerEnv {
            dir: dir.to_owned(),
            auth_file,
            storage_conf,
            containers_conf,
            registries_conf,
        }
    }

    pub fn vars(&self) -> Vec<(&'static str, &Path)> {
        vec![
            ("CONTAINERS_STORAGE_CONF", self.storage_conf.as_path()),
            ("CONTAINERS_CONF", self.containers_conf.as_path()),
            ("CONTAINERS_REGISTRIES_CONF", self.registries_conf.as_path()),
            ("TMPDIR", self.dir.as_path()),
            // Logins stay in this test's folder.
            ("REGISTRY_AUTH_FILE", self.auth_file.as_path()),
        ]
    }
}

/// Builds an OCI layout at `dir` holding `tag`: an image of `layers` layers of random data for
/// `arch`, with an entrypoint, environment and label, using umoci.
pub fn umoci_image(dir: &Path, tag: &str, arch: &str, layers: usize) -> String {
    let layout = dir.display().to_string();
    if !dir.join("index.json").exists() {
        run("umoci", &["init", "--layout", &layout], &[]);
    }
    let image = format!("{layout}:{tag}");
    run("umoci", &["new", "--image", &image], &[]);
    for layer in 0..layers {
        let bundle = dir.with_extension(format!("bundle-{tag}-{layer}"));
        let bundle_text = bundle.display().to_string();
        run("umoci", &["unpack", "--image", &image, &bundle_text], &[]);
        let data: Vec<u8> = (0..(layer + 1) * 150_000)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ layer as u8)
            .collect();
        std::fs::write(
            bundle.join("rootfs").join(format!("file-{arch}-{layer}")),
            data,
        )
        .unwrap();
        run("umoci", &["repack", "--image", &image, &bundle_text], &[]);
        std::fs::remove_dir_all(&bundle).unwrap();
    }
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--architecture",
            arch,
            "--os",
            "linux",
            "--config.entrypoint",
            "/bin/app",
            "--config.env",
            "GREETING=hello",
            "--config.label",
            "org.example.name=berth-test",
        ],
        &[],
    );
    image
}

/// Builds an OCI layout at `dir` whose `latest` is a two-platform index (amd64 and arm64),
/// assembled by buildah from umoci images.
pub fn multi_platform_index(dir: &Path, env: &ContainerEnv) -> String {
    let parts = dir.with_extension("parts");
    let amd64 = umoci_image(&parts, "amd64", "amd64", 2);
    let arm64 = umoci_image(&parts, "arm64", "arm64", 2);
    let list = format!("berth-test-list-{}", std::process::id());
    let vars = env.vars();
    run("buildah", &["manifest", "create", &list], &vars);
    run(
        "buildah",
        &["manifest", "add", &list, &format!("oci:{amd64}")],
        &vars,
    );
    run(
        "buildah",
        &["manifest", "add", &list, &format!("oci:{arm64}")],
        &vars,
    );
    let destination = format!("oci:{}:latest", dir.display());
    run(
        "buildah",
        &["manifest", "push", "--all", &list, &destination],
        &vars,
    );
    run("buildah", &["manifest", "rm", &list], &vars);
    destination
}
