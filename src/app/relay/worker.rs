//! The relay task (SPEC §11): loops per peer ([`LOOPS`]), so a peer that
//! is down delays only its own rows. Each loop drains its peer's due rows, several
//! at a time on as many connections ([`LANES`]), goes straight on while
//! full batches keep coming, then sleeps until the next row is due or a new
//! row is announced (`AppState::wake_relay`). A suspended peer's rows wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::batch;
use super::peer_client::{PeerClient, PeerError};
use super::send::{Attempt, PeerLink, attempt};
use crate::app::AppState;
use crate::crypto::jose::JwsKeys;
use crate::domain::PartnerId;
use crate::domain::time::to_ms;
use crate::federation::MAX_BATCH;
use crate::store::{OutboxKind, OutboxRow};

/// Rows taken per round: a full batch (`batch`) for every lane.
const BATCH: u32 = (MAX_BATCH * LANES) as u32;
/// The longest sleep between rounds (a row that becomes due, a resume).
const MAX_SLEEP: Duration = Duration::from_millis(1000);
/// The shortest.
const MIN_SLEEP: Duration = Duration::from_millis(50);
/// Lanes per loop, each on its own connection: one row at a time left the
/// peer's and this gateway's store idle between a row's steps (`brdo bench
/// --scenario relay`, BENCHMARKS.md).
const LANES: usize = 8;
/// Loops per peer. Each takes and claims its own rounds, so one loop's
/// claim (on SQLite a write that waits for the writer's lock) and its
/// slowest lane overlap the other's sending instead of stalling the peer's
/// whole queue; a round never takes rows another holds.
const LOOPS: usize = 2;
/// How often a peer that keeps answering has its success noted.
const NOTE_EVERY: Duration = Duration::from_secs(1);

/// Starts the relay, if this gateway has a federation id: a supervisor
/// that keeps one loop running per peer the policy lists (a reload may
/// add peers).
pub fn start(app: &Arc<AppState>) -> Option<JoinHandle<()>> {
    let own = app.config.federation.id.clone()?;
    let app = app.clone();
    Some(tokio::spawn(async move {
        let mut loops: HashMap<(PartnerId, usize), JoinHandle<()>> = HashMap::new();
        loop {
            for id in app.policy().peers.keys() {
                for k in 0..LOOPS {
                    let key = (id.clone(), k);
                    if loops.get(&key).is_none_or(JoinHandle::is_finished) {
                        let task = tokio::spawn(peer_loop(app.clone(), own.clone(), id.clone()));
                        loops.insert(key, task);
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }))
}

/// The loop for one peer; ends when the policy no longer lists it.
async fn peer_loop(app: Arc<AppState>, own: PartnerId, peer: PartnerId) {
    let mut wake = app.relay_wake.subscribe();
    let mut links: Vec<PeerLink> = Vec::new();
    let mut noted_ok: Option<std::time::Instant> = None;
    loop {
        let Some(conf) = app.policy().peer(&peer).cloned() else {
            return;
        };
        let suspended = app
            .store
            .peer_suspended(peer.as_str())
            .await
            .unwrap_or(true);
        let mut more = false;
        if !suspended {
            while links.len() < LANES {
                match connect(&app, &own, &conf).await {
                    Ok(l) => links.push(l),
                    Err(e) => {
                        note(&app, &peer, Some(&e)).await;
                        noted_ok = None;
                        break;
                    }
                }
            }
            if !links.is_empty() {
                match round(&app, &links, &mut noted_ok).await {
                    // Build the clients afresh next time (files, addresses).
                    Round::Failed => links.clear(),
                    Round::Full => more = true,
                    Round::Drained => {}
                }
            }
        }
        if more {
            // A full batch: more rows are probably due; yield, then go on.
            tokio::task::yield_now().await;
            continue;
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

/// How a round ended.
enum Round {
    /// An attempt failed: the rest of its lane waits.
    Failed,
    /// A whole batch was taken: more may be due.
    Full,
    /// Fewer rows than a batch were due.
    Drained,
}

/// One round of due rows, dealt to the lanes in turn (a lane takes its
/// rows in order; the oldest rows start first).
async fn round(
    app: &AppState,
    links: &[PeerLink],
    noted_ok: &mut Option<std::time::Instant>,
) -> Round {
    let Some(first) = links.first() else {
        return Round::Drained;
    };
    let now = to_ms(OffsetDateTime::now_utc());
    let due = match app.store.outbox_due(first.peer.as_str(), now, BATCH).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the relay outbox");
            return Round::Drained;
        }
    };
    let full = due.len() >= BATCH as usize;
    // One claim for the round's rows (a lane sends its share one after
    // another, so the claim lasts for that many attempts).
    let ids: Vec<String> = due.iter().map(|r| r.entry.id.clone()).collect();
    let share = lane_share(ids.len(), links.len());
    let until = now.saturating_add(super::send::lease_ms(app, attempts(&due, share)));
    let claimed = match app.store.claim_outbox(&ids, now, until).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim relay rows");
            return Round::Drained;
        }
    };
    let due: Vec<OutboxRow> = due
        .into_iter()
        .filter(|r| claimed.contains(&r.entry.id))
        .map(|mut r| {
            r.claim = Some(until);
            r
        })
        .collect();
    let lanes = links
        .iter()
        .zip(due.chunks(share.max(1)))
        .map(|(link, rows)| lane(app, link, rows.iter().collect()));
    let results = futures_util::future::join_all(lanes).await;
    let sent = results.iter().map(|(n, _)| n).sum::<usize>();
    if let Some(e) = results.into_iter().find_map(|(_, e)| e) {
        note(app, &first.peer, Some(&e)).await;
        *noted_ok = None;
        return Round::Failed;
    }
    // A success is noted at once after an error, then at most once a
    // second: each note is a write of its own, outside the writer.
    if sent > 0 && noted_ok.is_none_or(|at| at.elapsed() >= NOTE_EVERY) {
        note(app, &first.peer, None).await;
        *noted_ok = Some(std::time::Instant::now());
    }
    if full { Round::Full } else { Round::Drained }
}

/// How many of a round's `due` rows each lane takes, in order: as many as
/// a batch holds before a second lane is used, so a round of 40 rows goes
/// as one request of 40 documents rather than eight of five (each request
/// costs both gateways a signature, a check and a commit of its own:
/// `brdo bench --scenario relay`, BENCHMARKS.md); a long queue is spread
/// over every lane.
fn lane_share(due: usize, lanes: usize) -> usize {
    due.div_ceil(lanes.max(1)).max(MAX_BATCH)
}

/// The most requests one lane makes for its share of `due`: its message
/// rows go in batches, the others one at a time. The claim lasts that
/// many attempts (a row whose request would outlast it is renewed first),
/// so the rows of a node that stopped wait no longer than that.
fn attempts(due: &[OutboxRow], share: usize) -> usize {
    due.chunks(share.max(1))
        .map(|lane| {
            let messages = lane
                .iter()
                .filter(|r| r.entry.kind == OutboxKind::Message)
                .count();
            messages.div_ceil(MAX_BATCH) + (lane.len() - messages)
        })
        .max()
        .unwrap_or(1)
}

/// One lane's rows: its message rows first, in batches ([`batch`]), then
/// the others (notices, receipts) one at a time in order, so a notice
/// finds its copy's message sent before it; stops at the first failure.
/// Returns the rows done and the failure, if any.
async fn lane(
    app: &AppState,
    link: &PeerLink,
    rows: Vec<&OutboxRow>,
) -> (usize, Option<PeerError>) {
    let (messages, others): (Vec<&OutboxRow>, Vec<&OutboxRow>) = rows
        .into_iter()
        .partition(|r| r.entry.kind == OutboxKind::Message);
    let mut done = 0;
    let mut failure = None;
    if !messages.is_empty() {
        for a in batch::attempt(app, link, &messages).await {
            if let Some(e) = tally(app, link, a, &mut done) {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        tracing::warn!(peer = %link.peer, error = %e, "relay attempt failed; the rows wait");
        release(app, &others).await;
        return (done, Some(e));
    }
    for (i, row) in others.iter().enumerate() {
        if let Some(e) = tally(app, link, attempt(app, link, row).await, &mut done) {
            tracing::warn!(peer = %link.peer, error = %e, "relay attempt failed; the row waits");
            release(app, &others[i + 1..]).await;
            return (done, Some(e));
        }
    }
    (done, None)
}

/// Counts one attempt's outcome (in the metrics, and in `done` when the
/// row is finished); its failure, if it failed.
fn tally(app: &AppState, link: &PeerLink, a: Attempt, done: &mut usize) -> Option<PeerError> {
    match a {
        Attempt::Done(outcome) => {
            app.metrics.relay_sent(link.peer.as_str(), outcome);
            *done += 1;
            None
        }
        Attempt::Busy => None,
        Attempt::Failed(e) => {
            app.metrics.relay_sent(link.peer.as_str(), "failed");
            Some(e)
        }
    }
}

/// Releases the claims on rows a failure left unsent: due again at once.
async fn release(app: &AppState, rows: &[&OutboxRow]) {
    if rows.is_empty() {
        return;
    }
    let ids: Vec<String> = rows.iter().map(|r| r.entry.id.clone()).collect();
    if let Err(se) = app.store.release_outbox(&ids).await {
        tracing::warn!(error = %se, "cannot release relay claims; they lapse");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_fill_a_batch_before_the_next_is_used() {
        assert_eq!(lane_share(0, LANES), MAX_BATCH);
        assert_eq!(lane_share(40, LANES), MAX_BATCH);
        assert_eq!(lane_share(MAX_BATCH * LANES, LANES), MAX_BATCH);
        assert_eq!(lane_share(MAX_BATCH * LANES + 1, LANES), MAX_BATCH + 1);
        assert_eq!(lane_share(5, 0), MAX_BATCH);
        // Every row of a round has a lane.
        for due in 0..=(BATCH as usize) {
            assert!(due.div_ceil(lane_share(due, LANES)) <= LANES, "{due}");
        }
    }

    /// A claim lasts for the requests a lane makes, not for its rows: 40
    /// message rows are one batch, so a node that stops mid-round leaves
    /// them claimed for one attempt, not forty.
    #[test]
    fn a_claim_lasts_for_the_lanes_requests() {
        let row = |i: usize, kind: OutboxKind| OutboxRow {
            entry: crate::store::OutboxEntry {
                id: format!("row-{i}"),
                peer: "RS-NCB".into(),
                kind,
                message_id: format!("m-{i}"),
                body: None,
                created_ms: 0,
            },
            attempts: 0,
            claim: None,
        };
        let messages: Vec<OutboxRow> = (0..40).map(|i| row(i, OutboxKind::Message)).collect();
        assert_eq!(attempts(&messages, lane_share(40, LANES)), 1);
        let mut mixed = messages;
        mixed.extend((40..43).map(|i| row(i, OutboxKind::Notice)));
        assert_eq!(attempts(&mixed, lane_share(43, LANES)), 4);
        let many: Vec<OutboxRow> = (0..BATCH as usize)
            .map(|i| row(i, OutboxKind::Message))
            .collect();
        assert_eq!(attempts(&many, lane_share(many.len(), LANES)), 1);
        assert_eq!(attempts(&[], MAX_BATCH), 1);
    }
}
