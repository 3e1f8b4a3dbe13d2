//! Starts the real `berth` binary on a loopback port with its own data folder, and helps tests
//! talk to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod images;
pub mod infra;
pub mod kube;
pub mod remote;
pub mod scripted;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// The bootstrap administrator's password in every test server.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// Lets a test server's outbound calls (imports, webhooks) reach 127.0.0.1, where the tests'
/// remote registries and receivers listen; the egress policy refuses loopback otherwise.
pub const ALLOW_LOOPBACK: &[&str] = &["--egress-allow", "127.0.0.1/32"];

pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    pub addr: String,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    extra_args: Vec<String>,
    /// The database and blob store this server keeps (the same ones after a restart).
    storage: Storage,
    /// Environment variables set for it (and again when it restarts).
    extra_env: Vec<(String, String)>,
    /// A personal token of the administrator, made at start.
    pub admin_token: String,
}

impl TestServer {
    /// Starts Berth on a new, empty data folder.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        Self::start_on(Storage::new_for_test(), args)
    }

    /// Starts Berth with `toml` as its configuration file, then `args`. The file is read at
    /// start and removed once Berth listens.
    pub fn start_with_config(toml: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("berth.toml");
        std::fs::write(&config, toml).unwrap();
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        Self::start_with(&all)
    }

    /// Starts Berth on `storage`, whatever this run's choice.
    pub fn start_on(storage: Storage, args: &[&str]) -> Self {
        Self::start_on_with_env(storage, args, &[])
    }

    /// [`TestServer::start_with`], with these environment variables set for the server.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_on_with_env(Storage::new_for_test(), args, env)
    }

    fn start_on_with_env(storage: Storage, args: &[&str], env: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().join("data");
        let args = args.iter().map(|a| a.to_string()).collect();
        let env = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        let mut server = Self::spawn(&data_dir, args, storage, env);
        server._temp = Some(temp);
        server
    }

    fn spawn(
        data_dir: &Path,
        extra_args: Vec<String>,
        storage: Storage,
        extra_env: Vec<(String, String)>,
    ) -> Self {
        let mut server =
            Self::spawn_on_with("127.0.0.1:0", data_dir, extra_args, storage, extra_env);
        server.admin_token = admin_token(&server.base);
        server
    }

    /// Starts Berth on `listen` without minting a token (a console in front of a cluster has
    /// no token endpoint of its own).
    fn spawn_on(listen: &str, data_dir: &Path, extra_args: Vec<String>, storage: Storage) -> Self {
        Self::spawn_on_with(listen, data_dir, extra_args, storage, Vec::new())
    }

    fn spawn_on_with(
        listen: &str,
        data_dir: &Path,
        extra_args: Vec<String>,
        storage: Storage,
        extra_env: Vec<(String, String)>,
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        storage.apply(&mut command);
        let mut child = command
            .args([
                "serve",
                "--listen",
                listen,
                "--log-level",
                "warn",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(&extra_args)
            .envs(extra_env.iter().map(|(key, value)| (key, value)))
            .env("BERTH_BOOTSTRAP_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting berth");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("Berth listening on ") {
                    let _ = tx.send(rest.trim_end_matches('/').to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("berth did not report its address within 30 s");
        let addr = base
            .split_once("://")
            .map(|(_, addr)| addr.to_owned())
            .unwrap();
        TestServer {
            child: Some(child),
            base,
            addr,
            data_dir: data_dir.to_owned(),
            _temp: None,
            extra_args,
            storage,
            extra_env,
            admin_token: String::new(),
        }
    }

    /// A client that sends the administrator's token.
    pub fn client(&self) -> reqwest::Client {
        client_with_token(&self.admin_token)
    }

    /// Adds a local user with the command-line tool, as an operator would, and returns a
    /// personal token of theirs.
    pub fn add_user(&self, name: &str, password: &str, groups: &[&str]) -> String {
        let mut command = self.command(&["user", "add", name, "--password", password]);
        for group in groups {
            command.args(["--group", group]);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "berth user add: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        token_for(&self.base, name, password)
    }

    /// Adds local user `name` with password `{name}-password` and no groups, and answers a
    /// client that sends a personal token of theirs.
    pub fn user(&self, name: &str) -> reqwest::Client {
        client_with_token(&self.add_user(name, &format!("{name}-password"), &[]))
    }

    /// `user:secret` credentials of the administrator for skopeo and podman.
    pub fn creds(&self) -> String {
        format!("admin:{}", self.admin_token)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path` as the administrator.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client().get(self.url(path))
    }

    /// `HEAD path` as the administrator.
    pub fn head(&self, path: &str) -> reqwest::RequestBuilder {
        self.client().head(self.url(path))
    }

    /// `POST path` as the administrator.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client().post(self.url(path))
    }

    /// `PUT path` as the administrator.
    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client().put(self.url(path))
    }

    /// `PATCH path` as the administrator.
    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.client().patch(self.url(path))
    }

    /// `DELETE path` as the administrator.
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client().delete(self.url(path))
    }

    /// Another replica of this server: a process with its own data folder, on the same
    /// database and blob store, with the same secrets key; the administrator's token is the
    /// same.
    pub fn replica(&self) -> Self {
        assert_ne!(
            self.storage,
            Storage::Embedded,
            "replicas share a database: start the first on PostgreSQL"
        );
        let temp = tempfile::tempdir().unwrap();
        let key = self.data_dir.join("secrets.key");
        let mut args = self.extra_args.clone();
        args.extend(["--secrets-key-file".to_owned(), key.display().to_string()]);
        let mut replica = Self::spawn_on(
            "127.0.0.1:0",
            &temp.path().join("data"),
            args,
            self.storage.clone(),
        );
        replica.admin_token = self.admin_token.clone();
        replica._temp = Some(temp);
        replica
    }

    /// `berth ARGS` for an operator's command on this server's data (`user add ...`,
    /// `token create ...`), with its data folder and storage.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        self.storage.apply(&mut command);
        command.args(args).arg("--data-dir").arg(&self.data_dir);
        command
    }

    /// Where this server keeps its data: `Storage::Embedded` for tests that reach into the
    /// data folder's database or blob files.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Kills the server (no graceful shutdown, as a crash would) and starts it again on the same
    /// data folder.
    pub fn crash_and_restart(self) -> Self {
        self.crash_and_restart_with(|_| {})
    }

    /// Kills the server (SIGKILL), lets `between` change the data folder as the crash or an
    /// operator might have left it, and starts the server again on it.
    pub fn crash_and_restart_with(mut self, between: impl FnOnce(&Path)) -> Self {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        between(&self.data_dir);
        let mut restarted = Self::spawn(
            &self.data_dir,
            self.extra_args.clone(),
            self.storage.clone(),
            self.extra_env.clone(),
        );
        restarted._temp = self._temp.take();
        restarted
    }

    /// Kills the server (SIGKILL), as a crash or an evicted pod would end it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits for the process to end; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().unwrap()
    }
}

/// The database and blob store of a test server, chosen for the whole run by
/// `BERTH_TEST_STORAGE`: unset or `embedded` (SQLite and the data folder, the default),
/// `postgres` (PostgreSQL, blobs in the data folder) or `postgres-s3` (PostgreSQL and S3:
/// SeaweedFS, or Garage with `BERTH_TEST_S3=garage`). `scripts/test` runs the integration
/// suites once per choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    Embedded,
    Postgres {
        database_url: String,
    },
    PostgresS3 {
        database_url: String,
        storage_url: String,
    },
}

impl Storage {
    /// A new database (and key prefix) for a test server, on this run's choice.
    pub fn new_for_test() -> Storage {
        let choice = std::env::var("BERTH_TEST_STORAGE").unwrap_or_default();
        match choice.as_str() {
            "" | "embedded" => Storage::Embedded,
            "postgres" => Storage::postgres(),
            "postgres-s3" => Storage::postgres_s3(),
            other => {
                panic!("BERTH_TEST_STORAGE={other:?}: expected embedded, postgres or postgres-s3")
            }
        }
    }

    /// A new database on this process's PostgreSQL, blobs in the data folder.
    pub fn postgres() -> Storage {
        Storage::Postgres {
            database_url: infra::postgres().database(),
        }
    }

    /// A new database on this process's PostgreSQL and a new prefix of its S3 bucket.
    pub fn postgres_s3() -> Storage {
        let s3 = infra::s3();
        Storage::PostgresS3 {
            database_url: infra::postgres().database(),
            storage_url: format!("s3://{}/{}", s3.bucket, s3.prefix()),
        }
    }

    /// Points a `berth` command at this storage.
    fn apply(&self, command: &mut Command) {
        match self {
            Storage::Embedded => {}
            Storage::Postgres { database_url } => {
                command.env("BERTH_DATABASE_URL", database_url);
            }
            Storage::PostgresS3 {
                database_url,
                storage_url,
            } => {
                let s3 = infra::s3();
                command
                    .env("BERTH_DATABASE_URL", database_url)
                    .env("BERTH_STORAGE_URL", storage_url)
                    .env("AWS_ENDPOINT", &s3.endpoint)
                    .env("AWS_REGION", &s3.region)
                    .env("AWS_ACCESS_KEY_ID", &s3.access_key_id)
                    .env("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key);
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A self-signed certificate for 127.0.0.1, written to `tls.crt` and `tls.key` in `dir`; answers
/// it (its PEM is the CA a client trusts) and the `--tls-cert`/`--tls-key` arguments.
pub fn self_signed_tls(dir: &Path) -> (rcgen::CertifiedKey<rcgen::KeyPair>, Vec<String>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let args = vec![
        "--tls-cert".to_owned(),
        cert.display().to_string(),
        "--tls-key".to_owned(),
        key.display().to_string(),
    ];
    (certified, args)
}

/// A client without credentials.
pub fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // The TLS tests' certificate is self-signed; skopeo checks it against its CA instead.
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

/// A client that sends `token` as its bearer credentials.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Makes a personal token for a user with their password. Each gets its own name: a user's
/// token names are unique.
pub fn token_for(base: &str, user: &str, password: &str) -> String {
    static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "tests-{}",
        MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = base.to_owned();
    let (user, password) = (user.to_owned(), password.to_owned());
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let response = anonymous()
                .post(format!("{base}/apis/access.berth.io/v1/personaltokens"))
                .basic_auth(&user, Some(&password))
                .json(&serde_json::json!({"metadata": {"name": name}}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(status, 201, "creating a token for {user}: {body}");
            body["status"]["token"].as_str().unwrap().to_owned()
        })
    })
    .join()
    .unwrap()
}

fn admin_token(base: &str) -> String {
    token_for(base, "admin", ADMIN_PASSWORD)
}

/// How long [`wait_until`] waits before it fails the test: far longer than anything awaited
/// takes on a loaded machine, so that only a fault reaches it.
pub const WAIT: Duration = Duration::from_secs(30);

/// Asks `poll` again every 50 ms until it answers `Ok`, and answers its value. Meanwhile `poll`
/// answers `Err` with what it sees; after [`WAIT`] the test fails, saying what it waited for
/// (`what`) and what it saw last.
pub async fn wait_until<T>(what: &str, mut poll: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match poll().await {
            Ok(value) => return value,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("waited {WAIT:?} for {what}; last saw: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A response header as text, empty when absent.
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// `METHOD /path` of a request, for the messages of failed checks.
fn sent(request: &reqwest::Request) -> String {
    format!("{} {}", request.method(), request.url().path())
}

/// Sends `request` and expects HTTP status `expected`; answers the response, its body unread
/// (on any other status the test fails, showing the body).
pub async fn expect_status(
    request: reqwest::RequestBuilder,
    expected: reqwest::StatusCode,
) -> reqwest::Response {
    let (client, request) = request.build_split();
    let request = request.unwrap();
    let sent = sent(&request);
    let response = client.execute(request).await.unwrap();
    let status = response.status();
    if status != expected {
        let text = response.text().await.unwrap_or_default();
        panic!("{sent}: expected {expected}, got {status}: {text}");
    }
    response
}

/// Sends `method path` as `client`, with `body` as JSON if any; answers the status, the body as
/// JSON (`Null` when it is not) and as text, whatever the status.
pub async fn send(
    server: &TestServer,
    client: &reqwest::Client,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value, String) {
    let mut request = client.request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, value, text)
}

/// Sends `request` and answers its body as text, whatever its status.
pub async fn text_of(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// Sends `request`, expects HTTP status `expected` and answers the body as JSON.
pub async fn expect_json(
    request: reqwest::RequestBuilder,
    expected: reqwest::StatusCode,
) -> serde_json::Value {
    expect_status(request, expected).await.json().await.unwrap()
}

/// Sends `request` and answers its body as JSON, whatever its status.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The `metadata.name` of each of a list's `items`.
pub fn item_names(list: &serde_json::Value) -> Vec<&str> {
    let items = list["items"].as_array().expect("a list's items");
    items
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap())
        .collect()
}

/// Sends `request` and expects a Kubernetes `Status` in answer, with HTTP status and `code`
/// `expected` and reason `reason` (`""` for a `Success` Status, which has none); answers the
/// Status, for the checks of its message and details a test adds.
pub async fn expect_kube_status(
    request: reqwest::RequestBuilder,
    expected: reqwest::StatusCode,
    reason: &str,
) -> serde_json::Value {
    let (client, request) = request.build_split();
    let request = request.unwrap();
    let sent = sent(&request);
    let response = client.execute(request).await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, expected, "{sent}: {text}");
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{sent}: a Status, not {text:?}"));
    let outcome = if expected.is_success() {
        "Success"
    } else {
        "Failure"
    };
    assert_eq!(
        (&body["kind"], &body["status"], &body["code"]),
        (
            &serde_json::json!("Status"),
            &serde_json::json!(outcome),
            &serde_json::json!(expected.as_u16())
        ),
        "{sent}: {text}"
    );
    assert_eq!(
        body["reason"].as_str().unwrap_or_default(),
        reason,
        "{sent}: {text}"
    );
    if !expected.is_success() {
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{sent}: {text}"
        );
    }
    body
}

/// The fields an `Invalid` `Status` names, in its order.
pub fn cause_fields(status: &serde_json::Value) -> Vec<&str> {
    status["details"]["causes"]
        .as_array()
        .expect("a Status with causes")
        .iter()
        .map(|cause| cause["field"].as_str().unwrap())
        .collect()
}

/// The OCI error code of an error response body.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("an OCI error body");
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Sends `request` and answers the OCI error code of its answer.
pub async fn error_code_of(request: reqwest::RequestBuilder) -> String {
    error_code(request.send().await.unwrap()).await
}

/// Makes namespace `name` as `client`'s user, who becomes its admin.
pub async fn create_namespace(client: &reqwest::Client, server: &TestServer, name: &str) {
    let response = client
        .post(server.url("/api/v1/namespaces"))
        .json(&serde_json::json!({"metadata": {"name": name}}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(
        status,
        reqwest::StatusCode::CREATED,
        "creating {name}: {body}"
    );
}

/// Binds `role` in `namespace` (or on one of its streams) to `subject` (`{"kind", "name"}`), as
/// `client`; answers the status.
pub async fn bind(
    client: &reqwest::Client,
    server: &TestServer,
    namespace: &str,
    role: &str,
    subject: serde_json::Value,
    stream: Option<&str>,
) -> reqwest::StatusCode {
    binding(client, server, namespace, role, subject, stream)
        .await
        .status()
}

/// [`bind`] as the administrator, which must succeed.
pub async fn grant(
    server: &TestServer,
    namespace: &str,
    role: &str,
    subject: serde_json::Value,
    stream: Option<&str>,
) {
    let response = binding(&server.client(), server, namespace, role, subject, stream).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(
        status,
        reqwest::StatusCode::CREATED,
        "binding {role} in {namespace}: {body}"
    );
}

async fn binding(
    client: &reqwest::Client,
    server: &TestServer,
    namespace: &str,
    role: &str,
    subject: serde_json::Value,
    stream: Option<&str>,
) -> reqwest::Response {
    let mut body = serde_json::json!({"roleRef": {"name": role}, "subject": subject});
    if let Some(stream) = stream {
        body["imageStream"] = serde_json::json!(stream);
    }
    client
        .post(server.url(&format!(
            "/apis/access.berth.io/v1/namespaces/{namespace}/rolebindings"
        )))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// [`grant`] of `role` in `namespace` to user `user`.
pub async fn grant_user(server: &TestServer, namespace: &str, role: &str, user: &str) {
    let subject = serde_json::json!({"kind": "User", "name": user});
    grant(server, namespace, role, subject, None).await;
}

/// [`grant`] of `role` on `namespace/stream` to user `user`.
pub async fn grant_user_on(
    server: &TestServer,
    namespace: &str,
    stream: &str,
    role: &str,
    user: &str,
) {
    let subject = serde_json::json!({"kind": "User", "name": user});
    grant(server, namespace, role, subject, Some(stream)).await;
}

/// Pushes a blob in one request as the administrator and returns its digest.
pub async fn push_blob(server: &TestServer, repository: &str, data: &[u8]) -> String {
    push_blob_as(&server.client(), server, repository, data).await
}

/// Pushes a blob in one request as `client`, which must be accepted (201); returns its digest.
pub async fn push_blob_as(
    client: &reqwest::Client,
    server: &TestServer,
    repository: &str,
    data: &[u8],
) -> String {
    let request = blob_upload(client, server, repository, data);
    expect_status(request, reqwest::StatusCode::CREATED).await;
    sha256(data)
}

/// A monolithic upload of blob `data` to `repository` as `client`, not sent yet.
fn blob_upload(
    client: &reqwest::Client,
    server: &TestServer,
    repository: &str,
    data: &[u8],
) -> reqwest::RequestBuilder {
    let path = format!("/v2/{repository}/blobs/uploads/?digest={}", sha256(data));
    client.post(server.url(&path)).body(data.to_vec())
}

/// `POST /v2/{repository}/blobs/uploads/` as `client`: an upload starts (202) where it may push.
pub async fn start_upload_as(
    client: &reqwest::Client,
    server: &TestServer,
    repository: &str,
) -> reqwest::Response {
    client
        .post(server.url(&format!("/v2/{repository}/blobs/uploads/")))
        .send()
        .await
        .unwrap()
}

/// The HTTP status of `GET url` with `token` as the bearer credentials.
pub async fn status_with_token(token: &str, url: &str) -> reqwest::StatusCode {
    client_with_token(token)
        .get(url)
        .send()
        .await
        .unwrap()
        .status()
}

/// Who `client` is: `GET /apis/user.openshift.io/v1/users/~`, its body.
pub async fn whoami(client: &reqwest::Client, server: &TestServer) -> serde_json::Value {
    json_of(client.get(server.url("/apis/user.openshift.io/v1/users/~"))).await
}

/// Starts an upload to `repository` as the administrator, which must be accepted; answers the
/// session's location.
pub async fn start_upload(server: &TestServer, repository: &str) -> String {
    let path = format!("/v2/{repository}/blobs/uploads/");
    location(&expect_status(server.post(&path), reqwest::StatusCode::ACCEPTED).await)
}

/// `GET /v2/{repository}/blobs/{digest}` as the administrator.
pub async fn get_blob(server: &TestServer, repository: &str, digest: &str) -> reqwest::Response {
    server
        .get(&format!("/v2/{repository}/blobs/{digest}"))
        .send()
        .await
        .unwrap()
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The config and the layer of a test image; `seed` makes them differ from others'.
pub fn image_blobs(seed: &str) -> [Vec<u8>; 2] {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["SEED={seed}"]}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    [config.into_bytes(), format!("layer of {seed}").into_bytes()]
}

/// An OCI image manifest of `config` and one `layer`.
pub fn manifest_of([config, layer]: &[Vec<u8>; 2]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(layer), "size": layer.len()}],
    }))
    .unwrap()
}

/// Pushes a config and one layer, and returns an OCI image manifest (not pushed) for them.
pub async fn image_manifest(server: &TestServer, repository: &str, seed: &str) -> Vec<u8> {
    let blobs = image_blobs(seed);
    for blob in &blobs {
        push_blob(server, repository, blob).await;
    }
    manifest_of(&blobs)
}

/// Pushes a new image (config, layer and manifest; `seed` makes it differ from others) as
/// `repository:tag`; answers its digest.
pub async fn push_image(server: &TestServer, repository: &str, tag: &str, seed: &str) -> String {
    let manifest = image_manifest(server, repository, seed).await;
    let response = put_manifest(server, repository, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(
        response.status(),
        reqwest::StatusCode::CREATED,
        "{repository}:{tag}"
    );
    sha256(&manifest)
}

/// [`push_image`] as `client`, which may be refused: answers the status of the first blob push
/// refused, or else of the manifest's.
pub async fn push_image_as(
    client: &reqwest::Client,
    server: &TestServer,
    repository: &str,
    tag: &str,
    seed: &str,
) -> reqwest::StatusCode {
    let blobs = image_blobs(seed);
    for blob in &blobs {
        let upload = blob_upload(client, server, repository, blob);
        let status = upload.send().await.unwrap().status();
        if status != reqwest::StatusCode::CREATED {
            return status;
        }
    }
    let manifest = manifest_of(&blobs);
    put_manifest_as(client, server, repository, tag, OCI_MANIFEST, &manifest)
        .await
        .status()
}

/// `PUT /v2/{repository}/manifests/{reference}` of `body` as the administrator.
pub async fn put_manifest(
    server: &TestServer,
    repository: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> reqwest::Response {
    put_manifest_as(
        &server.client(),
        server,
        repository,
        reference,
        media_type,
        body,
    )
    .await
}

/// `PUT /v2/{repository}/manifests/{reference}` of `body` as `client`.
pub async fn put_manifest_as(
    client: &reqwest::Client,
    server: &TestServer,
    repository: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> reqwest::Response {
    client
        .put(server.url(&format!("/v2/{repository}/manifests/{reference}")))
        .header("content-type", media_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

// ---- the console, as a browser signs in to it ----------------------------------------------

/// A browser: a cookie jar, redirects followed by hand.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The hidden and named inputs of the login form.
pub fn form_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter_map(|input| {
            let attr = |name: &str| {
                input
                    .split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .map(|v| {
                        v.replace("&amp;", "&")
                            .replace("&quot;", "\"")
                            .replace("&#39;", "'")
                            .replace("&lt;", "<")
                            .replace("&gt;", ">")
                    })
            };
            Some((attr("name")?, attr("value").unwrap_or_default()))
        })
        .collect()
}

/// Signs in through the console's login and the embedded server's form.
pub async fn sign_in(
    server: &TestServer,
    browser: &reqwest::Client,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let to_provider = browser
        .get(server.url("/console/login?then=/"))
        .send()
        .await
        .unwrap();
    assert_eq!(to_provider.status(), reqwest::StatusCode::SEE_OTHER);
    let authorize = location(&to_provider);
    assert!(
        authorize.starts_with(&format!("{}/oauth/authorize?", server.base)),
        "{authorize}"
    );
    assert!(
        authorize.contains("code_challenge_method=S256")
            && authorize.contains("state=")
            && authorize.contains("nonce=")
    );
    submit_sign_in_form(
        browser,
        &authorize,
        &server.url("/oauth/authorize"),
        user,
        password,
    )
    .await
}

/// Fills the embedded OAuth server's sign-in form at `authorize` and posts it to `action`;
/// answers the server's redirect back to the client.
pub async fn submit_sign_in_form(
    browser: &reqwest::Client,
    authorize: &str,
    action: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let form = text_of(browser.get(authorize)).await;
    let mut fields: Vec<(String, String)> = form_fields(&form)
        .into_iter()
        .filter(|(name, _)| name != "username" && name != "password")
        .collect();
    fields.push(("username".into(), user.into()));
    fields.push(("password".into(), password.into()));
    browser.post(action).form(&fields).send().await.unwrap()
}

/// The console's tag form (`oc tag FROM STREAM:TAG` in `namespace`), with the session's CSRF
/// token.
pub fn tag_form<'a>(
    csrf: &'a str,
    namespace: &'a str,
    stream: &'a str,
    tag: &'a str,
    from: &'a str,
) -> [(&'static str, &'a str); 5] {
    [
        ("csrf", csrf),
        ("namespace", namespace),
        ("stream", stream),
        ("tag", tag),
        ("from", from),
    ]
}

/// A browser signed in to the console as `user`, and its session's CSRF token.
pub async fn console_session(
    server: &TestServer,
    user: &str,
    password: &str,
) -> (reqwest::Client, String) {
    let browser = browser();
    let back = sign_in(server, &browser, user, password).await;
    assert_eq!(
        back.status(),
        reqwest::StatusCode::SEE_OTHER,
        "signing in {user}"
    );
    let done = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(done.status(), reqwest::StatusCode::SEE_OTHER);
    let session = json_of(browser.get(server.url("/console/api/session"))).await;
    assert_eq!(session["user"], user);
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();
    (browser, csrf)
}

/// The objects under `prefix` in this run's S3 bucket: key and size, by key.
pub async fn bucket_objects(prefix: &str) -> Vec<(String, u64)> {
    use futures_util::TryStreamExt;
    use object_store::ObjectStore;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s3 = infra::s3();
    let bucket = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_allow_http(true)
        .with_region(&s3.region)
        .with_bucket_name(&s3.bucket)
        .with_access_key_id(&s3.access_key_id)
        .with_secret_access_key(&s3.secret_access_key)
        .build()
        .unwrap();
    let mut objects: Vec<(String, u64)> = bucket
        .list(Some(&prefix.into()))
        .map_ok(|meta| (meta.location.to_string(), meta.size))
        .try_collect()
        .await
        .unwrap();
    objects.sort();
    objects
}

/// The blobs a server's blob store holds (the data folder's files, or the bucket's objects),
/// digest to size: what is really stored, whatever the metadata says.
pub async fn stored_blobs(server: &TestServer) -> std::collections::BTreeMap<String, u64> {
    let digest_of = |path: &str| {
        let hex = path.rsplit('/').next().unwrap();
        format!("sha256:{hex}")
    };
    match server.storage() {
        Storage::PostgresS3 { storage_url, .. } => {
            let prefix = storage_url.splitn(4, '/').nth(3).unwrap().to_owned();
            bucket_objects(&format!("{prefix}/blobs/"))
                .await
                .into_iter()
                .map(|(key, size)| (digest_of(&key), size))
                .collect()
        }
        Storage::Embedded | Storage::Postgres { .. } => {
            let mut found = std::collections::BTreeMap::new();
            let root = server.data_dir().join("blobs").join("sha256");
            for prefix in std::fs::read_dir(&root).into_iter().flatten() {
                for file in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
                    let file = file.unwrap();
                    let name = file.file_name().to_str().unwrap().to_owned();
                    // A sweep may delete the file between the listing and this look.
                    if let Ok(metadata) = file.metadata() {
                        found.insert(digest_of(&name), metadata.len());
                    }
                }
            }
            found
        }
    }
}
