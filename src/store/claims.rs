//! The relay's claims on outbox rows, made inside the writer's
//! transaction (`writer::Request::Claim`, SPEC §11): on a pooled
//! connection a claim waited for the writer's lock between its group
//! commits; here it rides in the next one.

use super::error::StoreError;
use super::write_conn::{Arg, WriteConn};

/// Claims the rows of `ids` that are unclaimed or whose claim ran out by
/// `now_ms`, until `until_ms`, inside the writer's transaction; the ids
/// claimed.
pub(super) async fn claim_in(
    conn: &mut WriteConn,
    ids: &[String],
    now_ms: i64,
    until_ms: i64,
) -> Result<Vec<String>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "UPDATE relay_outbox SET claimed_until_ms = $2 WHERE id IN ({}) \
         AND (claimed_until_ms IS NULL OR claimed_until_ms < $1) RETURNING id",
        list.join(", ")
    );
    let mut args: Vec<Arg<'_>> = vec![now_ms.into(), until_ms.into()];
    args.extend(ids.iter().map(|id| Arg::from(id.as_str())));
    let rows = conn.fetch_all(&sql, &args).await?;
    rows.iter().map(|r| r.text(0)).collect()
}
