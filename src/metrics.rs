//! Counters and histograms for operators, rendered in the Prometheus text
//! format on `metrics_listen`.
//!
//! A small registry of our own rather than the Prometheus exporter crates:
//! the OpenTelemetry Prometheus exporter is discontinued and pulls an
//! unmaintained protobuf crate with open advisories. The same numbers are
//! exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! (`telemetry`). Labels carry routes, status codes, violation codes and
//! certificate identities — never message content.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the request latency buckets, in seconds.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; LATENCY_BUCKETS.len()];
        }
        for (b, le) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if secs <= *le {
                *b += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// What the gateway counts.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    accepted: AtomicU64,
    denied: Mutex<BTreeMap<String, u64>>,
    sweeps: AtomicU64,
    erased: AtomicU64,
    orphans: AtomicU64,
    audit_reduced: AtomicU64,
    reloads: Mutex<BTreeMap<String, u64>>,
    closed_connections: AtomicU64,
    content_unreadable: AtomicU64,
    crl_refused: Mutex<BTreeMap<String, u64>>,
    crl_in_force: Mutex<Option<(u128, i64)>>,
    crl_warnings: AtomicU64,
    relay_sent: Mutex<BTreeMap<(String, String), u64>>,
    relay_received: Mutex<BTreeMap<(String, String), u64>>,
}

/// Values read at scrape time.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    /// Records in the audit log.
    pub audit_records: u64,
    /// Seconds since the newest checkpoint was signed (`None`: none yet).
    pub checkpoint_age_secs: Option<f64>,
    /// Tree size of the newest checkpoint.
    pub checkpoint_tree_size: u64,
    /// Open connections.
    pub connections: usize,
    /// Days until each known certificate expires: (identity, serial, days).
    pub certificates: Vec<(String, String, f64)>,
    /// Partners suspended now.
    pub suspended_partners: usize,
    /// Each peer's outbox: (peer, rows waiting, seconds the oldest waited).
    pub relay_queues: Vec<(String, i64, f64)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Metrics {
    /// Requests by route and status, and their latency histograms.
    fn render_requests(&self, out: &mut String) {
        let requests = lock(&self.requests).clone();
        let latency = lock(&self.latency).clone();
        header(
            out,
            "brdo_requests_total",
            "counter",
            "API requests by route and status.",
        );
        for ((route, status), n) in &requests {
            let _ = writeln!(
                out,
                "brdo_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        header(
            out,
            "brdo_request_duration_seconds",
            "histogram",
            "API request latency.",
        );
        for (route, h) in &latency {
            let r = label(route);
            for (b, le) in h.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "brdo_request_duration_seconds_bucket{{route=\"{r}\",le=\"{le}\"}} {b}"
                );
            }
            let _ = writeln!(
                out,
                "brdo_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "brdo_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "brdo_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
    }

    /// Messages accepted, and refused by violation code.
    fn render_messages(&self, out: &mut String) {
        let denied = lock(&self.denied).clone();
        single(
            out,
            "brdo_messages_accepted_total",
            "counter",
            "Messages and forwards accepted.",
            self.accepted.load(Ordering::Relaxed),
        );
        header(
            out,
            "brdo_messages_denied_total",
            "counter",
            "Messages refused by the policy, by violation code.",
        );
        for (code, n) in &denied {
            let _ = writeln!(
                out,
                "brdo_messages_denied_total{{code=\"{}\"}} {n}",
                label(code)
            );
        }
    }

    /// The audit log's size and checkpoint, and the certificates' expiry.
    fn render_audit_and_certificates(out: &mut String, g: &Gauges) {
        single(
            out,
            "brdo_audit_records",
            "gauge",
            "Records in the audit log.",
            g.audit_records,
        );
        single(
            out,
            "brdo_audit_checkpoint_tree_size",
            "gauge",
            "Tree size of the newest signed checkpoint.",
            g.checkpoint_tree_size,
        );
        if let Some(age) = g.checkpoint_age_secs {
            single(
                out,
                "brdo_audit_checkpoint_age_seconds",
                "gauge",
                "Seconds since the newest checkpoint was signed.",
                format!("{age:.3}"),
            );
        }
        header(
            out,
            "brdo_certificate_expiry_days",
            "gauge",
            "Days until each known certificate expires.",
        );
        for (identity, serial, days) in &g.certificates {
            let _ = writeln!(
                out,
                "brdo_certificate_expiry_days{{identity=\"{}\",serial=\"{}\"}} {days:.2}",
                label(identity),
                label(serial)
            );
        }
    }

    /// What the sweeper did.
    fn render_retention(&self, out: &mut String) {
        single(
            out,
            "brdo_retention_sweeps_total",
            "counter",
            "Retention sweeps run.",
            self.sweeps.load(Ordering::Relaxed),
        );
        single(
            out,
            "brdo_retention_erased_total",
            "counter",
            "Messages erased by the sweeper.",
            self.erased.load(Ordering::Relaxed),
        );
        single(
            out,
            "brdo_retention_orphans_removed_total",
            "counter",
            "Unreferenced uploads removed.",
            self.orphans.load(Ordering::Relaxed),
        );
        single(
            out,
            "brdo_audit_records_reduced_total",
            "counter",
            "Audit records reduced to their hashes.",
            self.audit_reduced.load(Ordering::Relaxed),
        );
    }

    /// Reloads, connections, unreadable content and suspended partners.
    fn render_operations(&self, out: &mut String, g: &Gauges) {
        let reloads = lock(&self.reloads).clone();
        header(
            out,
            "brdo_reloads_total",
            "counter",
            "Reloads of policy and TLS material, by outcome.",
        );
        for (outcome, n) in &reloads {
            let _ = writeln!(
                out,
                "brdo_reloads_total{{outcome=\"{}\"}} {n}",
                label(outcome)
            );
        }
        single(
            out,
            "brdo_connections_open",
            "gauge",
            "Open mTLS connections.",
            g.connections,
        );
        single(
            out,
            "brdo_connections_closed_total",
            "counter",
            "Connections closed because their certificate was revoked or their partner suspended.",
            self.closed_connections.load(Ordering::Relaxed),
        );
        single(
            out,
            "brdo_content_unreadable_total",
            "counter",
            "Stored messages whose content failed to open when listed (audited with code content_integrity).",
            self.content_unreadable.load(Ordering::Relaxed),
        );
        single(
            out,
            "brdo_partners_suspended",
            "gauge",
            "Partners suspended now.",
            g.suspended_partners,
        );
    }

    fn render_crl(&self, out: &mut String) {
        let refused = lock(&self.crl_refused).clone();
        header(
            out,
            "brdo_crl_refused_total",
            "counter",
            "CRLs not put in force, by reason (crl_expired, crl_rollback, crl_conflict).",
        );
        for (code, n) in &refused {
            let _ = writeln!(
                out,
                "brdo_crl_refused_total{{reason=\"{}\"}} {n}",
                label(code)
            );
        }
        if let Some((number, next_update)) = *lock(&self.crl_in_force) {
            single(
                out,
                "brdo_crl_number",
                "gauge",
                "Number of the CRL in force.",
                number,
            );
            let left = next_update - time::OffsetDateTime::now_utc().unix_timestamp();
            single(
                out,
                "brdo_crl_next_update_seconds",
                "gauge",
                "Seconds until the CRL in force reaches its nextUpdate (re-sign it before).",
                left,
            );
        }
        single(
            out,
            "brdo_crl_expiry_warnings_total",
            "counter",
            "Warnings that the CRL in force nears its nextUpdate.",
            self.crl_warnings.load(Ordering::Relaxed),
        );
    }
}

/// Escapes a label value for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// One finished request.
    pub fn request(&self, route: &str, status: u16, secs: f64) {
        *lock(&self.requests)
            .entry((route.to_owned(), status))
            .or_default() += 1;
        lock(&self.latency)
            .entry(route.to_owned())
            .or_default()
            .observe(secs);
    }

    /// A message (or forward) accepted.
    /// An outbox row to `peer` ended (`relayed`, `receipt`, `dropped`,
    /// `undeliverable`) or an attempt failed (`failed`).
    pub(crate) fn relay_sent(&self, peer: &str, outcome: &str) {
        *lock(&self.relay_sent)
            .entry((peer.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    /// A document from `peer` was answered (`accepted`, `refused`,
    /// `replayed`, `invalid`, `receipts`).
    pub(crate) fn relay_received(&self, peer: &str, outcome: &str) {
        *lock(&self.relay_received)
            .entry((peer.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    pub(crate) fn message_accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A message denied, counted once per distinct violation code.
    pub(crate) fn message_denied<'a>(&self, codes: impl IntoIterator<Item = &'a str>) {
        let mut m = lock(&self.denied);
        let mut seen = std::collections::BTreeSet::new();
        for c in codes {
            if seen.insert(c) {
                *m.entry(c.to_owned()).or_default() += 1;
            }
        }
    }

    /// One retention sweep and what it did.
    pub fn sweep(&self, erased: usize, orphans: usize, audit_reduced: u64) {
        self.sweeps.fetch_add(1, Ordering::Relaxed);
        self.erased.fetch_add(erased as u64, Ordering::Relaxed);
        self.orphans.fetch_add(orphans as u64, Ordering::Relaxed);
        self.audit_reduced
            .fetch_add(audit_reduced, Ordering::Relaxed);
    }

    /// A reload, by outcome (`ok`, `refused`).
    pub fn reload(&self, outcome: &str) {
        *lock(&self.reloads).entry(outcome.to_owned()).or_default() += 1;
    }

    /// Connections closed because of a revocation or suspension.
    pub fn connections_closed(&self, n: usize) {
        self.closed_connections
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Stored messages whose content failed to open while listed: each is
    /// a lost or damaged key or row the DPO has to look into.
    pub(crate) fn content_unreadable(&self, n: usize) {
        self.content_unreadable
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A CRL refused (expired, older than the one in force), by code.
    pub(crate) fn crl_refused(&self, code: &str) {
        *lock(&self.crl_refused).entry(code.to_owned()).or_default() += 1;
    }

    /// The CRL now in force: number and nextUpdate (unix seconds).
    pub(crate) fn crl_in_force(&self, number: u128, next_update: i64) {
        *lock(&self.crl_in_force) = Some((number, next_update));
    }

    /// A warning that the CRL in force nears its nextUpdate.
    pub(crate) fn crl_expiry_warning(&self) {
        self.crl_warnings.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages accepted so far (for OTLP export).
    pub(crate) fn accepted_total(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Denials by code so far (for OTLP export).
    pub(crate) fn denied_totals(&self) -> Vec<(String, u64)> {
        lock(&self.denied)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Requests by route and status so far (for OTLP export).
    pub(crate) fn request_totals(&self) -> Vec<(String, u16, u64)> {
        lock(&self.requests)
            .iter()
            .map(|((r, s), n)| (r.clone(), *s, *n))
            .collect()
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self, g: &Gauges) -> String {
        let mut out = String::with_capacity(8192);
        self.render_requests(&mut out);
        self.render_messages(&mut out);
        Self::render_audit_and_certificates(&mut out, g);
        self.render_retention(&mut out);
        self.render_operations(&mut out, g);
        self.render_crl(&mut out);
        self.render_relay(&mut out, g);
        out
    }

    fn render_relay(&self, out: &mut String, g: &Gauges) {
        for (name, help, map) in [
            (
                "brdo_relay_sent_total",
                "Outbox rows to each peer gateway by outcome (relayed, receipt, dropped, undeliverable, failed attempts).",
                &self.relay_sent,
            ),
            (
                "brdo_relay_received_total",
                "Documents from each peer gateway by outcome (accepted, refused, replayed, invalid, receipts).",
                &self.relay_received,
            ),
        ] {
            header(out, name, "counter", help);
            for ((peer, outcome), n) in lock(map).iter() {
                let _ = writeln!(
                    out,
                    "{name}{{peer=\"{}\",outcome=\"{}\"}} {n}",
                    label(peer),
                    label(outcome)
                );
            }
        }
        header(
            out,
            "brdo_relay_queue_depth",
            "gauge",
            "Outbox rows waiting for each peer gateway.",
        );
        for (peer, depth, _) in &g.relay_queues {
            let _ = writeln!(
                out,
                "brdo_relay_queue_depth{{peer=\"{}\"}} {depth}",
                label(peer)
            );
        }
        header(
            out,
            "brdo_relay_oldest_queued_seconds",
            "gauge",
            "Seconds the oldest outbox row for each peer gateway has waited.",
        );
        for (peer, _, age) in &g.relay_queues {
            let _ = writeln!(
                out,
                "brdo_relay_oldest_queued_seconds{{peer=\"{}\"}} {age:.3}",
                label(peer)
            );
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::default();
        m.request("/v1/messages", 201, 0.003);
        m.request("/v1/messages", 201, 0.2);
        m.message_accepted();
        m.message_denied(["no_legal_basis", "no_legal_basis", "not_releasable"]);
        m.sweep(2, 1, 0);
        let text = m.render(&Gauges {
            audit_records: 7,
            checkpoint_age_secs: Some(1.5),
            checkpoint_tree_size: 5,
            connections: 3,
            certificates: vec![("urn:brdo:partner:AL-CTD".into(), "0a".into(), 29.5)],
            suspended_partners: 1,
            relay_queues: vec![("RS-NCB".into(), 2, 1.5)],
        });
        for line in [
            "brdo_requests_total{route=\"/v1/messages\",status=\"201\"} 2",
            "brdo_request_duration_seconds_bucket{route=\"/v1/messages\",le=\"0.005\"} 1",
            "brdo_request_duration_seconds_bucket{route=\"/v1/messages\",le=\"+Inf\"} 2",
            "brdo_messages_accepted_total 1",
            "brdo_messages_denied_total{code=\"no_legal_basis\"} 1",
            "brdo_messages_denied_total{code=\"not_releasable\"} 1",
            "brdo_audit_records 7",
            "brdo_audit_checkpoint_age_seconds 1.500",
            "brdo_certificate_expiry_days{identity=\"urn:brdo:partner:AL-CTD\",serial=\"0a\"} 29.50",
            "brdo_retention_erased_total 2",
            "brdo_connections_open 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(text.contains("# TYPE brdo_request_duration_seconds histogram"));
    }
}
