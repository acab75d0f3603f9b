//! Acting on what other gateway nodes commit.
//!
//! On PostgreSQL several nodes serve the same partners. This node keeps
//! two things in memory that another node's write can change: long-poll
//! waiters (woken when a message reaches their inbox) and the set of
//! suspended partners (checked on every request). The store's listener
//! (`store::events`) reports each change; this module applies it.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::domain::PartnerId;
use crate::store::events::ClusterEvent;

/// Starts following other nodes' writes; `None` on SQLite (one node).
/// Both returned tasks run until aborted.
pub fn follow(app: &Arc<AppState>) -> Option<[JoinHandle<()>; 2]> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let waker = app.clone();
    let listener = app.store.listen_cluster(move |event| match event {
        // Cheap and synchronous: wake the partner's waiters now.
        ClusterEvent::Inbox(p) => waker.inbox.notify_id(&p),
        ClusterEvent::PartnerState(_) => {
            let _ = tx.send(());
        }
        ClusterEvent::Missed => {
            waker.inbox.notify_all();
            let _ = tx.send(());
        }
    })?;
    let app = app.clone();
    let refresher = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Coalesce a burst of changes into one read; a failed read is
            // retried every second rather than leaving a suspension unseen.
            while rx.try_recv().is_ok() {}
            while !refresh_suspended(&app).await {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    });
    Some([listener, refresher])
}

/// Re-reads which partners are suspended and cuts off the newly suspended
/// ones' open connections, as the node that suspended them did. Returns
/// false when the store could not be read (nothing changed).
pub(crate) async fn refresh_suspended(app: &AppState) -> bool {
    // The set is loaded before the read: if this node changes it while the
    // read runs, the read may be stale, the swap fails and it reads again.
    let newly: Vec<PartnerId> = loop {
        let before = app.suspended();
        let now = match app.store.suspended_partners().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot re-read partner states after another node changed them; retrying");
                return false;
            }
        };
        let newly = now.difference(&before).cloned().collect();
        if app.replace_suspended_if(&before, now) {
            break newly;
        }
    };
    for p in newly {
        let n = app
            .connections
            .close_where(|_, owner| owner == Some(p.as_str()));
        app.metrics.connections_closed(n);
        tracing::info!(partner = %p, connections_closed = n, "partner suspended on another node");
    }
    true
}
