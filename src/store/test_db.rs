//! Throwaway PostgreSQL databases for the test suites.
//!
//! The store's tests, and the gateway's integration tests, run on SQLite
//! and on a real PostgreSQL server. Each test gets a database of its own
//! (created from the server named by [`POSTGRES_URL_VAR`], dropped when the
//! guard goes), so tests run in parallel without seeing each other's rows
//! and every run starts from empty migrations. Public only so the
//! integration tests can use it; not part of the gateway's interface.

use std::sync::atomic::{AtomicU32, Ordering};

// Names are made here from a pid, a counter and a uuid: no outside text.
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// Names the PostgreSQL server the tests use (any database on it; tests
/// create their own beside it). `.ci/test` sets it to a throwaway database
/// of its run. Unset, [`DEFAULT_POSTGRES_URL`] is tried; set to `skip`,
/// PostgreSQL tests say so and pass without running — for a machine that
/// has no PostgreSQL, by explicit choice only.
pub(crate) const POSTGRES_URL_VAR: &str = "BRDO_TEST_POSTGRES_URL";

/// The server on the development machines (trust authentication).
pub(crate) const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database that exists until this guard is dropped.
#[derive(Debug)]
pub struct PgTestDb {
    admin_url: String,
    name: String,
    /// A `postgres://` URL for the new database.
    pub url: String,
}

/// The server URL from [`POSTGRES_URL_VAR`], `None` when it says `skip`.
pub(crate) fn server_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(v) if v == "skip" => None,
        Ok(v) if !v.is_empty() => Some(v),
        _ => Some(DEFAULT_POSTGRES_URL.to_owned()),
    }
}

/// Replaces the database name in a `postgres://` URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    // The path starts at the first '/' after "scheme://authority".
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl PgTestDb {
    /// A fresh, empty database, or `None` when PostgreSQL tests are
    /// skipped by [`POSTGRES_URL_VAR`]`=skip`. Panics (this is test code)
    /// when the server cannot be reached, naming the variable to set.
    pub async fn create() -> Option<PgTestDb> {
        let Some(admin_url) = server_url() else {
            eprintln!("{POSTGRES_URL_VAR}=skip: PostgreSQL test not run");
            return None;
        };
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {admin_url} is not reachable ({e}); run .ci/test, which starts it, \
                 or set {POSTGRES_URL_VAR} (\"skip\" to leave PostgreSQL tests out)"
            )
        });
        let name = format!(
            "brdo_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::now_v7()
                .simple()
                .to_string()
                .get(20..)
                .unwrap_or("0")
        );
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        Some(PgTestDb {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await; a short-lived runtime on its own thread can.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&admin_url).await {
                    let _ = c.execute(AssertSqlSafe(sql)).await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced_keeping_the_query() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5432/test?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
