//! Audit records in the database: appending to the chain, reading back.

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::convert::to_i64;
use super::error::StoreError;
use super::merkle_rows::Tree;
use super::write_conn::{Arg, WriteConn};
use crate::audit::record::{
    Action, Actor, AuditRecord, GENESIS_HASH, Outcome, RecordDraft, format_at,
};

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
    counterparts: String,
    details: Option<String>,
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
    let counterparts =
        serde_json::to_string(&d.counterparts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let details = d
        .details
        .as_ref()
        .map(|m| crate::audit::jcs::canonicalize(&Value::Object(m.clone())));
    tree.push(&rec.hash)?;
    head.seq = seq;
    head.hash.clone_from(&rec.hash);
    head.at.clone_from(&rec.draft.at);
    head.pending.push(PendingRecord {
        seq: seq_i,
        parties: parties(d),
        messages: messages(d),
        counterparts,
        details,
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
    let records: Vec<[Arg<'_>; 18]> = pending
        .iter()
        .map(|p| {
            let d = &p.rec.draft;
            [
                p.seq.into(),
                d.at.as_str().into(),
                d.actor.role.as_str().into(),
                d.actor.id.as_deref().into(),
                d.actor.officer.as_deref().into(),
                d.actor.cert_serial.as_deref().into(),
                d.action.as_str().into(),
                d.message_id.as_deref().into(),
                p.counterparts.as_str().into(),
                d.outcome.as_str().into(),
                d.code.as_deref().into(),
                d.justification.as_deref().into(),
                d.request_id.as_deref().into(),
                d.node.as_deref().into(),
                p.details.as_deref().into(),
                0i64.into(),
                p.rec.prev_hash.as_str().into(),
                p.rec.hash.as_str().into(),
            ]
        })
        .collect();
    conn.insert_rows(
        "audit_log (seq, at, actor_role, actor_id, actor_officer, actor_cert_serial, action, message_id, \
         counterparts, outcome, code, justification, request_id, node, details, reduced, prev_hash, hash)",
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
    if matches!(d.actor.role.as_str(), "partner" | "dpo")
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
pub(super) const RECORD_COLUMNS: &str = "seq, at, actor_role, actor_id, actor_officer, actor_cert_serial, action, \
     message_id, counterparts, outcome, code, justification, request_id, node, details, reduced, prev_hash, hash";

/// Rebuilds a record from its row. A reduced record comes back with empty
/// fields and `true`; its hash is then only checked for linkage.
pub(super) fn record_from_row(row: &AnyRow) -> Result<(AuditRecord, bool), StoreError> {
    let seq: i64 = row.try_get(0)?;
    let reduced: i64 = row.try_get(15)?;
    let mut texts: Vec<Option<String>> = Vec::with_capacity(18);
    texts.push(Some(seq.to_string()));
    for i in 1..15 {
        texts.push(row.try_get::<Option<String>, _>(i)?);
    }
    texts.push(Some(reduced.to_string()));
    texts.push(Some(row.try_get::<String, _>(16)?));
    texts.push(Some(row.try_get::<String, _>(17)?));
    let borrowed: Vec<Option<&str>> = texts.iter().map(Option::as_deref).collect();
    record_from_parts(&borrowed)
}

/// Rebuilds a record from its 18 columns as text (in [`RECORD_COLUMNS`]
/// order), however they were read.
pub(super) fn record_from_parts(f: &[Option<&str>]) -> Result<(AuditRecord, bool), StoreError> {
    let seq: u64 = f
        .first()
        .copied()
        .flatten()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Corrupt("audit record without a seq".into()))?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("audit record {seq}: {what}"));
    if f.len() != 18 {
        return Err(corrupt("wrong number of columns"));
    }
    let reduced = f[15] != Some("0");
    let prev_hash = f[16].ok_or_else(|| corrupt("no prev_hash"))?.to_owned();
    let hash = f[17].ok_or_else(|| corrupt("no hash"))?.to_owned();
    let owned = |i: usize| f[i].map(str::to_owned);
    let draft = if reduced {
        RecordDraft {
            at: String::new(),
            actor: Actor {
                role: String::new(),
                id: None,
                officer: None,
                cert_serial: None,
            },
            action: Action::Request,
            message_id: None,
            counterparts: Vec::new(),
            outcome: Outcome::Allowed,
            code: None,
            justification: None,
            request_id: None,
            node: None,
            details: None,
        }
    } else {
        let details = match f[14] {
            None => None,
            Some(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Some(m),
                _ => return Err(corrupt("details is not a JSON object")),
            },
        };
        RecordDraft {
            at: owned(1).ok_or_else(|| corrupt("no time"))?,
            actor: Actor {
                role: owned(2).ok_or_else(|| corrupt("no actor role"))?,
                id: owned(3),
                officer: owned(4),
                cert_serial: owned(5),
            },
            action: f[6]
                .and_then(Action::parse)
                .ok_or_else(|| corrupt("unknown action"))?,
            message_id: owned(7),
            counterparts: serde_json::from_str(f[8].ok_or_else(|| corrupt("no counterparts"))?)
                .map_err(|_| corrupt("counterparts is not a list"))?,
            outcome: f[9]
                .and_then(Outcome::parse)
                .ok_or_else(|| corrupt("unknown outcome"))?,
            code: owned(10),
            justification: owned(11),
            request_id: owned(12),
            node: owned(13),
            details: details.map(|m: Map<String, Value>| m),
        }
    };
    Ok((
        AuditRecord {
            seq,
            draft,
            prev_hash,
            hash,
        },
        reduced,
    ))
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
        let mut binds: Vec<Bind> = Vec::new();
        let mut bind = |b: Bind| {
            binds.push(b);
            format!("${}", binds.len())
        };
        // Index tables that narrow the log: (table, key column, value).
        let mut indexed: Vec<(&str, &str, String)> = Vec::new();
        if let Some(p) = scope {
            indexed.push(("audit_parties", "partner", p.to_owned()));
        }
        if let Some(p) = &filter.partner {
            indexed.push(("audit_parties", "partner", p.clone()));
        }
        if let Some(m) = &filter.message {
            indexed.push(("audit_messages", "message_id", m.clone()));
        }
        let cols: Vec<String> = RECORD_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect();
        let mut sql = format!("SELECT {} FROM ", cols.join(", "));
        let mut conds: Vec<String> = Vec::new();
        // The first index table drives the scan in seq order (its primary
        // key is (key, seq)); the others are joined on seq.
        let seq_col = if indexed.is_empty() {
            sql.push_str("audit_log a");
            "a.seq".to_owned()
        } else {
            for (i, (table, key, value)) in indexed.iter().enumerate() {
                let p = bind(Bind::Text(value.clone()));
                if i == 0 {
                    // CROSS JOIN keeps SQLite from reordering: the index
                    // table drives in seq order, so no sort is needed even
                    // when another filter has an index of its own.
                    sql.push_str(&format!("{table} d0 CROSS JOIN audit_log a"));
                    conds.push(format!("d0.{key} = {p}"));
                    conds.push("a.seq = d0.seq".to_owned());
                } else {
                    sql.push_str(&format!(
                        " JOIN {table} d{i} ON d{i}.seq = d0.seq AND d{i}.{key} = {p}"
                    ));
                }
            }
            "d0.seq".to_owned()
        };
        // Records are stamped in chain order, so a time window is a seq
        // range: two index lookups turn it into bounds every index can use.
        if let Some(from) = &filter.from {
            match self.first_seq_at_or_after(from).await? {
                Some(lower) => {
                    let p = bind(Bind::Int(super::convert::to_i64(lower)?));
                    conds.push(format!("{seq_col} >= {p}"));
                }
                None => return Ok(Vec::new()),
            }
        }
        if let Some(to) = &filter.to
            && let Some(upper) = self.first_seq_at_or_after(to).await?
        {
            let p = bind(Bind::Int(super::convert::to_i64(upper)?));
            conds.push(format!("{seq_col} < {p}"));
        }
        for (column, value) in [
            ("a.actor_officer =", &filter.officer),
            ("a.action =", &filter.action),
            ("a.outcome =", &filter.outcome),
            ("a.code =", &filter.code),
        ] {
            if let Some(v) = value {
                let p = bind(Bind::Text(v.clone()));
                conds.push(format!("{column} {p}"));
            }
        }
        if let Some(after) = filter.after {
            let p = bind(Bind::Int(super::convert::to_i64(after)?));
            conds.push(format!(
                "{seq_col} {} {p}",
                if filter.descending { "<" } else { ">" }
            ));
        }
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        let limit = bind(Bind::Int(i64::from(filter.limit.max(1))));
        let order = if filter.descending { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY {seq_col} {order} LIMIT {limit}"));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
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
    pub async fn audit_involves(&self, seq: u64, partner: &str) -> Result<bool, StoreError> {
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

/// A bound parameter of a dynamically built query (values are always
/// bound, never spliced into the SQL text).
enum Bind {
    Text(String),
    Int(i64),
}
