//! Which database is behind the store, and what differs between the two:
//! the URL, each connection's settings, the migrations, SQLite's files.
//! Everything else (SQL, the writer, the readers) is shared.

use sqlx::{AnyConnection, Executor};

use super::error::StoreError;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// How long a SQLite connection waits for a lock before it reports busy
/// (the writer's connection included, see `write_conn`).
pub(super) const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;

impl Backend {
    /// Settings every connection needs before its first statement; the
    /// writer's connection (`writer`) also sets the log's mode.
    pub(super) async fn prepare_connection(
        self,
        conn: &mut AnyConnection,
        writer: bool,
    ) -> Result<(), sqlx::Error> {
        match self {
            Backend::Sqlite => {
                // WAL lets readers run beside the writer; FULL makes every
                // commit durable before a 201; secure_delete overwrites
                // erased content instead of leaving it in free pages.
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                )))
                .await?;
                if writer {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    // The commit that crosses the WAL's size limit would
                    // copy it into the database and fsync it, stalling
                    // every request in the batch behind it; a background
                    // task checkpoints instead (`checkpoint_wal`).
                    conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                }
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA secure_delete = ON").await?;
                Ok(())
            }
            Backend::Postgres => {
                conn.execute("SET TIME ZONE 'UTC'").await?;
                Ok(())
            }
        }
    }

    /// Brings the schema up to date (each backend has its own scripts).
    pub(super) async fn migrate(self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run_direct(None, conn, false)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run_direct(None, conn, false)
                    .await?
            }
        }
        Ok(())
    }
}

/// Picks the backend from the URL; a SQLite URL gets `mode=rwc` so the file
/// is created on first start.
pub(super) fn normalise_url(url: &str) -> Result<(Backend, String), StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        if rest.is_empty() {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        let url = if rest.contains("mode=") {
            url.to_owned()
        } else if rest.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        Ok((Backend::Sqlite, url))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_owned()))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// The write-ahead log beside a SQLite database file.
#[cfg(test)]
pub(super) fn wal_file(db: &std::path::Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    std::path::PathBuf::from(name)
}

/// The database file a SQLite URL names.
pub(super) fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(std::path::PathBuf::from(
        rest.split('?').next().unwrap_or(rest),
    ))
}
