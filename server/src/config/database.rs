//! `[database]`: where metadata is kept: SQLite in the data folder (the default), another
//! SQLite file, or PostgreSQL shared by replicas.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`; none: the data
    /// folder's `berth.db`.
    pub url: Option<String>,
    /// Connections each replica keeps to PostgreSQL at most.
    pub pool_size: u32,
    /// PostgreSQL cancels a statement running longer than this.
    pub statement_timeout_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            pool_size: 16,
            statement_timeout_seconds: 30,
        }
    }
}

/// The URL may hold a password: never print it.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_password))
            .field("pool_size", &self.pool_size)
            .field("statement_timeout_seconds", &self.statement_timeout_seconds)
            .finish()
    }
}

/// Which database the configuration names.
#[derive(Clone, PartialEq)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` (or `postgresql://`) URL, as libpq and sqlx read it.
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&redact_password(url))
                .finish(),
        }
    }
}

impl DatabaseConfig {
    /// The database to open, with the data folder's `berth.db` as the default.
    pub fn database(&self, data_dir: &Path) -> Result<Database, ConfigError> {
        let Some(url) = self.url.as_deref() else {
            return Ok(Database::Sqlite(data_dir.join("berth.db")));
        };
        let invalid = |reason: String| ConfigError::Invalid {
            field: "database.url",
            reason,
        };
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(invalid("sqlite:// needs the database file's path".into()));
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed = url::Url::parse(url)
                .map_err(|err| invalid(format!("{} is not a URL: {err}", redact_password(url))))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(invalid("a postgres:// URL needs a host".into()));
            }
            return Ok(Database::Postgres(url.to_owned()));
        }
        Err(invalid(format!(
            "{} is neither sqlite://PATH nor postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            redact_password(url)
        )))
    }

    pub(super) fn validate(&self, data_dir: &Path) -> Result<(), ConfigError> {
        self.database(data_dir)?;
        if self.pool_size == 0 {
            return Err(ConfigError::Invalid {
                field: "database.pool_size",
                reason: "must be at least 1".into(),
            });
        }
        if self.statement_timeout_seconds == 0 {
            return Err(ConfigError::Invalid {
                field: "database.statement_timeout_seconds",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// The URL with its password (if any) replaced, for messages and logs.
pub fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> DatabaseConfig {
        DatabaseConfig {
            url: Some(url.into()),
            ..DatabaseConfig::default()
        }
    }

    #[test]
    fn the_data_folder_sqlite_file_is_the_default() {
        assert_eq!(
            DatabaseConfig::default()
                .database(Path::new("/srv/berth"))
                .unwrap(),
            Database::Sqlite("/srv/berth/berth.db".into())
        );
        assert_eq!(
            with_url("sqlite:///var/lib/berth.db")
                .database(Path::new("/srv"))
                .unwrap(),
            Database::Sqlite("/var/lib/berth.db".into())
        );
    }

    #[test]
    fn postgres_urls_are_taken_as_written() {
        for url in [
            "postgres://berth:secret@db.internal:5432/berth",
            "postgresql://berth@127.0.0.1/berth?sslmode=require",
        ] {
            assert_eq!(
                with_url(url).database(Path::new("/srv")).unwrap(),
                Database::Postgres(url.into())
            );
        }
    }

    #[test]
    fn other_urls_are_refused_without_showing_the_password() {
        for url in [
            "mysql://root:hunter2@db/berth",
            "sqlite://",
            "postgres://:hunter2@/berth",
        ] {
            let err = with_url(url).validate(Path::new("/srv")).unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with("database.url: "), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn the_password_is_never_printed() {
        let config = with_url("postgres://berth:hunter2@db/berth");
        let shown = format!("{config:?} {:?}", config.database(Path::new("/")).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn pool_size_and_timeout_must_be_positive() {
        for (config, field) in [
            (
                DatabaseConfig {
                    pool_size: 0,
                    ..DatabaseConfig::default()
                },
                "database.pool_size",
            ),
            (
                DatabaseConfig {
                    statement_timeout_seconds: 0,
                    ..DatabaseConfig::default()
                },
                "database.statement_timeout_seconds",
            ),
        ] {
            let message = config.validate(Path::new("/srv")).unwrap_err().to_string();
            assert!(message.starts_with(field), "{message}");
        }
    }
}
