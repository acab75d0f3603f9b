//! The writer's connection: the same few calls over sqlx (PostgreSQL) and
//! over rusqlite (SQLite).
//!
//! sqlx runs each SQLite statement on a worker thread of its own and hands
//! every statement and every answer across threads. On two shared cores
//! each hand-off waited for the scheduler (0.2 to 0.4 ms a statement under
//! load), and with a dozen statements per batch the writer spent most of its
//! time waiting, which bounded the submit rate (BENCHMARKS.md). The SQLite
//! writer therefore owns a rusqlite connection and runs on a thread of its
//! own (`Store::open`), so a whole batch runs without a hand-off; the
//! `async` calls below then never suspend. PostgreSQL keeps sqlx: its
//! statements are network round trips either way.
//!
//! Statements use `$N` placeholders in both. SQLite treats `$N` as a named
//! parameter, numbered in order of first appearance, so the SQLite side binds
//! each parameter by the number in its name, never by position.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Executor, Row};

use super::error::StoreError;

/// Prepared statements kept per SQLite connection: the multi-row `INSERT`s
/// come in one shape per row count.
const SQLITE_STATEMENT_CACHE: usize = 512;

/// A statement parameter. Typed even when `NULL`: PostgreSQL must know a
/// parameter's type to accept it for a column.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    /// INTEGER / BIGINT.
    Int(Option<i64>),
    /// TEXT.
    Text(Option<&'a str>),
    /// BLOB / BYTEA.
    Blob(Option<&'a [u8]>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(Some(v))
    }
}

impl<'a> From<Option<&'a [u8]>> for Arg<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Arg::Blob(v)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            Arg::Int(Some(v)) => ToSqlOutput::Owned(Value::Integer(v)),
            Arg::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::Blob(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            Arg::Int(None) | Arg::Text(None) | Arg::Blob(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// A row the writer read.
pub(super) enum SqlRow {
    /// From sqlx.
    Any(AnyRow),
    /// From rusqlite, column by column.
    Sqlite(Vec<rusqlite::types::Value>),
}

impl SqlRow {
    /// An INTEGER column that may be `NULL`.
    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        use rusqlite::types::Value;
        match self {
            SqlRow::Any(r) => Ok(r.try_get(i)?),
            SqlRow::Sqlite(v) => match v.get(i) {
                Some(Value::Integer(n)) => Ok(Some(*n)),
                Some(Value::Null) => Ok(None),
                other => Err(shape(i, "an integer", other)),
            },
        }
    }

    /// An INTEGER column.
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    /// A TEXT column that may be `NULL`.
    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        use rusqlite::types::Value;
        match self {
            SqlRow::Any(r) => Ok(r.try_get(i)?),
            SqlRow::Sqlite(v) => match v.get(i) {
                Some(Value::Text(s)) => Ok(Some(s.clone())),
                Some(Value::Null) => Ok(None),
                other => Err(shape(i, "text", other)),
            },
        }
    }

    /// A TEXT column.
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    /// A BLOB column.
    pub fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        use rusqlite::types::Value;
        match self {
            SqlRow::Any(r) => Ok(r.try_get(i)?),
            SqlRow::Sqlite(v) => match v.get(i) {
                Some(Value::Blob(b)) => Ok(b.clone()),
                other => Err(shape(i, "a blob", other)),
            },
        }
    }
}

fn shape(i: usize, want: &str, got: Option<&rusqlite::types::Value>) -> StoreError {
    let got = match got {
        None => "no such column",
        Some(v) => match v.data_type() {
            rusqlite::types::Type::Null => "NULL",
            rusqlite::types::Type::Integer => "an integer",
            rusqlite::types::Type::Real => "a real",
            rusqlite::types::Type::Text => "text",
            rusqlite::types::Type::Blob => "a blob",
        },
    };
    StoreError::Corrupt(format!("column {i} should be {want}, is {got}"))
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The connection the writer owns.
pub(super) enum WriteConn {
    /// PostgreSQL through sqlx.
    Any(AnyConnection),
    /// SQLite through rusqlite, on the writer's own thread.
    Sqlite(rusqlite::Connection),
}

impl WriteConn {
    /// Opens the SQLite writer connection with the pragmas every write
    /// relies on. WAL lets readers run beside the writer; FULL makes every
    /// commit durable before a 201; secure_delete overwrites erased content
    /// instead of leaving it in free pages; automatic WAL checkpoints are
    /// off because the commit that crossed the limit would stall every
    /// request in its batch (a background task checkpoints instead);
    /// temp_store keeps the statement journal (which a multi-row `INSERT`
    /// inside the batch's transaction needs) in memory instead of a
    /// temporary file written with a syscall per page.
    pub(crate) fn open_sqlite(path: &std::path::Path) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_millis(
            super::backend::SQLITE_BUSY_TIMEOUT_MS,
        ))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{} cannot use WAL mode (journal_mode is {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(SQLITE_STATEMENT_CACHE);
        Ok(WriteConn::Sqlite(conn))
    }

    /// Runs a statement; returns the rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        match self {
            WriteConn::Any(c) => Ok(any_query(sql, args).execute(&mut *c).await?.rows_affected()),
            WriteConn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                bind_sqlite(&mut stmt, sql, args)?;
                Ok(stmt.raw_execute()? as u64)
            }
        }
    }

    /// Runs a statement without parameters (transaction control).
    pub async fn run(&mut self, sql: &'static str) -> Result<(), StoreError> {
        match self {
            WriteConn::Any(c) => {
                c.execute(sql).await?;
            }
            WriteConn::Sqlite(c) => {
                c.prepare_cached(sql)?.raw_execute()?;
            }
        }
        Ok(())
    }

    /// Every row a query returns.
    pub async fn fetch_all(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<SqlRow>, StoreError> {
        match self {
            WriteConn::Any(c) => Ok(any_query(sql, args)
                .fetch_all(&mut *c)
                .await?
                .into_iter()
                .map(SqlRow::Any)
                .collect()),
            WriteConn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                bind_sqlite(&mut stmt, sql, args)?;
                let columns = stmt.column_count();
                let mut rows = stmt.raw_query();
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let values = (0..columns)
                        .map(|i| r.get::<_, rusqlite::types::Value>(i))
                        .collect::<Result<Vec<_>, _>>()?;
                    out.push(SqlRow::Sqlite(values));
                }
                Ok(out)
            }
        }
    }

    /// Inserts `rows` into `table` (a constant of the store naming its
    /// columns), `per_insert` rows to a multi-row `INSERT`, each statement
    /// followed by `tail` (a conflict clause, or nothing). One statement
    /// for many rows: even without thread hand-offs, each statement costs
    /// its own parse, bind and step.
    pub(crate) async fn insert_rows<const N: usize>(
        &mut self,
        table: &str,
        rows: &[[Arg<'_>; N]],
        per_insert: usize,
        tail: &str,
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(per_insert.max(1)) {
            let mut sql = insert_sql(table, chunk.len(), N);
            sql.push_str(tail);
            let args: Vec<Arg<'_>> = chunk.iter().flatten().copied().collect();
            self.execute(&sql, &args).await?;
        }
        Ok(())
    }

    /// The first row a query returns, if any.
    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<SqlRow>, StoreError> {
        Ok(self.fetch_all(sql, args).await?.into_iter().next())
    }
}

/// `INSERT INTO {table} VALUES ($1, …), (…), …` for `rows` rows of
/// `per_row` parameters. `table` is always a constant of the store, never
/// input.
fn insert_sql(table: &str, rows: usize, per_row: usize) -> String {
    let mut sql = format!("INSERT INTO {table} VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for k in 1..=per_row {
            if k > 1 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * per_row + k).to_string());
        }
        sql.push(')');
    }
    sql
}

fn any_query<'q>(
    sql: &str,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for a in args {
        q = match *a {
            Arg::Int(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::Blob(v) => q.bind(v),
        };
    }
    q
}

/// Binds `$N` to `args[N - 1]`. SQLite finds a parameter's name by
/// walking a list of all of them, so looking every name up makes a
/// multi-row `INSERT` quadratic in its parameters. When the statement names
/// its parameters `$1, $2, …` in the order they first appear (every
/// statement the store builds, checked on the text and on the last name),
/// index N is `$N` and no lookup is needed; otherwise each is looked up.
fn bind_sqlite(
    stmt: &mut rusqlite::Statement<'_>,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<(), StoreError> {
    let count = stmt.parameter_count();
    if count > 0
        && numbered_in_order(sql) == Some(count)
        && stmt.parameter_name(count) == Some(format!("${count}").as_str())
    {
        let given = args.get(..count).ok_or_else(|| {
            StoreError::Corrupt(format!("{count} parameters, {} arguments", args.len()))
        })?;
        for (i, arg) in given.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, arg)?;
        }
        return Ok(());
    }
    for i in 1..=count {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("parameter {i} is not named $N")))?;
        let arg = n
            .checked_sub(1)
            .and_then(|k| args.get(k))
            .ok_or_else(|| StoreError::Corrupt(format!("no argument for parameter ${n}")))?;
        stmt.raw_bind_parameter(i, arg)?;
    }
    Ok(())
}

/// How many distinct `$N` parameters `sql` names, if each first appears in
/// order (`$1` before `$2` …; repeats allowed); `None` otherwise.
fn numbered_in_order(sql: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    let mut seen = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            let n: usize = sql.get(start..end)?.parse().ok()?;
            if n == seen + 1 {
                seen = n;
            } else if n > seen {
                return None;
            }
            i = end;
        } else {
            i += 1;
        }
    }
    Some(seen)
}

#[cfg(test)]
mod tests {
    use super::{Arg, WriteConn, insert_sql, numbered_in_order};

    #[test]
    fn placeholders_number_rows_after_each_other() {
        assert_eq!(
            insert_sql("t (a, b)", 2, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(insert_sql("t (a)", 1, 1), "INSERT INTO t (a) VALUES ($1)");
    }

    #[test]
    fn parameters_in_order_are_recognised() {
        assert_eq!(numbered_in_order("VALUES ($1, $2), ($3, $4)"), Some(4));
        assert_eq!(numbered_in_order("a = $1 OR b = $1 AND c = $2"), Some(2));
        assert_eq!(numbered_in_order("SET a = $3 WHERE id = $1"), None);
        assert_eq!(numbered_in_order("COMMIT"), Some(0));
        assert_eq!(numbered_in_order("a = $x"), None);
    }

    /// SQLite numbers `$N` parameters by first appearance; the writer's
    /// statements name them out of order (`SET a = $3 WHERE id = $1`).
    #[tokio::test]
    async fn sqlite_binds_by_the_number_in_the_name() {
        let dir = tempfile::tempdir().expect("dir");
        let mut c = WriteConn::open_sqlite(&dir.path().join("t.db")).expect("open");
        c.run("CREATE TABLE t (id TEXT PRIMARY KEY, a INTEGER, b BLOB)")
            .await
            .expect("create");
        c.execute(
            "INSERT INTO t (a, id, b) VALUES ($2, $1, $3)",
            &["x".into(), 7i64.into(), Arg::Blob(None)],
        )
        .await
        .expect("insert");
        c.execute(
            "INSERT INTO t (id, a) VALUES ($1, $2), ($3, $4)",
            &["p".into(), 1i64.into(), "q".into(), 2i64.into()],
        )
        .await
        .expect("insert in order");
        let q = c
            .fetch_optional("SELECT a FROM t WHERE id = $1", &["q".into()])
            .await
            .expect("select")
            .expect("row");
        assert_eq!(q.int(0).expect("a"), 2);
        let changed = c
            .execute(
                "UPDATE t SET b = $3, a = $2 WHERE id = $1",
                &["x".into(), 8i64.into(), (&[1u8, 2][..]).into()],
            )
            .await
            .expect("update");
        assert_eq!(changed, 1);
        let row = c
            .fetch_optional("SELECT id, a, b FROM t WHERE id = $1", &["x".into()])
            .await
            .expect("select")
            .expect("row");
        assert_eq!(row.text(0).expect("id"), "x");
        assert_eq!(row.int(1).expect("a"), 8);
        assert_eq!(row.blob(2).expect("b"), vec![1, 2]);
        assert!(row.text(1).is_err(), "an integer is not text");
        assert!(
            c.execute("INSERT INTO t (id, a) VALUES ($1, $2)", &["y".into()])
                .await
                .is_err(),
            "a missing argument is an error, not NULL"
        );
    }
}
