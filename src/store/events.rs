//! Telling the other nodes what a write changed (PostgreSQL LISTEN/NOTIFY).
//!
//! Several gateway nodes share one PostgreSQL database. What one node
//! commits, the others must act on at once: a partner long-polling its
//! inbox on node B must wake when node A accepts a message for it, and a
//! partner suspended through node A must be cut off on node B too. The
//! writer sends the batch's events with `pg_notify` inside the batch's
//! transaction, so PostgreSQL delivers them exactly when (and only if) the
//! batch commits; every node listens on one channel.
//!
//! Notifications are not stored: a node whose listening connection drops
//! misses what was sent meanwhile. The listener reports that as
//! [`ClusterEvent::Missed`], and the gateway then wakes every waiter and
//! re-reads the partner states, which is always safe.

use std::time::Duration;

use sqlx::postgres::PgListener;

/// The channel every node listens on.
pub(crate) const CHANNEL: &str = "brdo_events";
/// PostgreSQL refuses payloads of 8000 bytes or more; batches are split
/// well below that.
const MAX_PAYLOAD: usize = 7000;

/// Something another node committed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A message was delivered to this partner's inbox.
    Inbox(String),
    /// This partner was suspended or resumed.
    PartnerState(String),
    /// Events may have been lost (the listening connection was re-made).
    Missed,
}

impl ClusterEvent {
    /// The payload line of an event (`Missed` is never sent).
    pub fn line(&self) -> Option<String> {
        match self {
            Self::Inbox(p) => Some(format!("inbox {p}")),
            Self::PartnerState(p) => Some(format!("partner {p}")),
            Self::Missed => None,
        }
    }

    /// Parses the lines of one payload; unknown lines are skipped (a newer
    /// node may send more kinds).
    pub fn parse(payload: &str) -> Vec<ClusterEvent> {
        payload
            .lines()
            .filter_map(|l| match l.split_once(' ') {
                Some(("inbox", p)) if !p.is_empty() => Some(Self::Inbox(p.to_owned())),
                Some(("partner", p)) if !p.is_empty() => Some(Self::PartnerState(p.to_owned())),
                _ => None,
            })
            .collect()
    }
}

/// Joins event lines into payloads below PostgreSQL's size limit,
/// dropping repeats. Each payload starts with `from ORIGIN`, the sending
/// store's token, so a node skips what it sent itself: it has acted on it
/// already, and acting twice would race its own request handlers.
pub(crate) fn payloads(origin: &str, events: &[ClusterEvent]) -> Vec<String> {
    let header = format!("from {origin}");
    let mut seen = std::collections::BTreeSet::new();
    let mut out: Vec<String> = Vec::new();
    let mut cur = header.clone();
    for line in events.iter().filter_map(ClusterEvent::line) {
        if !seen.insert(line.clone()) {
            continue;
        }
        if cur.len() > header.len() && cur.len() + 1 + line.len() > MAX_PAYLOAD {
            out.push(std::mem::replace(&mut cur, header.clone()));
        }
        cur.push('\n');
        cur.push_str(&line);
    }
    if cur.len() > header.len() {
        out.push(cur);
    }
    out
}

/// The sending store's token of a payload (its `from` line).
pub(crate) fn origin_of(payload: &str) -> Option<&str> {
    payload.lines().next()?.strip_prefix("from ")
}

/// Listens on [`CHANNEL`] until the task is dropped, handing every event
/// another store (not `origin`) sent to `handle`. Connection losses are reported as [`ClusterEvent::Missed`]
/// and retried every second; nothing here ends the task.
pub async fn listen(
    url: String,
    origin: String,
    handle: impl Fn(ClusterEvent) + Send + Sync + 'static,
) {
    let mut first = true;
    loop {
        let mut listener = match connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other nodes' events; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if !first {
            handle(ClusterEvent::Missed);
        }
        first = false;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) if origin_of(n.payload()) == Some(origin.as_str()) => {}
                Ok(Some(n)) => ClusterEvent::parse(n.payload())
                    .into_iter()
                    .for_each(&handle),
                // Reconnected (eagerly) after a loss: whatever came
                // meanwhile is gone.
                Ok(None) => handle(ClusterEvent::Missed),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the connection for other nodes' events; reconnecting");
                    handle(ClusterEvent::Missed);
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_unknown_lines_are_skipped() {
        let events = vec![
            ClusterEvent::Inbox("RS-MOI".into()),
            ClusterEvent::PartnerState("AL-CTD".into()),
        ];
        let p = payloads("node-1", &events);
        assert_eq!(
            p,
            vec!["from node-1\ninbox RS-MOI\npartner AL-CTD".to_owned()]
        );
        assert_eq!(origin_of(&p[0]), Some("node-1"));
        let mut parsed = ClusterEvent::parse(&p[0]);
        assert_eq!(parsed, events);
        parsed = ClusterEvent::parse("inbox \nrestart everything\n\ninbox EU-ECTC");
        assert_eq!(parsed, vec![ClusterEvent::Inbox("EU-ECTC".into())]);
    }

    #[test]
    fn payloads_drop_repeats_and_stay_below_the_limit() {
        let events: Vec<ClusterEvent> = (0..3000)
            .map(|i| ClusterEvent::Inbox(format!("P-{}", i % 1500)))
            .collect();
        let p = payloads("node-1", &events);
        assert!(p.len() > 1);
        assert!(p.iter().all(|x| origin_of(x) == Some("node-1")));
        assert!(p.iter().all(|x| x.len() <= MAX_PAYLOAD));
        let all: Vec<ClusterEvent> = p.iter().flat_map(|x| ClusterEvent::parse(x)).collect();
        assert_eq!(all.len(), 1500);
        assert!(payloads("node-1", &[ClusterEvent::Missed]).is_empty());
    }
}
