//! Real services for tests, started on loopback ports by the tests themselves: PostgreSQL (one
//! cluster per test process, a new database per test), SeaweedFS's S3 gateway and Garage (each
//! one per process, a new key prefix per test) and HAProxy (one per test). Each service is
//! stopped, and its folder removed, by a watchdog shell when the test process ends, however it
//! ends.
//!
//! Included by the integration tests (`common/mod.rs`) and by the server's own unit tests
//! (`storage::test_infra`), so both start the services the same way.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
// Services and their watchdogs live as long as the test process; nobody waits for them.
#![allow(clippy::zombie_processes)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A PostgreSQL cluster of this test process.
pub struct Postgres {
    pub port: u16,
    /// The postmaster's process id (its backends are its children).
    pub pid: u32,
    bin: PathBuf,
    databases: AtomicU32,
}

/// The process's PostgreSQL cluster, started on first use.
pub fn postgres() -> &'static Postgres {
    static CLUSTER: OnceLock<Postgres> = OnceLock::new();
    CLUSTER.get_or_init(Postgres::start)
}

impl Postgres {
    fn start() -> Postgres {
        let bin = postgres_bin();
        let dir = service_dir("postgres");
        let data = dir.join("data");
        let as_root = running_as_root();
        if as_root {
            // initdb and postgres refuse to run as root: the cluster belongs to `postgres`.
            run(Command::new("chown").args(["-R", "postgres"]).arg(&dir));
        }
        run(as_cluster_owner(as_root, &bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data));
        let port = free_port();
        let mut postgres = as_cluster_owner(as_root, &bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
            ])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=400"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("postgres.log")).unwrap());
        let child = postgres.spawn().expect("starting postgres");
        let pid = child.id();
        stop_with_this_process(&child, "INT", &dir);
        wait_for("PostgreSQL", || {
            Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        });
        Postgres {
            port,
            pid,
            bin,
            databases: AtomicU32::new(0),
        }
    }

    /// The URL of a new, empty database of its own.
    pub fn database(&self) -> String {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::Relaxed)
        );
        self.psql(&format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Everything database `url` holds, as `pg_dump` writes it (SQL text).
    pub fn dump(&self, url: &str) -> Vec<u8> {
        let output = Command::new(self.bin.join("pg_dump"))
            .args(["--no-owner", "--dbname", url])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Runs one SQL command as the superuser, on the `postgres` database.
    pub fn psql(&self, sql: &str) {
        run(Command::new(self.bin.join("psql"))
            .args([
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql]));
    }
}

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (scripts/setup test installs it)")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("postgres").is_file())
        .collect();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
    });
    versions
        .pop()
        .expect("no PostgreSQL server under /usr/lib/postgresql")
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn as_cluster_owner(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// An S3-compatible store of this test process, with one bucket: SeaweedFS's S3 gateway or
/// Garage.
pub struct S3Service {
    /// What it is, for messages: `SeaweedFS` or `Garage`.
    pub name: &'static str,
    pub endpoint: String,
    /// The region its signatures must name.
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    prefixes: AtomicU32,
}

impl S3Service {
    /// A key prefix no other test of this run uses.
    pub fn prefix(&self) -> String {
        format!(
            "test-{}-{}",
            std::process::id(),
            self.prefixes.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The S3 store this run's S3 tests use, chosen by `BERTH_TEST_S3`: unset or `seaweedfs` (the
/// CI store), or `garage` (the second implementation, in a smaller set of tests).
pub fn s3() -> &'static S3Service {
    match std::env::var("BERTH_TEST_S3").unwrap_or_default().as_str() {
        "" | "seaweedfs" => seaweedfs(),
        "garage" => garage(),
        other => panic!("BERTH_TEST_S3={other:?}: expected seaweedfs or garage"),
    }
}

/// The process's SeaweedFS, started on first use.
pub fn seaweedfs() -> &'static S3Service {
    static STORE: OnceLock<S3Service> = OnceLock::new();
    STORE.get_or_init(start_seaweedfs)
}

fn start_seaweedfs() -> S3Service {
    let (access_key_id, secret_access_key) = ("berth-test-key", "berth-test-secret");
    let bucket = "berth";
    // A start can fail for a reason that is not SeaweedFS's: another process of a parallel
    // suite binds one of the ten ports between our probe and its bind, or a loaded machine
    // keeps it from the bucket for a minute. Each attempt has fresh ports and a fresh folder.
    let mut failures = Vec::new();
    for _attempt in 0..3 {
        let dir = service_dir("seaweedfs");
        // `weed mini` also opens each port + 10000 for gRPC.
        let [s3, master, filer, volume, admin] = [(); 5].map(|_| free_port_pair());
        let mut child = Command::new(installed_tool("seaweedfs", "weed"))
            .arg(format!("-logdir={}", dir.display()))
            .arg("mini")
            .arg(format!("-dir={}", dir.join("data").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
            ])
            .args(["-admin.ui=false", "-webdav=false"])
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-master.port={master}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-admin.port={admin}"))
            .arg(format!("-bucket={bucket}"))
            .env("AWS_ACCESS_KEY_ID", access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret_access_key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("weed.log")).unwrap())
            .spawn()
            .expect("starting SeaweedFS (scripts/setup test installs `weed`)");
        stop_with_this_process(&child, "TERM", &dir);
        // /healthz answers before the bucket exists, and an unsigned GET of the bucket answers
        // 403 (access denied) about a second before it does: the filer's folder of the bucket
        // tells.
        let started = wait_for_child(&mut child, Duration::from_secs(90), || {
            http_status(s3, &format!("/{bucket}/")).is_some_and(|status| status != 404)
                && http_status(filer, &format!("/buckets/{bucket}/")) == Some(200)
        });
        match started {
            Ok(()) => {
                return S3Service {
                    name: "SeaweedFS",
                    endpoint: format!("http://127.0.0.1:{s3}"),
                    region: "us-east-1".to_owned(),
                    bucket: bucket.to_owned(),
                    access_key_id: access_key_id.to_owned(),
                    secret_access_key: secret_access_key.to_owned(),
                    prefixes: AtomicU32::new(0),
                };
            }
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                failures.push(format!(
                    "{why}; the end of its log:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
    }
    panic!(
        "SeaweedFS's bucket did not start in three attempts:\n{}",
        failures.join("\n---\n")
    );
}

/// The process's Garage (one node, one bucket), started on first use.
pub fn garage() -> &'static S3Service {
    static STORE: OnceLock<S3Service> = OnceLock::new();
    STORE.get_or_init(start_garage)
}

fn start_garage() -> S3Service {
    let dir = service_dir("garage");
    // Garage's own forms: a key id is `GK` and 24 hex digits, a secret 64 hex digits.
    let access_key_id = "GK0123456789abcdef01234567";
    let secret_access_key = "5a1e".repeat(16);
    let bucket = "berth";
    // Not Garage's default region, nor S3's: Berth must sign with the one it is given.
    let region = "garage-test";
    let [rpc, s3, admin] = [(); 3].map(|_| free_port());
    let config = dir.join("garage.toml");
    std::fs::write(
        &config,
        format!(
            "metadata_dir = {:?}\ndata_dir = {:?}\ndb_engine = \"sqlite\"\n\
             replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{}\"\n\
             [s3_api]\ns3_region = \"{region}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
             [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
            dir.join("meta"),
            dir.join("data"),
            "0b".repeat(32),
        ),
    )
    .unwrap();
    let binary = installed_tool("garage", "garage");
    // `--single-node --default-bucket` lays out the one node and makes the key and bucket
    // named by these variables: ready without `garage layout` and `garage key` steps.
    let child = Command::new(&binary)
        .arg("-c")
        .arg(&config)
        .args(["server", "--single-node", "--default-bucket"])
        .env("GARAGE_DEFAULT_ACCESS_KEY", access_key_id)
        .env("GARAGE_DEFAULT_SECRET_KEY", &secret_access_key)
        .env("GARAGE_DEFAULT_BUCKET", bucket)
        .env("RUST_LOG", "garage=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("garage.log")).unwrap())
        .spawn()
        .unwrap_or_else(|err| {
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "starting Garage ({}: {err}): run `scripts/setup test`, which builds it from \
                 crates.io",
                binary.display()
            )
        });
    stop_with_this_process(&child, "TERM", &dir);
    // The admin API's /health answers 200 once the node serves its one-node layout.
    wait_for("Garage", || http_status(admin, "/health") == Some(200));
    S3Service {
        name: "Garage",
        endpoint: format!("http://127.0.0.1:{s3}"),
        region: region.to_owned(),
        bucket: bucket.to_owned(),
        access_key_id: access_key_id.to_owned(),
        secret_access_key,
        prefixes: AtomicU32::new(0),
    }
}

/// `target/tools/FOLDER/bin/PROGRAM` (where `scripts/setup test` installs it), else `PROGRAM`
/// on the PATH.
pub fn installed_tool(folder: &str, program: &str) -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tools")
        .join(folder)
        .join("bin")
        .join(program);
    if local.is_file() {
        local
    } else {
        program.into()
    }
}

/// HAProxy round-robining HTTP over `backends` (`host:port`); stopped when dropped. Each request
/// is balanced on its own, also on a kept-alive client connection; connections to the backends
/// are kept alive too (closing them after each request cost 40% of a manifest GET's throughput).
/// [`Balance::Connections`] makes it a TCP balancer instead, as a Kubernetes Service is.
pub struct Haproxy {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    pub fn start(backends: &[&str]) -> Haproxy {
        Haproxy::start_on(free_port(), backends)
    }

    /// HAProxy on `port`, chosen by the caller (the testbed's fixed address).
    pub fn start_on(port: u16, backends: &[&str]) -> Haproxy {
        Haproxy::start_balancing(port, backends, Balance::Requests)
    }

    pub fn start_balancing(port: u16, backends: &[&str], balance: Balance) -> Haproxy {
        Haproxy::start_with(port, backends, balance, None)
    }

    /// HAProxy answering HTTPS with `certificate` (a PEM file of the certificate chain and its
    /// key, as [`PrivateCa::server_pem`]) and passing plain HTTP to `backends`.
    pub fn start_tls(backends: &[&str], certificate: &Path) -> Haproxy {
        Haproxy::start_with(free_port(), backends, Balance::Requests, Some(certificate))
    }

    fn start_with(
        port: u16,
        backends: &[&str],
        balance: Balance,
        certificate: Option<&Path>,
    ) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        // Without http-no-delay HAProxy holds the small chunks of a streaming answer (a watch,
        // the console's event stream) for up to 200 ms, waiting for more to send with them.
        let mode = match balance {
            Balance::Requests => "http\n  option http-no-delay",
            Balance::Connections => "tcp",
        };
        let mut config = format!(
            "defaults\n  mode {mode}\n  timeout connect 5s\n  timeout client 300s\n  \
             timeout server 300s\n\
             frontend berth\n  bind 127.0.0.1:{port}{tls}\n  default_backend replicas\n\
             backend replicas\n  balance roundrobin\n",
            tls = certificate
                .map(|file| format!(" ssl crt {}", file.display()))
                .unwrap_or_default(),
        );
        for (i, backend) in backends.iter().enumerate() {
            config.push_str(&format!("  server replica{i} {backend}\n"));
        }
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let child = Command::new("haproxy")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting haproxy (scripts/setup test installs it)");
        stop_with_this_process(&child, "TERM", dir.path());
        wait_for("HAProxy", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Haproxy {
            port,
            child,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A private certificate authority and a server certificate it signed for 127.0.0.1, as files:
/// what a store behind an internal CA presents. Removed when dropped.
pub struct PrivateCa {
    /// The CA's certificate (PEM): what a client must trust.
    pub ca_file: PathBuf,
    /// The server's certificate, then its key (PEM), as HAProxy's `crt` takes them.
    pub server_pem: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateCa {
    pub fn new() -> PrivateCa {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Berth test internal CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.as_ref().pem()).unwrap();
        let server_pem = dir.path().join("server.pem");
        std::fs::write(
            &server_pem,
            format!("{}{}", server.pem(), server_key.serialize_pem()),
        )
        .unwrap();
        PrivateCa {
            ca_file,
            server_pem,
            _dir: dir,
        }
    }
}

/// What HAProxy spreads over the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Each HTTP request (HAProxy reads every request: `mode http`).
    Requests,
    /// Each TCP connection, whatever it carries (`mode tcp`).
    Connections,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new folder for a service of this process (removed by its watchdog).
pub fn service_dir(service: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&format!("berth-{service}-"))
        .tempdir()
        .unwrap()
        .keep()
}

/// Sends `signal` to `service`, and removes `dir`, once this process is gone: statics are never
/// dropped, and a killed test run must not leave a database or object store running. The
/// watchdog has a process group of its own, so a signal to this process's group (Ctrl-C, or a
/// runner ending a command's group) leaves it to clean up.
pub fn stop_with_this_process(service: &Child, signal: &str, dir: &Path) {
    use std::os::unix::process::CommandExt as _;
    Command::new("sh")
        .args([
            "-c",
            "while kill -0 \"$1\" 2>/dev/null; do sleep 0.5; done
             kill -\"$3\" \"$2\" 2>/dev/null
             for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 \"$2\" 2>/dev/null || break; sleep 0.5; done
             kill -9 \"$2\" 2>/dev/null; rm -rf \"$4\"",
            "watchdog",
            &std::process::id().to_string(),
            &service.id().to_string(),
            signal,
        ])
        .arg(dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a watchdog");
}

/// The status of a plain `GET path` on a loopback port, `None` when nothing answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not start within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `ready`, or fails with why: `child` exited, or `limit` passed.
fn wait_for_child(
    child: &mut Child,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited ({status})"));
        }
        if start.elapsed() > limit {
            return Err(format!("it was not ready within {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port whose +10000 is free too.
fn free_port_pair() -> u16 {
    loop {
        let port = free_port();
        if port < 55000
            && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}
