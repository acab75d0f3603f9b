//! The figures of a run and how they print: the same names and units as
//! `brdo bench`'s report (`throughput`, `latency.p50_ms`, …), so a script
//! reads both the same way.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::histogram::{Latencies, LatencySummary};

/// The machine the run was on, so a figure can be judged later.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// 1-minute load average when the run started (others share the box).
    pub load_average_1m: Option<f64>,
}

impl Machine {
    /// Reads the machine's description.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned());
        let load_average_1m = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            load_average_1m,
        }
    }
}

/// What the publishers measured in the measured interval.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of acknowledged publishes.
    pub latencies: Latencies,
    /// Acknowledged publishes.
    pub ok: u64,
    /// Failed publishes by kind (`nack`, `timeout`, `transport`, …).
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Adds another publisher's tally to this one.
    pub fn merge(&mut self, other: Tally) {
        self.latencies.merge(&other.latencies);
        self.ok += other.ok;
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
    }
}

/// One run against one broker.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `rabbitmq` or `nats`.
    pub broker: &'static str,
    /// What the acknowledgement waited for.
    pub durability: &'static str,
    /// Always `closed`: each publisher waits for its acknowledgement.
    pub mode: &'static str,
    /// Publishers.
    pub concurrency: usize,
    /// Bytes per message body.
    pub body_bytes: usize,
    /// The measured interval, seconds.
    pub duration_secs: f64,
    /// Acknowledged publishes started in the interval.
    pub ok: u64,
    /// Failed publishes by kind.
    pub errors: BTreeMap<String, u64>,
    /// Failed publishes in total.
    pub error_count: u64,
    /// Acknowledged publishes per second.
    pub throughput: f64,
    /// Latency of acknowledged publishes, publish to acknowledgement.
    pub latency: LatencySummary,
}

impl RunReport {
    /// Assembles a run's figures.
    pub fn new(
        broker: &'static str,
        durability: &'static str,
        concurrency: usize,
        body_bytes: usize,
        duration_secs: f64,
        tally: Tally,
    ) -> Self {
        Self {
            broker,
            durability,
            mode: "closed",
            concurrency,
            body_bytes,
            duration_secs,
            ok: tally.ok,
            error_count: tally.errors.values().sum(),
            errors: tally.errors,
            throughput: if duration_secs > 0.0 {
                tally.ok as f64 / duration_secs
            } else {
                0.0
            },
            latency: tally.latencies.summary(),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The run.
    pub peer: RunReport,
}

impl Report {
    /// The report for people, laid out like `brdo bench`'s.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let r = &self.peer;
        let _ = writeln!(
            out,
            "{}: {} ({} loop), {} publishers, {} B bodies, {:.1} s measured; {} CPUs{}{}",
            r.broker,
            r.durability,
            r.mode,
            r.concurrency,
            r.body_bytes,
            r.duration_secs,
            self.machine.cpus,
            self.machine
                .cpu_model
                .as_ref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            self.machine
                .load_average_1m
                .map(|l| format!(", load average {l:.2}"))
                .unwrap_or_default(),
        );
        let _ = writeln!(
            out,
            "{:<9} {:>11} {:>9} {:>9} {:>9} {:>9} {:>7}",
            "", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
        );
        let _ = writeln!(
            out,
            "{:<9} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7}",
            r.broker,
            r.throughput,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.p999_ms,
            r.latency.max_ms,
            r.error_count,
        );
        for (k, n) in &r.errors {
            let _ = writeln!(out, "{} error {k}: {n}", r.broker);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tally(ok: u64, ms: u64) -> Tally {
        let mut t = Tally::default();
        for _ in 0..ok {
            t.latencies.record(Duration::from_millis(ms));
        }
        t.ok = ok;
        t
    }

    #[test]
    fn throughput_is_acknowledged_publishes_per_measured_second() {
        let mut t = tally(200, 2);
        t.errors.insert("nack".into(), 3);
        t.errors.insert("transport".into(), 2);
        let r = RunReport::new("nats", "d", 16, 1024, 2.0, t);
        assert_eq!(r.throughput, 100.0);
        assert_eq!(r.error_count, 5);
        assert_eq!(r.latency.count, 200);
        let empty = RunReport::new("nats", "d", 16, 1024, 0.0, Tally::default());
        assert_eq!(empty.throughput, 0.0);
    }

    #[test]
    fn tallies_merge_counts_errors_and_the_tail() {
        let mut a = tally(999, 1);
        a.errors.insert("nack".into(), 1);
        let mut b = tally(1, 50);
        b.errors.insert("nack".into(), 2);
        b.errors.insert("timeout".into(), 1);
        a.merge(b);
        assert_eq!(a.ok, 1000);
        assert_eq!(a.errors["nack"], 3);
        assert_eq!(a.errors["timeout"], 1);
        let s = a.latencies.summary();
        assert!((s.max_ms - 50.0).abs() < 0.1, "{s:?}");
    }

    #[test]
    fn json_has_the_names_brdo_bench_uses() {
        let r = Report {
            machine: Machine {
                cpus: 2,
                cpu_model: Some("Test CPU".into()),
                load_average_1m: Some(1.5),
            },
            peer: RunReport::new("rabbitmq", "quorum", 16, 1024, 10.0, tally(5000, 3)),
        };
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["peer"]["broker"], "rabbitmq");
        assert_eq!(v["peer"]["ok"], 5000);
        assert_eq!(v["peer"]["throughput"], 500.0);
        assert_eq!(v["peer"]["error_count"], 0);
        for k in ["p50_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"] {
            assert!(v["peer"]["latency"][k].is_number(), "{k}");
        }
        assert_eq!(v["machine"]["cpus"], 2);
        let t = r.text();
        assert!(
            t.contains("rabbitmq") && t.contains("500.0") && t.contains("Test CPU"),
            "{t}"
        );
    }
}
