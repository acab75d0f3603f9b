//! The relay task (SPEC §11): one loop per peer, so a peer that is down
//! delays only its own rows. Each loop drains its peer's due rows, then
//! sleeps until the next row is due or a new row is announced
//! (`AppState::wake_relay`). A suspended peer's rows wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::peer_client::{PeerClient, PeerError};
use super::send::{Attempt, PeerLink, attempt};
use crate::app::AppState;
use crate::crypto::jose::JwsKeys;
use crate::domain::PartnerId;
use crate::domain::time::to_ms;

/// Rows taken per round.
const BATCH: u32 = 32;
/// The longest sleep between rounds (a row that becomes due, a resume).
const MAX_SLEEP: Duration = Duration::from_millis(1000);
/// The shortest.
const MIN_SLEEP: Duration = Duration::from_millis(50);

/// Starts the relay, if this gateway has a federation id: a supervisor
/// that keeps one loop running per peer the policy lists (a reload may
/// add peers).
pub fn start(app: &Arc<AppState>) -> Option<JoinHandle<()>> {
    let own = app.config.federation.id.clone()?;
    let app = app.clone();
    Some(tokio::spawn(async move {
        let mut loops: HashMap<PartnerId, JoinHandle<()>> = HashMap::new();
        loop {
            for id in app.policy().peers.keys() {
                if loops.get(id).is_none_or(JoinHandle::is_finished) {
                    let task = tokio::spawn(peer_loop(app.clone(), own.clone(), id.clone()));
                    loops.insert(id.clone(), task);
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }))
}

/// The loop for one peer; ends when the policy no longer lists it.
async fn peer_loop(app: Arc<AppState>, own: PartnerId, peer: PartnerId) {
    let mut wake = app.relay_wake.subscribe();
    let mut link: Option<PeerLink> = None;
    loop {
        let Some(conf) = app.policy().peer(&peer).cloned() else {
            return;
        };
        let suspended = app
            .store
            .peer_suspended(peer.as_str())
            .await
            .unwrap_or(true);
        if !suspended {
            if link.is_none() {
                match connect(&app, &own, &conf).await {
                    Ok(l) => link = Some(l),
                    Err(e) => note(&app, &peer, Some(&e)).await,
                }
            }
            if let Some(l) = &link
                && !round(&app, l).await
            {
                // Build the client afresh next time (files, addresses).
                link = None;
            }
        }
        // A suspended peer's rows stay due: its loop waits for a resume
        // (which wakes it) instead of polling them.
        let sleep = if suspended {
            MAX_SLEEP
        } else {
            next_sleep(&app, &peer).await
        };
        tokio::select! {
            _ = wake.changed() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// The client and keys for a peer.
async fn connect(
    app: &AppState,
    own: &PartnerId,
    conf: &crate::policy::file::Peer,
) -> Result<PeerLink, PeerError> {
    let keys = JwsKeys::from_public_pem_file(&conf.envelope_key)
        .map_err(|e| PeerError::Config(format!("envelope key: {e}")))?;
    Ok(PeerLink {
        peer: conf.id.clone(),
        own: own.clone(),
        client: PeerClient::new(&app.config, conf).await?,
        keys,
    })
}

/// One round of due rows; false when an attempt failed (the rest wait).
async fn round(app: &AppState, link: &PeerLink) -> bool {
    let now = to_ms(OffsetDateTime::now_utc());
    let due = match app.store.outbox_due(link.peer.as_str(), now, BATCH).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the relay outbox");
            return true;
        }
    };
    for row in &due {
        match attempt(app, link, row).await {
            Attempt::Done(outcome) => {
                app.metrics.relay_sent(link.peer.as_str(), outcome);
                note(app, &link.peer, None).await;
            }
            Attempt::Busy => {}
            Attempt::Failed(e) => {
                app.metrics.relay_sent(link.peer.as_str(), "failed");
                tracing::warn!(peer = %link.peer, error = %e, "relay attempt failed; the row waits");
                note(app, &link.peer, Some(&e)).await;
                return false;
            }
        }
    }
    true
}

/// Records a peer's last success or error.
async fn note(app: &AppState, peer: &PartnerId, error: Option<&PeerError>) {
    let text = error.map(ToString::to_string);
    let now = to_ms(OffsetDateTime::now_utc());
    if let Err(e) = app
        .store
        .peer_contact(peer.as_str(), text.as_deref(), now)
        .await
    {
        tracing::warn!(error = %e, "cannot record a peer's state");
    }
}

/// How long to sleep: until this peer's next row is due, within bounds.
async fn next_sleep(app: &AppState, peer: &PartnerId) -> Duration {
    let now = to_ms(OffsetDateTime::now_utc());
    match app.store.outbox_next_due(peer.as_str(), now).await {
        Ok(Some(due)) => {
            let ms = u64::try_from(due.saturating_sub(now)).unwrap_or(0);
            Duration::from_millis(ms).clamp(MIN_SLEEP, MAX_SLEEP)
        }
        _ => MAX_SLEEP,
    }
}
