//! Reading the whole audit log fast, for `brdo audit verify`.
//!
//! sqlx's per-row and per-column handling dominates bulk reads (measured:
//! 70 000 rows/s with 18 columns through the `Any` driver, 800 000 rows/s
//! when SQLite packs the row into one column). On SQLite this reader asks
//! SQLite to join each record's fields with ASCII separators (0x1F between
//! fields, 0x1E for NULL, 0x1D between records) and to concatenate a block
//! of records per result row, on a dedicated read-only connection of the
//! concrete driver. Audit fields never hold these characters: free text is
//! validated free of control characters (newline and tab aside) before it
//! is recorded, and canonical JSON escapes them. A row that does not split
//! into whole records is a damaged log, reported as such. Other backends use
//! the portable page query.

use sqlx::{AssertSqlSafe, Row};

use super::Store;
use super::audit_rows::record_from_parts;
use super::backend::Backend;
use super::error::StoreError;
use crate::audit::AuditRecord;
use crate::audit::fields::{
    COLUMN_COUNT, COLUMN_NAMES, FIELD_COUNT, Field, HASH_COLUMN, PREV_HASH_COLUMN, REDUCED_COLUMN,
};
use crate::audit::record::StoredFields;
use crate::audit::verify::{ChainFault, LogVerifier};

/// The packed columns: every column of a row, from the record's one
/// definition.
const FIELDS: &[&str] = COLUMN_NAMES;

/// Records per result row.
const BLOCK: i64 = 1000;

/// One result row: the records in `($1, $2]` (at most `BLOCK` of them)
/// concatenated, each its fields joined by separators, in seq order. The
/// subquery walks the primary key in order, so nothing is sorted.
fn packed_select() -> String {
    // concat_ws builds each record in one pass (a chain of `||` would copy
    // the growing string once per field).
    let parts: Vec<String> = FIELDS
        .iter()
        .map(|f| format!("IFNULL({f}, char(30))"))
        .collect();
    format!(
        "SELECT group_concat(p, char(29)) FROM (SELECT concat_ws(char(31), {}) AS p FROM audit_log \
         WHERE seq > $1 AND seq <= $2 ORDER BY seq)",
        parts.join(", ")
    )
}

/// A packed block that does not split into whole records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored audit log is damaged: a row does not split into its {COLUMN_COUNT} fields")]
pub struct Damaged;

/// The fields of one packed record.
type Fields<'a> = [Option<&'a str>; COLUMN_COUNT];

/// Splits one packed record into its [`COLUMN_COUNT`] fields, without
/// allocating.
fn split_record(rec: &str) -> Result<Fields<'_>, Damaged> {
    let mut fields: Fields<'_> = [None; COLUMN_COUNT];
    let mut parts = rec.split('\u{1f}');
    for slot in &mut fields {
        let f = parts.next().ok_or(Damaged)?;
        *slot = if f == "\u{1e}" { None } else { Some(f) };
    }
    if parts.next().is_some() {
        return Err(Damaged);
    }
    Ok(fields)
}

/// Splits packed text back into records of [`COLUMN_COUNT`] optional
/// fields each.
fn unpack(packed: &str) -> impl Iterator<Item = Result<Fields<'_>, Damaged>> {
    packed
        .split('\u{1d}')
        .filter(|_| !packed.is_empty())
        .map(split_record)
}

/// A bulk reader of audit pages.
pub enum BulkReader {
    /// SQLite: packed blocks on a read-only concrete connection.
    Sqlite {
        /// The connection.
        pool: sqlx::SqlitePool,
        /// The packing query.
        sql: String,
        /// The highest seq when the reader was opened.
        max_seq: u64,
    },
    /// Anything else: the store's page query.
    Portable(Store),
}

impl Store {
    /// A reader for walking the whole log quickly.
    pub async fn bulk_reader(&self, url: &str) -> Result<BulkReader, StoreError> {
        match self.backend() {
            Backend::Sqlite => {
                let opts: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts.read_only(true))
                    .await?;
                let max: Option<i64> = sqlx::query("SELECT MAX(seq) FROM audit_log")
                    .fetch_one(&pool)
                    .await?
                    .try_get(0)?;
                Ok(BulkReader::Sqlite {
                    pool,
                    sql: packed_select(),
                    max_seq: u64::try_from(max.unwrap_or(0)).unwrap_or(0),
                })
            }
            Backend::Postgres => Ok(BulkReader::Portable(self.clone())),
        }
    }
}

/// A block of the log as read: packed text (SQLite) or records.
#[derive(Debug)]
pub enum Block {
    /// Packed blocks of up to 1000 records each.
    Packed(Vec<String>),
    /// Records with their reduced flag.
    Records(Vec<(AuditRecord, bool)>),
}

impl Block {
    /// Number of records (packed blocks are counted while visiting).
    pub fn is_empty(&self) -> bool {
        match self {
            Block::Packed(p) => p.iter().all(String::is_empty),
            Block::Records(r) => r.is_empty(),
        }
    }

    /// Feeds every record to `verifier` in order; returns how many.
    pub fn verify_into(&self, verifier: &mut LogVerifier<'_>) -> Result<u64, ChainFault> {
        let mut n = 0u64;
        match self {
            Block::Records(records) => {
                for (rec, reduced) in records {
                    verifier.push(rec, *reduced)?;
                    n += 1;
                }
            }
            Block::Packed(texts) => {
                for text in texts {
                    for rec in unpack(text) {
                        let after = verifier.count();
                        let rec = rec.map_err(|_| ChainFault::Unreadable { after })?;
                        verify_packed(verifier, &rec)?;
                        n += 1;
                    }
                }
            }
        }
        Ok(n)
    }
}

/// Feeds one packed record to `verifier` as borrowed columns.
fn verify_packed(verifier: &mut LogVerifier<'_>, rec: &Fields<'_>) -> Result<(), ChainFault> {
    let after = verifier.count();
    let unreadable = || ChainFault::Unreadable { after };
    let text = |i: usize| rec[i].ok_or_else(unreadable);
    let seq: u64 = text(Field::Seq as usize)?
        .parse()
        .map_err(|_| unreadable())?;
    let fields = if text(REDUCED_COLUMN)? != "0" {
        None
    } else {
        Some(StoredFields::from_columns(seq, &rec[..FIELD_COUNT]).ok_or_else(unreadable)?)
    };
    verifier.push_stored(
        seq,
        fields.as_ref(),
        text(PREV_HASH_COLUMN)?,
        text(HASH_COLUMN)?,
    )
}

impl BulkReader {
    /// The next block after `after` (about `limit` records) and the cursor
    /// to continue from; `None` at the end of the log.
    pub async fn block(&self, after: u64, limit: u32) -> Result<Option<(Block, u64)>, StoreError> {
        match self {
            BulkReader::Portable(store) => {
                let page = store.audit_page(after, limit).await?;
                Ok(page
                    .last()
                    .map(|(r, _)| r.seq)
                    .map(|next| (Block::Records(page), next)))
            }
            BulkReader::Sqlite { pool, sql, max_seq } => {
                if after >= *max_seq {
                    return Ok(None);
                }
                let to_i64 = |n: u64| {
                    i64::try_from(n).map_err(|_| StoreError::Corrupt("seq out of range".into()))
                };
                let end = after.saturating_add(u64::from(limit)).min(*max_seq);
                let mut texts = Vec::new();
                let mut from = after;
                while from < end {
                    let to = from.saturating_add(BLOCK as u64).min(end);
                    let row = sqlx::query(AssertSqlSafe(sql.clone()))
                        .bind(to_i64(from)?)
                        .bind(to_i64(to)?)
                        .fetch_one(pool)
                        .await?;
                    texts.push(row.try_get::<Option<String>, _>(0)?.unwrap_or_default());
                    from = to;
                }
                Ok(Some((Block::Packed(texts), end)))
            }
        }
    }

    /// Records after `after` as owned values (tests, tools that need them).
    pub async fn page(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(AuditRecord, bool)>, StoreError> {
        match self.block(after, limit).await? {
            None => Ok(Vec::new()),
            Some((Block::Records(r), _)) => Ok(r),
            Some((Block::Packed(texts), _)) => {
                let mut out = Vec::new();
                for text in &texts {
                    for fields in unpack(text) {
                        let fields = fields.map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        out.push(record_from_parts(&fields)?);
                    }
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_packing_round_trips_any_content() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("sqlite");
        let cols: Vec<String> = FIELDS
            .iter()
            .map(|f| format!("{f} {}", if *f == "seq" { "INTEGER" } else { "TEXT" }))
            .collect();
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE audit_log ({})",
            cols.join(", ")
        )))
        .execute(&pool)
        .await
        .expect("table");
        let tricky = ["-", "12:x-", "é:ü😂", "", "a\tb\nc", "'\"", "--:--"];
        let mut values: Vec<Option<String>> = (0..18)
            .map(|i| Some(tricky[i % tricky.len()].to_owned()))
            .collect();
        values[0] = Some("7".into());
        values[3] = None;
        values[11] = None;
        let placeholders: Vec<String> = (1..=18).map(|i| format!("${i}")).collect();
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO audit_log VALUES ({})",
            placeholders.join(", ")
        )));
        for v in &values {
            q = q.bind(v.clone());
        }
        q.execute(&pool).await.expect("insert");
        let mut second = values.clone();
        second[0] = Some("8".into());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO audit_log VALUES ({})",
            placeholders.join(", ")
        )));
        for v in &second {
            q = q.bind(v.clone());
        }
        q.execute(&pool).await.expect("insert");
        let row = sqlx::query(AssertSqlSafe(packed_select()))
            .bind(0i64)
            .bind(10i64)
            .fetch_one(&pool)
            .await
            .expect("select");
        let packed: String = row.try_get(0).expect("text");
        let empty = sqlx::query(AssertSqlSafe(packed_select()))
            .bind(10i64)
            .bind(20i64)
            .fetch_one(&pool)
            .await
            .expect("select");
        assert_eq!(empty.try_get::<Option<String>, _>(0).expect("null"), None);
        let records: Vec<Vec<Option<&str>>> = unpack(&packed)
            .map(|r| r.map(|f| f.to_vec()))
            .collect::<Result<_, _>>()
            .expect("unpacks");
        let want: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
        let want2: Vec<Option<&str>> = second.iter().map(Option::as_deref).collect();
        assert_eq!(records, vec![want, want2]);
        assert_eq!(
            split_record("7\u{1f}x"),
            Err(Damaged),
            "an incomplete record is refused"
        );
        let smuggled = packed.replacen("é:ü😂", "é\u{1f}ü😂", 1);
        assert!(
            unpack(&smuggled).any(|r| r.is_err()),
            "a separator inside a field is damage, not a field"
        );
        assert_eq!(unpack("").count(), 0);
    }
}
