//! Berth's console in front of a cluster, with a second Berth on its embedded defaults playing
//! the cluster: it speaks the same image stream API, access reviews and OAuth.

use std::path::PathBuf;

use super::{ADMIN_PASSWORD, TestServer, browser, location, submit_sign_in_form};

/// The console's OAuth client at the upstream.
pub const CLIENT_ID: &str = "berth-front";
const CLIENT_SECRET: &str = "front0secret";

pub struct InFront {
    /// The cluster: a Berth with its registry, API and OAuth server.
    pub upstream: TestServer,
    /// The console in front of it.
    pub console: TestServer,
    _config: tempfile::TempDir,
}

/// A port free now, for a server whose address must be known before it starts (the
/// upstream's OAuth client names the console's callback).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap()
}

impl InFront {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// `auth` is more of the upstream's `[auth]` section.
    pub fn start_with(auth: &str) -> Self {
        Self::start_configured(auth, &[])
    }

    /// `console_args` are more flags of the console in front.
    pub fn start_configured(auth: &str, console_args: &[&str]) -> Self {
        let port = free_port();
        let config = tempfile::tempdir().unwrap();
        let upstream_config: PathBuf = config.path().join("upstream.toml");
        std::fs::write(
            &upstream_config,
            format!(
                "[auth]\nlogin_attempts_per_minute = 100\n{auth}\n\n[[auth.clients]]\nid = \"{CLIENT_ID}\"\nsecret = \"{CLIENT_SECRET}\"\nredirect_uri = \"http://127.0.0.1:{port}/console/callback\"\n"
            ),
        )
        .unwrap();
        let upstream = TestServer::start_with(&["--config", upstream_config.to_str().unwrap()]);
        let console = TestServer::spawn_on(
            &format!("127.0.0.1:{port}"),
            &config.path().join("console"),
            vec![
                "--upstream-api".into(),
                upstream.base.clone(),
                "--upstream-registry".into(),
                upstream.base.clone(),
                "--upstream-client-id".into(),
                CLIENT_ID.into(),
                "--upstream-client-secret".into(),
                CLIENT_SECRET.into(),
            ]
            .into_iter()
            .chain(console_args.iter().map(|arg| arg.to_string()))
            .collect(),
            // A console in front of a cluster keeps nothing of its own.
            super::Storage::Embedded,
        );
        InFront {
            upstream,
            console,
            _config: config,
        }
    }

    /// A browser signed in to the console through the upstream's OAuth server as `user`, and
    /// its session's CSRF token.
    pub async fn sign_in(&self, user: &str, password: &str) -> (reqwest::Client, String) {
        let browser = browser();
        let to_cluster = browser
            .get(self.console.url("/console/login?then=/"))
            .send()
            .await
            .unwrap();
        assert_eq!(to_cluster.status(), reqwest::StatusCode::SEE_OTHER);
        let authorize = location(&to_cluster);
        assert!(
            authorize.starts_with(&format!("{}/oauth/authorize?", self.upstream.base))
                && authorize.contains("code_challenge_method=S256")
                && authorize.contains(&format!("client_id={CLIENT_ID}"))
                && authorize.contains("state="),
            "{authorize}"
        );
        let back = submit_sign_in_form(
            &browser,
            &authorize,
            &self.upstream.url("/oauth/authorize"),
            user,
            password,
        )
        .await;
        assert_eq!(
            back.status(),
            reqwest::StatusCode::SEE_OTHER,
            "signing in {user}"
        );
        let callback = location(&back);
        assert!(
            callback.starts_with(&self.console.url("/console/callback?")),
            "{callback}"
        );
        let done = browser.get(&callback).send().await.unwrap();
        let status = done.status();
        assert_eq!(
            status,
            reqwest::StatusCode::SEE_OTHER,
            "{}",
            done.text().await.unwrap_or_default()
        );
        let session = super::json_of(browser.get(self.console.url("/console/api/session"))).await;
        assert_eq!(session["user"], user);
        assert_eq!(session["upstream"], self.upstream.base.as_str());
        let csrf = session["csrf_token"].as_str().unwrap().to_owned();
        (browser, csrf)
    }

    pub async fn sign_in_admin(&self) -> (reqwest::Client, String) {
        self.sign_in("admin", ADMIN_PASSWORD).await
    }
}
