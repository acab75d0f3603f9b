//! Audit records in the database: appending to the chain, reading back.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::convert::to_i64;
use super::error::StoreError;
use super::merkle_rows::Tree;
use super::write_conn::{Arg, WriteConn};
use crate::audit::fields::{
    COLUMN_COUNT, FIELDS, Field, HASH_COLUMN, Kind, PREV_HASH_COLUMN, REDUCED_COLUMN,
    STORED_COLUMNS,
};
use crate::audit::record::{AuditRecord, GENESIS_HASH, RecordDraft, Role, format_at};
use crate::audit::stored::{JsonColumns, StoredFields, record_from_columns};

/// The end of the chain, as the writer tracks it within a batch.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub seq: u64,
    pub hash: String,
    /// `at` of the last record: records are stamped in chain order, never
    /// earlier than their predecessor, so time order is chain order.
    pub at: String,
    /// Records appended in this batch, not yet written.
    pub pending: Vec<PendingRecord>,
}

pub(super) async fn read_head(conn: &mut WriteConn) -> Result<Head, StoreError> {
    let row = conn
        .fetch_optional(
            "SELECT seq, hash, at FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(match row {
        Some(r) => Head {
            seq: u64::try_from(r.int(0)?)
                .map_err(|_| StoreError::Corrupt("negative seq".into()))?,
            hash: r.text(1)?,
            at: r.opt_text(2)?.unwrap_or_default(),
            pending: Vec::new(),
        },
        None => Head {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
            at: String::new(),
            pending: Vec::new(),
        },
    })
}

/// A record appended in this batch but not yet written (see [`append`]).
#[derive(Debug, Clone)]
pub(super) struct PendingRecord {
    seq: i64,
    rec: AuditRecord,
    /// The record's list and object columns, encoded.
    json: JsonColumns,
    parties: Vec<String>,
    messages: Vec<String>,
}

/// Appends a record after `head` and advances `head`. The rows themselves
/// wait in `head.pending` until [`write_pending`] (before the batch's
/// commit, or before an op that touches audit rows): one multi-row `INSERT`
/// per table for the whole batch instead of three statements per record,
/// because every statement is a round trip to the database connection's
/// worker thread, most of the writer's time (BENCHMARKS.md). Nothing reads
/// a batch's own audit rows before then, and a failure still aborts the
/// whole transaction.
pub(super) async fn append(
    // Kept for the callers' uniform shape; rows are written by `write_pending`.
    _conn: &mut WriteConn,
    head: &mut Head,
    tree: &mut Tree,
    mut draft: RecordDraft,
) -> Result<AuditRecord, StoreError> {
    let seq = head.seq + 1;
    let now = format_at(time::OffsetDateTime::now_utc());
    draft.at = if now < head.at { head.at.clone() } else { now };
    let rec = draft
        .chain(seq, &head.hash)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let d = &rec.draft;
    let seq_i = to_i64(seq)?;
    let json = JsonColumns::of(d).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tree.push(&rec.hash)?;
    head.seq = seq;
    head.hash.clone_from(&rec.hash);
    head.at.clone_from(&rec.draft.at);
    head.pending.push(PendingRecord {
        seq: seq_i,
        parties: parties(d),
        messages: messages(d),
        json,
        rec: rec.clone(),
    });
    Ok(rec)
}

/// Records per `audit_log` INSERT (18 parameters each). Kept small for
/// PostgreSQL's sake as much as SQLite's: a statement's cost grows with its
/// parameters, and with sqlx's SQLite binding (by name) faster than
/// linearly (`sqlite3_bind_parameter_name` was 5 % of the gateway's CPU at
/// 64 records per statement, before the SQLite writer bound by index).
const RECORDS_PER_INSERT: usize = 16;
/// Index rows per INSERT (2 parameters each).
const INDEX_ROWS_PER_INSERT: usize = 64;

/// Writes the records [`append`] queued in `head.pending`, with their index
/// rows.
pub(super) async fn write_pending(conn: &mut WriteConn, head: &mut Head) -> Result<(), StoreError> {
    let pending = std::mem::take(&mut head.pending);
    let records: Vec<[Arg<'_>; COLUMN_COUNT]> = pending.iter().map(row_args).collect();
    conn.insert_rows(
        &format!("audit_log ({STORED_COLUMNS})"),
        &records,
        RECORDS_PER_INSERT,
        "",
    )
    .await?;
    let parties: Vec<(&str, i64)> = pending
        .iter()
        .flat_map(|p| p.parties.iter().map(move |v| (v.as_str(), p.seq)))
        .collect();
    insert_index(conn, "audit_parties", "partner", &parties).await?;
    let messages: Vec<(&str, i64)> = pending
        .iter()
        .flat_map(|p| p.messages.iter().map(move |v| (v.as_str(), p.seq)))
        .collect();
    insert_index(conn, "audit_messages", "message_id", &messages).await?;
    Ok(())
}

/// A pending record's row, in [`STORED_COLUMNS`] order.
fn row_args(p: &PendingRecord) -> [Arg<'_>; COLUMN_COUNT] {
    let fields = StoredFields::of(p.rec.seq, &p.rec.draft, &p.json);
    std::array::from_fn(|i| match FIELDS.get(i) {
        Some(def) if def.kind == Kind::Seq => p.seq.into(),
        Some(def) => fields.column(def.field).into(),
        None if i == PREV_HASH_COLUMN => p.rec.prev_hash.as_str().into(),
        None if i == HASH_COLUMN => p.rec.hash.as_str().into(),
        // `reduced`: a record is written whole.
        None => 0i64.into(),
    })
}

/// Multi-row `INSERT`s of index rows. `table` and `column` are constants of
/// this module, never input.
async fn insert_index(
    conn: &mut WriteConn,
    table: &'static str,
    column: &'static str,
    rows: &[(&str, i64)],
) -> Result<(), StoreError> {
    let rows: Vec<[Arg<'_>; 2]> = rows
        .iter()
        .map(|(v, seq)| [(*v).into(), (*seq).into()])
        .collect();
    conn.insert_rows(
        &format!("{table} ({column}, seq)"),
        &rows,
        INDEX_ROWS_PER_INSERT,
        "",
    )
    .await
}

/// Partners a record involves: a partner or partner-DPO actor, and every
/// counterpart.
fn parties(d: &RecordDraft) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if matches!(d.actor.role, Role::Partner | Role::Dpo)
        && let Some(id) = &d.actor.id
        && id != "gateway"
    {
        out.push(id.clone());
    }
    for c in &d.counterparts {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

/// Messages a record concerns: its `message_id` and any ids listed in
/// `details.message_ids` (an inbox listing).
fn messages(d: &RecordDraft) -> Vec<String> {
    let mut out: Vec<String> = d.message_id.iter().cloned().collect();
    if let Some(Value::Array(ids)) = d.details.as_ref().and_then(|m| m.get("message_ids")) {
        for id in ids.iter().filter_map(Value::as_str) {
            if !out.iter().any(|o| o == id) {
                out.push(id.to_owned());
            }
        }
    }
    out
}

/// The columns read back for a record, in [`record_from_row`] order.
pub(super) const RECORD_COLUMNS: &str = STORED_COLUMNS;

/// Rebuilds a record from its row. A reduced record comes back with empty
/// fields and `true`; its hash is then only checked for linkage.
pub(super) fn record_from_row(row: &AnyRow) -> Result<(AuditRecord, bool), StoreError> {
    let mut texts: Vec<Option<String>> = Vec::with_capacity(COLUMN_COUNT);
    for i in 0..COLUMN_COUNT {
        let integer = i == REDUCED_COLUMN || FIELDS.get(i).is_some_and(|d| d.kind == Kind::Seq);
        texts.push(if integer {
            Some(row.try_get::<i64, _>(i)?.to_string())
        } else if i == PREV_HASH_COLUMN || i == HASH_COLUMN {
            Some(row.try_get::<String, _>(i)?)
        } else {
            row.try_get::<Option<String>, _>(i)?
        });
    }
    let borrowed: Vec<Option<&str>> = texts.iter().map(Option::as_deref).collect();
    record_from_parts(&borrowed)
}

/// Rebuilds a record from its columns as text (in [`RECORD_COLUMNS`]
/// order), however they were read.
pub(super) fn record_from_parts(f: &[Option<&str>]) -> Result<(AuditRecord, bool), StoreError> {
    record_from_columns(f).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Filters of the DPO audit query (SPEC §5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records involving this partner (actor or counterpart).
    pub partner: Option<String>,
    /// Only records concerning this message.
    pub message: Option<String>,
    /// Only records by this officer.
    pub officer: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only records with this refusal or failure code (e.g.
    /// `content_integrity`, what a DPO looks for after an alert).
    pub code: Option<String>,
    /// At or after this instant (RFC 3339, as stored).
    pub from: Option<String>,
    /// Before this instant.
    pub to: Option<String>,
    /// Records after this seq (ascending) or before it (descending).
    pub after: Option<u64>,
    /// Newest first.
    pub descending: bool,
    /// Page size.
    pub limit: u32,
}

impl super::Store {
    /// One page of the DPO audit query. `scope` limits the result to records
    /// involving that partner (a partner DPO's view); filters combine with
    /// AND. Stable cursor: records strictly after (or, descending, before)
    /// `filter.after`, in seq order.
    pub async fn audit_query(
        &self,
        filter: &AuditFilter,
        scope: Option<&str>,
    ) -> Result<Vec<(AuditRecord, bool)>, StoreError> {
        let mut q = AuditQuery::from_indexes(filter, scope);
        // Records are stamped in chain order, so a time window is a seq
        // range: two index lookups turn it into bounds every index can use.
        if let Some(from) = &filter.from {
            match self.first_seq_at_or_after(from).await? {
                Some(lower) => q.seq_bound(">=", lower)?,
                None => return Ok(Vec::new()),
            }
        }
        if let Some(to) = &filter.to
            && let Some(upper) = self.first_seq_at_or_after(to).await?
        {
            q.seq_bound("<", upper)?;
        }
        q.column_filters(filter);
        if let Some(after) = filter.after {
            q.seq_bound(if filter.descending { "<" } else { ">" }, after)?;
        }
        let (sql, binds) = q.finish(filter);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The first record stamped at or after `at`.
    async fn first_seq_at_or_after(&self, at: &str) -> Result<Option<u64>, StoreError> {
        // `at` rises with seq, so the first index entry is the answer
        // (MIN(seq) would scan every entry after `at`).
        let row = sqlx::query("SELECT seq FROM audit_log WHERE at >= $1 ORDER BY at, seq LIMIT 1")
            .bind(at.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => u64::try_from(r.try_get::<i64, _>(0)?).ok(),
            None => None,
        })
    }

    /// Whether record `seq` involves `partner` (a partner DPO's view).
    pub(crate) async fn audit_involves(&self, seq: u64, partner: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 FROM audit_parties WHERE partner = $1 AND seq = $2")
                .bind(partner.to_owned())
                .bind(super::convert::to_i64(seq)?)
                .fetch_optional(self.pool())
                .await?
                .is_some(),
        )
    }
}

/// The DPO audit query as it is built: values are always bound, never
/// spliced into the SQL text.
struct AuditQuery {
    sql: String,
    conds: Vec<String>,
    binds: Vec<Bind>,
    /// The seq column the scan is ordered by.
    seq_col: &'static str,
}

impl AuditQuery {
    /// `SELECT … FROM`, driven by the first index table that narrows the
    /// log (partner DPO scope, partner, message), if any.
    fn from_indexes(filter: &AuditFilter, scope: Option<&str>) -> Self {
        // Index tables that narrow the log: (table, key column, value).
        let mut indexed: Vec<(&str, &str, &str)> = Vec::new();
        if let Some(p) = scope {
            indexed.push(("audit_parties", "partner", p));
        }
        if let Some(p) = &filter.partner {
            indexed.push(("audit_parties", "partner", p));
        }
        if let Some(m) = &filter.message {
            indexed.push(("audit_messages", "message_id", m));
        }
        let cols: Vec<String> = RECORD_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect();
        let mut q = AuditQuery {
            sql: format!("SELECT {} FROM ", cols.join(", ")),
            conds: Vec::new(),
            binds: Vec::new(),
            seq_col: "a.seq",
        };
        if indexed.is_empty() {
            q.sql.push_str("audit_log a");
            return q;
        }
        // The first index table drives the scan in seq order (its primary
        // key is (key, seq)); the others are joined on seq.
        q.seq_col = "d0.seq";
        for (i, (table, key, value)) in indexed.into_iter().enumerate() {
            let p = q.bind(Bind::Text(value.to_owned()));
            if i == 0 {
                // CROSS JOIN keeps SQLite from reordering: the index
                // table drives in seq order, so no sort is needed even
                // when another filter has an index of its own.
                q.sql
                    .push_str(&format!("{table} d0 CROSS JOIN audit_log a"));
                q.conds.push(format!("d0.{key} = {p}"));
                q.conds.push("a.seq = d0.seq".to_owned());
            } else {
                q.sql.push_str(&format!(
                    " JOIN {table} d{i} ON d{i}.seq = d0.seq AND d{i}.{key} = {p}"
                ));
            }
        }
        q
    }

    /// Binds a value and returns its placeholder.
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }

    /// `seq {op} bound`.
    fn seq_bound(&mut self, op: &str, bound: u64) -> Result<(), StoreError> {
        let p = self.bind(Bind::Int(super::convert::to_i64(bound)?));
        self.conds.push(format!("{} {op} {p}", self.seq_col));
        Ok(())
    }

    /// Equality filters on the record's own columns.
    fn column_filters(&mut self, filter: &AuditFilter) {
        for (field, value) in [
            (Field::ActorOfficer, &filter.officer),
            (Field::Action, &filter.action),
            (Field::Outcome, &filter.outcome),
            (Field::Code, &filter.code),
        ] {
            if let Some(v) = value {
                let p = self.bind(Bind::Text(v.clone()));
                self.conds.push(format!("a.{} = {p}", field.def().column));
            }
        }
    }

    /// The SQL with its conditions, order and limit, and its parameters.
    fn finish(mut self, filter: &AuditFilter) -> (String, Vec<Bind>) {
        if !self.conds.is_empty() {
            self.sql.push_str(" WHERE ");
            self.sql.push_str(&self.conds.join(" AND "));
        }
        let limit = self.bind(Bind::Int(i64::from(filter.limit.max(1))));
        let order = if filter.descending { "DESC" } else { "ASC" };
        self.sql
            .push_str(&format!(" ORDER BY {} {order} LIMIT {limit}", self.seq_col));
        (self.sql, self.binds)
    }
}

/// A bound parameter of a dynamically built query (values are always
/// bound, never spliced into the SQL text).
enum Bind {
    Text(String),
    Int(i64),
}
