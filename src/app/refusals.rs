//! Folding a flood of identical refusals into few audit records.
//!
//! A cut-off caller (suspended partner, revoked or unusable certificate,
//! one over its rate) is refused before any handler work, but each refusal
//! used to append an audit record, so the caller could still keep the
//! single writer and the hash chain busy. Here the first refusal of a kind
//! (same caller, certificate serial, method, route, attempted action and
//! code) is recorded at once; identical ones within [`WINDOW`] are only
//! counted, and when the window closes the count becomes one more chained
//! `deny` record with `details.count`. `429 rate_limited` refusals fold per
//! caller whatever they asked for, and every other refusal has passed the
//! rate limit first, so a caller's refusals leave at most its rate plus two
//! records per second, whatever it sends; and every refused request is
//! still accounted for: the records of a kind plus their counts add up to
//! the requests refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::AppState;
use crate::audit::record::{RecordDraft, format_at};

/// How long identical refusals are folded into one count.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Above this many open windows new kinds are recorded one by one rather
/// than tracked, so the table stays bounded (the rate limit bounds how many
/// records that can still produce).
const MAX_OPEN: usize = 10_000;

/// What makes two refusals identical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefusalKey {
    /// The identity URI, or `serial:` and the serial for a certificate
    /// without a usable identity.
    pub caller: String,
    /// The certificate serial.
    pub serial: String,
    /// The action the caller attempted.
    pub attempted: &'static str,
    /// The request's method (`other` for one the gateway does not know)
    /// and route template, so refusals of different calls stay apart and
    /// the DPO sees which call was refused; `("*", "*")` for
    /// `rate_limited`, which folds per caller (see [`RefusalKey::new`]).
    pub request: (&'static str, &'static str),
    /// The refusal's problem code.
    pub code: &'static str,
}

impl RefusalKey {
    /// The key of a refusal. Rate-limit refusals are not told apart by
    /// call: they are what a flood produces, so they must fold per caller
    /// or a caller spreading its flood over routes and methods would buy
    /// a record per call shape.
    pub fn new(
        caller: String,
        serial: String,
        attempted: &'static str,
        request: (&'static str, &'static str),
        code: &'static str,
    ) -> Self {
        let rate_limited = code == "rate_limited";
        RefusalKey {
            caller,
            serial,
            attempted: if rate_limited { "*" } else { attempted },
            request: if rate_limited { ("*", "*") } else { request },
            code,
        }
    }
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    first_at: String,
    last_at: String,
    counted: u64,
    template: RecordDraft,
    /// A counted refusal named another officer than the first: the
    /// officer is not part of the key (a client chooses it freely), so
    /// the summary must not put the counts on the first one's name.
    officer_varies: bool,
    /// A counted refusal attempted another action than the first (only
    /// `rate_limited` folds across actions).
    attempted_varies: bool,
}

impl Window {
    /// The record standing for the refusals counted in this window.
    fn summary(self) -> Option<RecordDraft> {
        if self.counted == 0 {
            return None;
        }
        let mut d = self.template;
        d.at = format_at(time::OffsetDateTime::now_utc());
        d.request_id = None;
        let mut details = d.details.take().unwrap_or_default();
        if self.officer_varies {
            d.actor.officer = None;
            details.insert("officers".into(), Value::from("several"));
        }
        if self.attempted_varies {
            details.insert("attempted".into(), Value::from("*"));
        }
        details.insert("count".into(), Value::from(self.counted));
        details.insert("first_at".into(), Value::String(self.first_at));
        details.insert("last_at".into(), Value::String(self.last_at));
        d.details = Some(details);
        Some(d)
    }
}

/// Whether a refusal needs its own record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The first of its kind in a window: append its record now.
    Record,
    /// Counted in an open window; its record comes with the window's.
    Counted,
}

/// The open windows and the summaries not yet written.
#[derive(Debug, Default)]
pub struct RefusalLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    open: HashMap<RefusalKey, Window>,
    /// Summaries whose write failed, tried again on the next flush.
    pending: Vec<RecordDraft>,
}

impl RefusalLog {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Admits one refusal described by `draft` at `now`.
    pub(crate) fn admit(&self, key: RefusalKey, draft: &RecordDraft, now: Instant) -> Admission {
        self.with(|inner| {
            if let Some(w) = inner.open.get_mut(&key) {
                if now.saturating_duration_since(w.opened) < WINDOW {
                    w.counted += 1;
                    w.last_at.clone_from(&draft.at);
                    w.officer_varies |= draft.actor.officer != w.template.actor.officer;
                    w.attempted_varies |= attempted(draft) != attempted(&w.template);
                    return Admission::Counted;
                }
                if let Some(w) = inner.open.remove(&key)
                    && let Some(s) = w.summary()
                {
                    push_pending(&mut inner.pending, s);
                }
            }
            if inner.open.len() >= MAX_OPEN {
                close_expired(inner, now);
                if inner.open.len() >= MAX_OPEN {
                    return Admission::Record;
                }
            }
            inner.open.insert(
                key,
                Window {
                    opened: now,
                    first_at: draft.at.clone(),
                    last_at: draft.at.clone(),
                    counted: 0,
                    template: draft.clone(),
                    officer_varies: false,
                    attempted_varies: false,
                },
            );
            Admission::Record
        })
    }

    /// Closes the windows older than [`WINDOW`] at `now`; returns the
    /// records to write (earlier failed ones first).
    pub(crate) fn take_due(&self, now: Instant) -> Vec<RecordDraft> {
        self.with(|inner| {
            close_expired(inner, now);
            std::mem::take(&mut inner.pending)
        })
    }

    /// Closes every window (shutdown); returns the records to write.
    pub(crate) fn take_all(&self) -> Vec<RecordDraft> {
        self.with(|inner| {
            let open = std::mem::take(&mut inner.open);
            let mut out = std::mem::take(&mut inner.pending);
            out.extend(open.into_values().filter_map(Window::summary));
            out
        })
    }

    /// Puts back records whose write failed, for the next flush.
    pub(crate) fn requeue(&self, drafts: Vec<RecordDraft>) {
        self.with(|inner| {
            let later = std::mem::take(&mut inner.pending);
            for d in drafts.into_iter().chain(later) {
                push_pending(&mut inner.pending, d);
            }
        });
    }

    /// Summaries waiting to be written (for tests).
    #[cfg(test)]
    pub(crate) fn pending_len(&self) -> usize {
        self.with(|inner| inner.pending.len())
    }

    /// Open windows (for tests and metrics).
    #[cfg(test)]
    pub(crate) fn open_windows(&self) -> usize {
        self.with(|inner| inner.open.len())
    }
}

fn close_expired(inner: &mut Inner, now: Instant) {
    let expired: Vec<RefusalKey> = inner
        .open
        .iter()
        .filter(|(_, w)| now.saturating_duration_since(w.opened) >= WINDOW)
        .map(|(k, _)| k.clone())
        .collect();
    for k in expired {
        if let Some(w) = inner.open.remove(&k)
            && let Some(s) = w.summary()
        {
            push_pending(&mut inner.pending, s);
        }
    }
}

/// What makes two summaries the same kind of refusal, read from the record.
fn kind_of(
    d: &RecordDraft,
) -> (
    &str,
    &Option<String>,
    &Option<String>,
    &Option<String>,
    Option<&Value>,
) {
    (
        d.actor.role.as_str(),
        &d.actor.id,
        &d.actor.cert_serial,
        &d.code,
        d.details.as_ref().and_then(|m| m.get("attempted")),
    )
}

fn attempted(d: &RecordDraft) -> Option<&Value> {
    d.details.as_ref().and_then(|m| m.get("attempted"))
}

fn count_of(d: &RecordDraft) -> u64 {
    d.details
        .as_ref()
        .and_then(|m| m.get("count"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Queues a summary; one of the same kind still waiting (its write failed,
/// the store is down) takes its count instead, so a long store outage
/// under a refusal flood keeps one waiting summary per kind, not one per
/// window, and no count is lost.
fn push_pending(pending: &mut Vec<RecordDraft>, d: RecordDraft) {
    if let Some(same) = pending.iter_mut().find(|p| kind_of(p) == kind_of(&d)) {
        let count = count_of(same).saturating_add(count_of(&d));
        let last_at = d.details.as_ref().and_then(|m| m.get("last_at")).cloned();
        if let Some(m) = same.details.as_mut() {
            m.insert("count".into(), Value::from(count));
            if let Some(l) = last_at {
                m.insert("last_at".into(), l);
            }
        }
        if same.actor.officer != d.actor.officer {
            same.actor.officer = None;
            if let Some(m) = same.details.as_mut() {
                m.insert("officers".into(), Value::from("several"));
            }
        }
        same.at = d.at;
        return;
    }
    pending.push(d);
}

/// Writes `drafts` in order; the ones that could not be written go back
/// to the log for the next flush, so no count is lost to a passing store
/// failure. Returns whether all were written.
pub async fn write(app: &AppState, drafts: Vec<RecordDraft>) -> bool {
    let mut iter = drafts.into_iter();
    while let Some(d) = iter.next() {
        if let Err(e) = app.store.append_audit(d.clone()).await {
            tracing::error!(error = %e, "a refusal count could not be written to the audit log; kept for the next try");
            let mut rest = vec![d];
            rest.extend(iter);
            app.refusals.requeue(rest);
            return false;
        }
    }
    true
}

/// Writes closed windows' counts every quarter window until the gateway
/// shuts down; the final flush after the last request is the gateway's
/// (see `Gateway::stop`).
pub(crate) async fn flush_periodically(app: Arc<AppState>) {
    let mut stopping = app.shutting_down.subscribe();
    let mut tick = tokio::time::interval(WINDOW / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.changed() => return,
        }
        if *stopping.borrow() {
            return;
        }
        let due = app.refusals.take_due(Instant::now());
        if !due.is_empty() {
            write(&app, due).await;
        }
    }
}

/// The method's name for a [`RefusalKey`]: the standard ones by name, any
/// other as `other`, so a client inventing methods cannot grow the map.
pub(crate) fn method_name(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Action, Actor, Outcome};

    fn draft(at: &str) -> RecordDraft {
        RecordDraft {
            at: at.to_owned(),
            actor: Actor {
                role: "partner".into(),
                id: Some("RS-MOI".into()),
                officer: None,
                cert_serial: Some("0a".into()),
            },
            action: Action::Deny,
            message_id: None,
            counterparts: Vec::new(),
            outcome: Outcome::Denied,
            code: Some("partner_suspended".into()),
            justification: None,
            request_id: Some("r".into()),
            node: None,
            details: None,
        }
    }

    fn key(code: &'static str) -> RefusalKey {
        RefusalKey {
            caller: "urn:brdo:partner:RS-MOI".into(),
            serial: "0a".into(),
            attempted: "collect",
            request: ("POST", "/v1/messages"),
            code,
        }
    }

    fn count(d: &RecordDraft) -> u64 {
        d.details
            .as_ref()
            .and_then(|m| m.get("count"))
            .and_then(Value::as_u64)
            .expect("count")
    }

    #[test]
    fn first_is_recorded_then_counted_until_the_window_closes() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(
            log.admit(key("partner_suspended"), &draft("a"), t0),
            Admission::Record
        );
        for i in 0..9 {
            let at = t0 + Duration::from_millis(100 * i);
            assert_eq!(
                log.admit(key("partner_suspended"), &draft("b"), at),
                Admission::Counted
            );
        }
        // Another code is another kind.
        assert_eq!(
            log.admit(key("rate_limited"), &draft("c"), t0),
            Admission::Record
        );
        assert!(log.take_due(t0 + Duration::from_millis(999)).is_empty());
        let due = log.take_due(t0 + WINDOW);
        assert_eq!(due.len(), 1, "the window with counts; the other had none");
        assert_eq!(count(&due[0]), 9);
        assert_eq!(due[0].request_id, None);
        assert_eq!(log.open_windows(), 0);
        // After the window the next refusal is recorded again.
        assert_eq!(
            log.admit(key("partner_suspended"), &draft("d"), t0 + WINDOW * 2),
            Admission::Record
        );
    }

    /// While the store cannot be written, closed windows of one kind wait
    /// as one summary with the counts added up, however long the outage.
    #[test]
    fn summaries_waiting_for_the_store_stay_one_per_kind() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        for round in 0..1000u32 {
            let t = t0 + WINDOW * round;
            for k in ["rate_limited", "partner_suspended"] {
                let of = |at: &str| {
                    let mut d = draft(at);
                    d.code = Some(k.into());
                    d
                };
                log.admit(key(k), &of("a"), t);
                log.admit(key(k), &of("b"), t);
                log.admit(key(k), &of("c"), t);
            }
            // Every flush fails: the store is down.
            let due = log.take_due(t + WINDOW);
            log.requeue(due);
        }
        assert_eq!(log.pending_len(), 2, "one waiting summary per kind");
        let all = log.take_all();
        assert_eq!(all.len(), 2);
        assert_eq!(all.iter().map(count).sum::<u64>(), 2 * 1000 * 2);
        assert_eq!(
            all[0].details.as_ref().and_then(|m| m.get("first_at")),
            Some(&Value::from("a"))
        );
    }

    /// The officer and (for `rate_limited`) the attempted action are not
    /// part of the key: a summary never puts counted refusals on the
    /// first refusal's officer or action when they named others.
    #[test]
    fn summaries_name_no_officer_or_action_the_counted_refusals_did_not_share() {
        let by = |officer: &str, attempted: &str| {
            let mut d = draft("a");
            d.actor.officer = Some(officer.into());
            d.code = Some("rate_limited".into());
            let mut m = serde_json::Map::new();
            m.insert("attempted".into(), Value::from(attempted));
            d.details = Some(m);
            d
        };
        let k = || {
            RefusalKey::new(
                "urn:brdo:partner:RS-MOI".into(),
                "0a".into(),
                "collect",
                ("POST", "/v1/messages"),
                "rate_limited",
            )
        };
        let log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(
            log.admit(k(), &by("insp.hoxha", "collect"), t0),
            Admission::Record
        );
        assert_eq!(
            log.admit(k(), &by("insp.other", "disclose"), t0),
            Admission::Counted
        );
        assert_eq!(
            log.admit(k(), &by("insp.other", "disclose"), t0),
            Admission::Counted
        );
        let due = log.take_due(t0 + WINDOW);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].actor.officer, None, "{:?}", due[0]);
        let details = due[0].details.as_ref().expect("details");
        assert_eq!(details.get("officers"), Some(&Value::from("several")));
        assert_eq!(details.get("attempted"), Some(&Value::from("*")));
        assert_eq!(count(&due[0]), 2);
        // Counted refusals all by the first one's officer keep the name.
        log.admit(k(), &by("insp.hoxha", "collect"), t0 + WINDOW);
        log.admit(k(), &by("insp.hoxha", "collect"), t0 + WINDOW);
        let due = log.take_due(t0 + WINDOW * 2);
        assert_eq!(due[0].actor.officer.as_deref(), Some("insp.hoxha"));
        assert_eq!(
            due[0].details.as_ref().and_then(|m| m.get("attempted")),
            Some(&Value::from("collect"))
        );
        // Waiting summaries of one kind by different officers merge
        // without a name.
        let mut a = by("insp.hoxha", "collect");
        let mut b = by("insp.other", "collect");
        for d in [&mut a, &mut b] {
            if let Some(m) = d.details.as_mut() {
                m.insert("count".into(), Value::from(1));
            }
        }
        log.requeue(vec![a, b]);
        let back = log.take_all();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].actor.officer, None);
        assert_eq!(count(&back[0]), 2);
    }

    #[test]
    fn a_refusal_after_the_window_closes_it_and_shutdown_takes_the_rest() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        log.admit(key("x"), &draft("a"), t0);
        log.admit(key("x"), &draft("b"), t0);
        assert_eq!(
            log.admit(key("x"), &draft("c"), t0 + WINDOW),
            Admission::Record
        );
        log.admit(key("x"), &draft("d"), t0 + WINDOW);
        log.admit(key("x"), &draft("e"), t0 + WINDOW);
        let all = log.take_all();
        let counts: Vec<u64> = all.iter().map(count).collect();
        assert_eq!(
            counts,
            [1, 2],
            "the earlier window first, then the open one"
        );
        // A failed write is put back, and summaries of one kind waiting
        // for the store become one with their counts added up.
        log.requeue(all);
        let back = log.take_all();
        assert_eq!(back.iter().map(count).collect::<Vec<_>>(), [3]);
    }
}
