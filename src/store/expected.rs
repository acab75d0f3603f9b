//! What a lifecycle write was decided on, checked again inside the writer's
//! transaction.
//!
//! Handlers decide a forward, a label raise, a hold or a read on rows they
//! read from the pool, before the writer runs their op. Between that read
//! and the commit another request may erase the family, raise its label,
//! hold it or change its holders; a write that went ahead regardless would
//! leave a copy readable after an erasure answered, or a copy under a
//! lower label than the one in force. So each such write carries what its
//! decision rested on, and the writer re-reads exactly that under the
//! batch's lock (SQLite `BEGIN IMMEDIATE`, the PostgreSQL advisory lock)
//! and refuses the op when it no longer holds: erased → `AlreadyErased`,
//! anything else different → `FamilyChanged` (the caller may decide again).

use super::convert::int_to_flag;
use super::error::StoreError;
use super::family::IN_FAMILY;
use super::rows::Permission;
use super::write_conn::WriteConn;

/// The state of a message and its family a decision rested on. `None`
/// fields were not part of the decision and are not compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expected {
    /// The message the request named; it must still hold content.
    pub message_id: String,
    /// Its family's root.
    pub root_id: String,
    /// The stored label JSON the decision used.
    pub label: Option<String>,
    /// The hold flag the decision used (a copy inherits it).
    pub held: Option<bool>,
    /// Every message of the family, sorted (its holders follow from them).
    pub family: Option<Vec<String>>,
    /// Permissions on the family the decision relied on; each must still
    /// be granted.
    pub permissions: Vec<Permission>,
}

impl Expected {
    /// Nothing but "the message still holds content".
    pub fn live(message_id: &str, root_id: &str) -> Self {
        Self {
            message_id: message_id.to_owned(),
            root_id: root_id.to_owned(),
            ..Self::default()
        }
    }

    /// Also compares the label.
    #[must_use]
    pub(crate) fn with_label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }

    /// Also compares the hold flag.
    #[must_use]
    pub(crate) fn with_held(mut self, held: bool) -> Self {
        self.held = Some(held);
        self
    }

    /// Also compares the family's members.
    #[must_use]
    pub(crate) fn with_family(mut self, mut ids: Vec<String>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        self.family = Some(ids);
        self
    }

    /// Also requires these permissions to be granted still.
    #[must_use]
    pub(crate) fn with_permissions(mut self, permissions: Vec<Permission>) -> Self {
        self.permissions = permissions;
        self
    }

    /// Re-reads the state inside the writer's transaction. Reads only, so
    /// a refusal leaves nothing in the batch.
    pub(super) async fn check(&self, conn: &mut WriteConn) -> Result<(), StoreError> {
        let row = conn
            .fetch_optional(
                "SELECT label, held, erased_at_ms FROM messages WHERE id = $1",
                &[self.message_id.as_str().into()],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        if row.opt_int(2)?.is_some() {
            return Err(StoreError::AlreadyErased);
        }
        if let Some(label) = &self.label
            && row.text(0)? != *label
        {
            return Err(StoreError::FamilyChanged);
        }
        if let Some(held) = self.held
            && int_to_flag(row.int(1)?) != held
        {
            return Err(StoreError::FamilyChanged);
        }
        if let Some(family) = &self.family {
            let mut now: Vec<String> = conn
                .fetch_all(
                    &format!("SELECT id FROM messages WHERE {IN_FAMILY}"),
                    &[self.root_id.as_str().into()],
                )
                .await?
                .iter()
                .map(|r| r.text(0))
                .collect::<Result<_, _>>()?;
            now.sort_unstable();
            if now != *family {
                return Err(StoreError::FamilyChanged);
            }
        }
        for p in &self.permissions {
            let granted = conn
                .fetch_optional(
                    "SELECT 1 FROM permissions WHERE root_id = $1 AND partner = $2 AND scope = $3",
                    &[
                        self.root_id.as_str().into(),
                        p.partner.as_str().into(),
                        p.scope.as_str().into(),
                    ],
                )
                .await?;
            if granted.is_none() {
                return Err(StoreError::FamilyChanged);
            }
        }
        Ok(())
    }
}
