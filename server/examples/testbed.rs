//! A testbed of Berth replicas on loopback, in one command: PostgreSQL and SeaweedFS (started by
//! the tests' own `infra`), N `berth` replicas sharing the database, a bucket prefix and one
//! secrets key, and HAProxy round-robining them on one port. It prints every address and runs
//! until killed; the services and replicas stop with it (infra's watchdogs).
//!
//! ```sh
//! cargo build -p berth --example testbed
//! target/debug/examples/testbed --berth target/release/berth --replicas 3 --port 5080 \
//!     -- --site-dir target/site --log-level warn
//! BERTH_BOOTSTRAP_PASSWORD=pw target/debug/examples/testbed --embedded   # one replica, SQLite
//! ```
//!
//! Arguments after `--` go to every replica's `berth serve`; so does the environment
//! (`BERTH_BOOTSTRAP_PASSWORD`, ...). Replicas get `--public-url` and `--registry-hostname` of
//! the balancer's address unless those arguments say otherwise. `--env-file FILE` writes the variables that point a `berth`
//! command (`berth user add ...`) at the same stores, one `NAME=value` a line.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Replicas live as long as the testbed; their watchdogs stop them when it ends.
#![allow(clippy::zombie_processes)]

#[path = "../tests/common/infra.rs"]
mod infra;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Berth replicas on PostgreSQL and SeaweedFS behind HAProxy, on loopback")]
struct Args {
    /// The `berth` binary every replica runs
    #[arg(long, default_value = "target/release/berth")]
    berth: PathBuf,
    /// How many replicas [default: 2, with --embedded 1]
    #[arg(long)]
    replicas: Option<usize>,
    /// HAProxy's port [default: a free one]
    #[arg(long)]
    port: Option<u16>,
    /// One replica on its data folder (SQLite and files), no PostgreSQL or SeaweedFS: the
    /// embedded defaults behind the same balancer, to compare with
    #[arg(long)]
    embedded: bool,
    /// What HAProxy balances: each HTTP request, or each TCP connection (as a Kubernetes
    /// Service does)
    #[arg(long, value_enum, default_value = "requests")]
    balance: BalanceArg,
    /// Writes the variables a `berth` command needs to reach the same stores to this file
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Arguments for every replica's `berth serve`
    #[arg(last = true)]
    serve_args: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BalanceArg {
    Requests,
    Connections,
}

fn main() {
    let args = Args::parse();
    let count = args.replicas.unwrap_or(if args.embedded { 1 } else { 2 });
    assert!(count >= 1, "--replicas: at least one");
    assert!(
        !args.embedded || count == 1,
        "--embedded runs one replica: its database is a file of its data folder"
    );
    let berth = std::fs::canonicalize(&args.berth)
        .unwrap_or_else(|err| panic!("{}: {err}", args.berth.display()));
    let folder = infra::service_dir("testbed");

    let stores = if args.embedded {
        Vec::new()
    } else {
        shared_stores(&folder)
    };
    if let Some(file) = &args.env_file {
        let lines: String = stores.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(file, lines).unwrap();
    }

    // Behind a balancer, OAuth redirects and pull specs name the balancer's address, not a
    // replica's, as an operator configures them.
    let port = args.port.unwrap_or_else(infra::free_port);
    let mut serve_args = Vec::new();
    for (flag, value) in [
        ("--public-url", format!("http://127.0.0.1:{port}")),
        ("--registry-hostname", format!("127.0.0.1:{port}")),
    ] {
        if !args.serve_args.iter().any(|a| a.starts_with(flag)) {
            serve_args.extend([flag.to_owned(), value]);
        }
    }
    serve_args.extend(args.serve_args.iter().cloned());

    // Every replica starts at once, as a Deployment's pods do: migrations and the bootstrap
    // administrator are the replicas' to agree on.
    let starting: Vec<_> = (0..count)
        .map(|index| Replica::spawn(index, &berth, &folder, &stores, &serve_args))
        .collect();
    let replicas: Vec<Replica> = starting.into_iter().map(Replica::ready).collect();

    let backends: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    let backend_refs: Vec<&str> = backends.iter().map(String::as_str).collect();
    let balance = match args.balance {
        BalanceArg::Requests => infra::Balance::Requests,
        BalanceArg::Connections => infra::Balance::Connections,
    };
    let proxy = infra::Haproxy::start_balancing(port, &backend_refs, balance);

    let mut out = std::io::stdout().lock();
    let kind = if args.embedded {
        "SQLite and files"
    } else {
        "PostgreSQL + SeaweedFS"
    };
    writeln!(
        out,
        "testbed: http://127.0.0.1:{port}/ (HAProxy pid {}, over {} replica(s) on {kind}, \
         balancing {balance:?})",
        proxy.pid(),
        replicas.len()
    )
    .unwrap();
    for replica in &replicas {
        writeln!(
            out,
            "  replica {}: http://{}/ (pid {})",
            replica.index,
            replica.addr,
            replica.child.id()
        )
        .unwrap();
    }
    if !args.embedded {
        writeln!(
            out,
            "  postgres pid {}, {}",
            infra::postgres().pid,
            stores[0].1
        )
        .unwrap();
    }
    writeln!(out, "testbed ready").unwrap();
    drop(out);

    // Runs until killed; a replica that ends is reported and left down (HAProxy keeps sending
    // it its turn, as a balancer without health checks would).
    let mut replicas = replicas;
    loop {
        for replica in &mut replicas {
            if let Ok(Some(status)) = replica.child.try_wait()
                && !replica.reported_exit
            {
                println!("testbed: replica {} ended: {status}", replica.index);
                replica.reported_exit = true;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A new database and bucket prefix, as the variables a `berth` process reads.
fn shared_stores(folder: &Path) -> Vec<(&'static str, String)> {
    let s3 = infra::seaweedfs();
    let database = infra::postgres().database();
    vec![
        ("BERTH_DATABASE_URL", database),
        (
            "BERTH_STORAGE_URL",
            format!("s3://{}/{}", s3.bucket, s3.prefix()),
        ),
        ("AWS_ENDPOINT", s3.endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", s3.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret_access_key.clone()),
        // One key for every replica, made here as an operator makes it: a key file that is
        // named must exist.
        (
            "BERTH_SECRETS_KEY_FILE",
            secrets_key(folder).display().to_string(),
        ),
    ]
}

/// A new secrets key (32 random bytes in base64, as `openssl rand -base64 32` makes), readable by
/// its owner only.
fn secrets_key(folder: &Path) -> PathBuf {
    use base64::Engine as _;
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut key))
        .unwrap();
    let path = folder.join("secrets.key");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    writeln!(
        file,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
    .unwrap();
    path
}

struct Replica {
    index: usize,
    child: Child,
    addr: String,
    reported_exit: bool,
}

struct Starting {
    index: usize,
    child: Child,
    listening: mpsc::Receiver<String>,
}

impl Replica {
    fn spawn(
        index: usize,
        berth: &Path,
        folder: &Path,
        stores: &[(&str, String)],
        serve_args: &[String],
    ) -> Starting {
        let data_dir = folder.join(format!("replica{index}"));
        let mut child = Command::new(berth)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(serve_args)
            .envs(stores.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", berth.display()));
        // Each watchdog removes the whole testbed folder once the testbed is gone.
        infra::stop_with_this_process(&child, "TERM", folder);
        let stdout = child.stdout.take().unwrap();
        let (tx, listening) = mpsc::channel();
        // Reads the replica's output for as long as it runs (a full pipe would stop it).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("Berth listening on ") {
                    let addr = rest.trim_end_matches('/');
                    let addr = addr.split_once("://").map_or(addr, |(_, a)| a);
                    let _ = tx.send(addr.to_owned());
                }
                println!("[replica {index}] {line}");
            }
        });
        Starting {
            index,
            child,
            listening,
        }
    }

    /// Waits until the replica listens and its `/readyz` answers 200.
    fn ready(mut starting: Starting) -> Replica {
        let start = std::time::Instant::now();
        let addr = loop {
            match starting.listening.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => break addr,
                Err(mpsc::RecvTimeoutError::Timeout) if start.elapsed().as_secs() < 60 => {}
                Err(_) => panic!(
                    "replica {} did not report its address within 60 s",
                    starting.index
                ),
            }
            if let Ok(Some(status)) = starting.child.try_wait() {
                panic!("replica {} ended while starting: {status}", starting.index);
            }
        };
        let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
        infra::wait_for(&format!("replica {}'s /readyz", starting.index), || {
            infra::http_status(port, "/readyz") == Some(200)
        });
        Replica {
            index: starting.index,
            child: starting.child,
            addr,
            reported_exit: false,
        }
    }
}
