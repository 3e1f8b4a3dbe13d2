//! The server's key for secrets at rest (registry credentials, webhook signing secrets): 32 bytes
//! kept in a file apart from the database (`[secrets] key_file`, else `<data_dir>/secrets.key`,
//! made on first start, readable by its owner only), so that a copy of the database alone
//! reveals nothing. What the key seals is `sealing.rs`'s.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{KeyInit, OsRng};

/// The 32-byte key of secrets at rest. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretsKey(pub(super) [u8; 32]);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

/// Why the key file cannot be used; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("secrets.key_file: {} {reason}", .path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("secrets.key_file: writing a new key to {} failed: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SecretsKey {
    /// A new random key.
    pub fn generate() -> Self {
        let generated = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut key = [0u8; 32];
        key.copy_from_slice(&generated);
        SecretsKey(key)
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        SecretsKey(key)
    }

    /// Reads the key file at `path` (32 bytes in base64). When it does not exist and `create`
    /// is set, a new random key is written there first, readable by its owner only; if another
    /// process makes it at the same moment, theirs is kept and read.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, KeyFileError> {
        let invalid = |reason: String| KeyFileError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && create => {
                write_new_key(path).map_err(|source| KeyFileError::Write {
                    path: path.to_owned(),
                    source,
                })?;
                tracing::info!(path = %path.display(), "made a new key for registry secrets");
                std::fs::read_to_string(path)
                    .map_err(|err| invalid(format!("cannot be read: {err}")))?
            }
            Err(err) => return Err(invalid(format!("cannot be read: {err}"))),
        };
        warn_if_others_may_read(path);
        // The file's format is decoded where the configuration checks it at load time.
        crate::config::decode_secrets_key(&text)
            .map(SecretsKey)
            .map_err(invalid)
    }
}

/// Writes a new key to a file beside `path`, then links it into place, which fails when `path`
/// exists: a half-written key is never seen, and two processes agree on one key.
fn write_new_key(path: &Path) -> std::io::Result<()> {
    let key = SecretsKey::generate();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secrets.key".into());
    let temp = path.with_file_name(format!(".{file_name}.{}", uuid::Uuid::new_v4()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(format!("{}\n", STANDARD.encode(key.0)).as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = std::fs::File::open(folder).and_then(|f| f.sync_all());
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

fn warn_if_others_may_read(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the key of registry secrets is readable by others; `chmod 600` it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_made_once_for_its_owner_and_read_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let err = SecretsKey::load_or_create(&path, false).unwrap_err();
        assert!(err.to_string().starts_with("secrets.key_file: "), "{err}");

        let made = SecretsKey::load_or_create(&path, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left"
        );
        let read = SecretsKey::load_or_create(&path, true).unwrap();
        assert_eq!(made.0, read.0);

        std::fs::write(&path, "c2hvcnQ=\n").unwrap();
        let err = SecretsKey::load_or_create(&path, true).unwrap_err();
        assert!(
            err.to_string().starts_with("secrets.key_file: ")
                && err.to_string().contains("holds 5 bytes"),
            "{err}"
        );
        assert_eq!(format!("{made:?}"), "SecretsKey(..)");
    }
}
