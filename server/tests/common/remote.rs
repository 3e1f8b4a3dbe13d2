//! A second registry for import tests: Debian's `docker-registry` (CNCF distribution) on a
//! loopback port, with htpasswd (bcrypt) authentication.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct RemoteRegistry {
    child: Child,
    /// `127.0.0.1:port`.
    pub host: String,
    pub user: String,
    pub password: String,
}

impl RemoteRegistry {
    /// Starts docker-registry with its data in `dir`, accepting `user`/`password` only.
    pub async fn start(dir: &Path, user: &str, password: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let hash = bcrypt::hash(password, 5).unwrap();
        std::fs::write(dir.join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n",
                root = dir.join("data").display(),
                htpasswd = dir.join("htpasswd").display(),
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry could not start; install Debian's docker-registry (scripts/test does)");
        let host = format!("127.0.0.1:{port}");
        super::wait_until("docker-registry to accept connections", async || {
            tokio::net::TcpStream::connect(&host)
                .await
                .map_err(|err| err.to_string())
        })
        .await;
        RemoteRegistry {
            child,
            host,
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    pub fn creds(&self) -> String {
        format!("{}:{}", self.user, self.password)
    }

    /// `skopeo copy` of `source` (`oci:…` or `oci-archive:…`; every platform with `all`) to
    /// `target` (`repository:tag`) here, with this registry's credentials.
    pub fn push(&self, source: &str, target: &str, all: bool) {
        let destination = format!("docker://{}/{target}", self.host);
        let copy = if all {
            super::images::skopeo_copy_all
        } else {
            super::images::skopeo_copy
        };
        copy(source, &destination, &self.creds());
    }

    /// This registry's own credentials as `namespace`'s pull secret `name` on `server`.
    pub async fn pull_secret(&self, server: &super::TestServer, namespace: &str, name: &str) {
        pull_secret(
            server,
            namespace,
            name,
            &self.host,
            &self.user,
            &self.password,
        )
        .await;
    }

    /// Stops the registry (as an outage would).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RemoteRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An `ImageStreamImport` of one image (`from`, a pull spec) into `stream:tag`, over plain HTTP.
pub fn import_one_tag(stream: &str, from: &str, tag: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "ImageStreamImport",
        "apiVersion": "image.openshift.io/v1",
        "metadata": {"name": stream},
        "spec": {
            "import": true,
            "images": [{
                "from": {"kind": "DockerImage", "name": from},
                "to": {"name": tag},
                "importPolicy": {"insecure": true}
            }]
        }
    })
}

/// Keeps `user:password` for registry `host` as `namespace`'s pull secret `name` (a Docker
/// config), as the administrator.
pub async fn pull_secret(
    server: &super::TestServer,
    namespace: &str,
    name: &str,
    host: &str,
    user: &str,
    password: &str,
) {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let auth = engine.encode(format!("{user}:{password}"));
    let config = serde_json::json!({"auths": {host: {"auth": auth}}}).to_string();
    let secret = serde_json::json!({
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": engine.encode(config)}
    });
    let request = server
        .post(&format!("/api/v1/namespaces/{namespace}/secrets"))
        .json(&secret);
    super::expect_status(request, reqwest::StatusCode::CREATED).await;
}
