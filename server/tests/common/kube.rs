//! Berth over HTTPS with a CA of the test's own, and kubectl with a kubeconfig of its own: the
//! harness of the kubectl and oc tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use super::TestServer;

pub const KUBECTL: &str = "/usr/bin/kubectl";
pub fn kubectl_missing() -> bool {
    if Path::new(KUBECTL).exists() {
        return false;
    }
    eprintln!("skipped: {KUBECTL} is not installed (scripts/setup test installs it)");
    true
}

/// A CA and a certificate for 127.0.0.1 it signed, written to `dir`; answers the CA's file and
/// Berth's `--tls-cert`/`--tls-key` arguments.
pub fn certificates(dir: &Path) -> (PathBuf, Vec<String>) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Berth kubectl test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "berth");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let (ca_file, cert_file, key_file) =
        (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let args = vec![
        "--tls-cert".to_owned(),
        cert_file.display().to_string(),
        "--tls-key".to_owned(),
        key_file.display().to_string(),
    ];
    (ca_file, args)
}

/// Berth over HTTPS, with the CA that signed its certificate.
pub struct Https {
    pub server: TestServer,
    pub ca: PathBuf,
    pub dir: tempfile::TempDir,
}

pub fn start() -> Https {
    let dir = tempfile::tempdir().unwrap();
    let (ca, args) = certificates(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    Https { server, ca, dir }
}

/// kubectl with a kubeconfig of its own (the server, the CA, a bearer token, a namespace) and
/// a discovery cache of its own.
pub struct Kubectl {
    pub kubeconfig: PathBuf,
    pub cache: PathBuf,
}

impl Kubectl {
    pub fn new(https: &Https, user: &str, token: &str, namespace: &str) -> Self {
        let kubeconfig = https.dir.path().join(format!("{user}.kubeconfig"));
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1
kind: Config
clusters:
- name: berth
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: berth
  context:
    cluster: berth
    user: {user}
    namespace: {namespace}
current-context: berth
",
                server = https.server.base,
                ca = https.ca.display(),
            ),
        )
        .unwrap();
        let cache = https.dir.path().join(format!("{user}-cache"));
        Kubectl { kubeconfig, cache }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(KUBECTL);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        command
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running kubectl")
    }

    /// kubectl's output; it must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert!(
            output.status.success(),
            "kubectl {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// kubectl's error output; it must fail.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert!(
            !output.status.success(),
            "kubectl {} succeeded: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).unwrap()
    }

    /// A long-running kubectl (`get -w`) whose lines arrive on the channel.
    pub fn spawn(&self, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting kubectl");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }
}
