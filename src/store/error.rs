//! Why a store operation failed: one error type for every query and
//! write, kept apart from the `Store` handle so that the modules below it
//! can name it without importing the handle's module.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or refused the write; the request
    /// fails closed (`503`). The text is for logs, never for clients.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Another request stored the same idempotency key first.
    #[error("the idempotency key was used by a concurrent request")]
    IdempotencyRace,
    /// The row the operation needs is not there (or no longer).
    #[error("not found")]
    NotFound,
    /// The message is under a legal hold.
    #[error("the message is under a legal hold")]
    Held,
    /// The message's content was already erased.
    #[error("the message was already erased")]
    AlreadyErased,
    /// The family's label, hold, members or permissions a lifecycle write
    /// was decided on changed before it committed; deciding again may give
    /// another answer.
    #[error("the message's family changed since the request was decided")]
    FamilyChanged,
    /// Stored data does not have the shape the code writes.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database URL is not one the gateway supports.
    #[error("database url {0:?} is not supported: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// A database file or its directory is open to group or others, who
    /// could read officer names, case references and routing from it.
    #[error("{0}")]
    Exposed(String),
}

impl From<sqlx::Error> for StoreError {
    /// A column that decoded to a value outside its closed set (see
    /// `vocab`) is corrupt data, not an unavailable database.
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::ColumnDecode { source, .. } | sqlx::Error::Decode(source) = &e
            && let Some(StoreError::Corrupt(what)) = source.downcast_ref::<StoreError>()
        {
            return StoreError::Corrupt(what.clone());
        }
        StoreError::Unavailable(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Unavailable(format!("migration failed: {e}"))
    }
}
