//! The durable echo's table: what `brdo bench --baseline durable` writes.
//!
//! The benchmark compares the gateway with the least a durable answer can
//! cost on the same machine: the same TLS and accept loop, and a handler
//! that stores the request body as one row through this store's own
//! writer (batching, group commit, `synchronous = FULL`, WAL and its
//! checkpoints) before it answers. Measuring a copy of the writer would
//! measure the copy; so the writer takes these rows as a second kind of
//! request (`writer::Request::EchoRow`).
//!
//! They carry no audit record, so they must never reach a gateway's
//! database: the table is made only in a new file by
//! [`Store::open_durable_echo`](super::Store::open_durable_echo), no
//! migration creates it, and
//! [`Store::append_echo_row`](super::Store::append_echo_row) refuses on
//! any store opened otherwise, before the writer sees the request. No HTTP
//! route calls either.

use super::error::StoreError;
use super::write_conn::WriteConn;

/// Creates the table (in a new benchmark database only).
pub(super) const CREATE: &str =
    "CREATE TABLE bench_echo (id INTEGER PRIMARY KEY, body BLOB NOT NULL)";

/// Appends one body as one row, inside the writer's batch.
pub(super) async fn insert(conn: &mut WriteConn, body: &[u8]) -> Result<(), StoreError> {
    conn.execute("INSERT INTO bench_echo (body) VALUES ($1)", &[body.into()])
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use crate::store::tests::{Kind, owner_only_tempdir, store};
    use crate::store::{Store, StoreError};

    #[tokio::test]
    async fn rows_are_written_unaudited_and_only_in_their_own_database() {
        let dir = owner_only_tempdir();
        let path = dir.path().join("echo.db");
        let echo = Store::open_durable_echo(&path).await.expect("open");
        let rows: Vec<_> = (0..40u8).map(|i| vec![i; 100]).collect();
        let answers =
            futures_util::future::join_all(rows.iter().map(|b| echo.append_echo_row(b.clone())))
                .await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        let (n, bytes): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), SUM(LENGTH(body)) FROM bench_echo")
                .fetch_one(echo.pool())
                .await
                .expect("count");
        assert_eq!((n, bytes), (40, 4000));
        assert_eq!(echo.audit_size().await.expect("audit size"), 0);

        // An existing file is never given the table.
        let again = Store::open_durable_echo(&path).await;
        assert!(matches!(again, Err(StoreError::Unavailable(_))));

        // A gateway's store refuses echo rows before its writer sees them.
        let (gateway, _db) = store(Kind::Sqlite).await.expect("sqlite store");
        assert!(matches!(
            gateway.append_echo_row(b"x".to_vec()).await,
            Err(StoreError::Unavailable(_))
        ));
        let tables: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'bench_echo'")
                .fetch_one(gateway.pool())
                .await
                .expect("tables");
        assert_eq!(tables, 0);
    }
}
