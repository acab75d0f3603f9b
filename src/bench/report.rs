//! The figures of a run, their ratios to the baseline, and how they print.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::histogram::{Latencies, LatencySummary};
use super::options::{LoadSpec, Mode};
use super::procstat::ServerUsage;

/// The end-to-end figures of the relay run.
#[derive(Debug, Clone, Serialize)]
pub struct RelayFigures {
    /// Messages submitted on A in the measured interval.
    pub sent: u64,
    /// Of those, messages that reached RS-MOI's inbox on B.
    pub arrived: u64,
    /// Of those, messages that had not arrived in the drain after the load.
    pub missing: u64,
    /// Arrivals on B per measured second.
    pub throughput: f64,
    /// From submit on A to the inbox on B, of the messages that arrived.
    pub latency: LatencySummary,
    /// `throughput` over the single gateway's submit throughput.
    pub ratio_to_single: Option<f64>,
}

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

/// One run against one server.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `baseline` or `gateway`.
    pub target: &'static str,
    /// The scenario.
    pub scenario: &'static str,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Offered rate in open loop, requests per second.
    pub offered_rate: Option<f64>,
    /// Workers.
    pub concurrency: usize,
    /// The measured interval, seconds.
    pub duration_secs: f64,
    /// Successful operations in the interval.
    pub ok: u64,
    /// Failed operations by `"<status> <code>"`, `connect` or `transport`.
    pub errors: BTreeMap<String, u64>,
    /// Failed operations in total.
    pub error_count: u64,
    /// Successful operations per second.
    pub throughput: f64,
    /// Latency of successful operations.
    pub latency: LatencySummary,
    /// The server's CPU and memory, when its process is known.
    pub server: Option<ServerUsage>,
}

impl RunReport {
    /// Assembles a run's figures.
    pub fn new(
        target: &'static str,
        spec: &LoadSpec,
        ok: u64,
        errors: BTreeMap<String, u64>,
        latencies: &Latencies,
        server: Option<ServerUsage>,
    ) -> Self {
        let duration_secs = spec.duration.as_secs_f64();
        let (mode, offered_rate) = match spec.mode {
            Mode::Closed => ("closed", None),
            Mode::Open { rate } => ("open", Some(rate)),
        };
        Self {
            target,
            scenario: spec.scenario.name(),
            mode,
            offered_rate,
            concurrency: spec.concurrency,
            duration_secs,
            ok,
            error_count: errors.values().sum(),
            errors,
            throughput: if duration_secs > 0.0 {
                ok as f64 / duration_secs
            } else {
                0.0
            },
            latency: latencies.summary(),
            server,
        }
    }
}

/// Gateway figures divided by the baseline's (throughput: higher is
/// better; latency: lower is better).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratios {
    /// Gateway throughput / baseline throughput.
    pub throughput: Option<f64>,
    /// Gateway p50 / baseline p50.
    pub p50: Option<f64>,
    /// Gateway p99 / baseline p99.
    pub p99: Option<f64>,
    /// Gateway p99.9 / baseline p99.9.
    pub p999: Option<f64>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

impl Ratios {
    /// The ratios of `gateway` to `baseline`; `None` where the baseline's
    /// figure is zero.
    pub fn of(gateway: &RunReport, baseline: &RunReport) -> Self {
        Self {
            throughput: ratio(gateway.throughput, baseline.throughput),
            p50: ratio(gateway.latency.p50_ms, baseline.latency.p50_ms),
            p99: ratio(gateway.latency.p99_ms, baseline.latency.p99_ms),
            p999: ratio(gateway.latency.p999_ms, baseline.latency.p999_ms),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The echo server run, with `--baseline`.
    pub baseline: Option<RunReport>,
    /// The gateway run.
    pub gateway: RunReport,
    /// Gateway / baseline, with `--baseline`.
    pub ratios: Option<Ratios>,
    /// The durable echo run, with `--baseline durable`.
    pub durable: Option<RunReport>,
    /// Gateway / durable echo, with `--baseline durable`.
    pub durable_ratios: Option<Ratios>,
    /// The relay scenario's end-to-end figures (its `baseline` is the
    /// single gateway, its `gateway` the submits on A).
    pub relay: Option<RelayFigures>,
}

impl Report {
    /// Assembles the report and its ratios.
    pub fn new(machine: Machine, baseline: Option<RunReport>, gateway: RunReport) -> Self {
        let ratios = baseline.as_ref().map(|b| Ratios::of(&gateway, b));
        Self {
            machine,
            baseline,
            gateway,
            ratios,
            durable: None,
            durable_ratios: None,
            relay: None,
        }
    }

    /// The report with the durable echo's run and the ratios to it.
    #[must_use]
    pub fn with_durable(mut self, durable: Option<RunReport>) -> Self {
        self.durable_ratios = durable.as_ref().map(|d| Ratios::of(&self.gateway, d));
        self.durable = durable;
        self
    }

    /// The report with the relay scenario's end-to-end figures.
    #[must_use]
    pub fn with_relay(mut self, figures: RelayFigures) -> Self {
        self.relay = Some(figures);
        self
    }

    /// Whether any operation failed.
    pub fn has_errors(&self) -> bool {
        self.gateway.error_count > 0
            || self.baseline.as_ref().is_some_and(|b| b.error_count > 0)
            || self.durable.as_ref().is_some_and(|b| b.error_count > 0)
            || self.relay.as_ref().is_some_and(|r| r.missing > 0)
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let g = &self.gateway;
        let _ = writeln!(
            out,
            "scenario {} ({} loop{}), {} workers, {:.1} s measured; {} CPUs{}{}",
            g.scenario,
            g.mode,
            g.offered_rate
                .map(|r| format!(", {r:.0}/s offered"))
                .unwrap_or_default(),
            g.concurrency,
            g.duration_secs,
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
            "{:<9} {:>11} {:>9} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10}",
            "",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "errors",
            "srv cores",
            "srv peak"
        );
        for r in self.baseline.iter().chain(&self.durable).chain([g]) {
            let _ = writeln!(
                out,
                "{:<9} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>10} {:>10}",
                r.target,
                r.throughput,
                r.latency.p50_ms,
                r.latency.p99_ms,
                r.latency.p999_ms,
                r.latency.max_ms,
                r.error_count,
                r.server
                    .map(|s| format!("{:.2}", s.cpu_cores))
                    .unwrap_or_else(|| "-".into()),
                r.server
                    .map(|s| format!("{:.1} MiB", s.peak_rss_mib))
                    .unwrap_or_else(|| "-".into()),
            );
        }
        for (name, x) in [("ratio", &self.ratios), ("÷ durable", &self.durable_ratios)] {
            if let Some(x) = x {
                ratio_line(&mut out, name, x);
            }
        }
        if let Some(r) = &self.relay {
            relay_lines(&mut out, r);
        }
        for r in self.baseline.iter().chain(&self.durable).chain([g]) {
            for (k, n) in &r.errors {
                let _ = writeln!(out, "{} error {k}: {n}", r.target);
            }
        }
        out
    }
}

/// One line of gateway / baseline ratios.
fn ratio_line(out: &mut String, name: &str, x: &Ratios) {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}×"));
    let _ = writeln!(
        out,
        "{:<9} {:>11} {:>9} {:>9} {:>9}",
        name,
        f(x.throughput),
        f(x.p50),
        f(x.p99),
        f(x.p999)
    );
}

/// The relay scenario's end-to-end line and its ratio.
fn relay_lines(out: &mut String, r: &RelayFigures) {
    let _ = writeln!(
        out,
        "end to end (submit on A to RS-MOI's inbox on B): {:.1} msg/s, p50 {:.3} ms, \
             p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; {} sent, {} arrived, {} missing",
        r.throughput,
        r.latency.p50_ms,
        r.latency.p99_ms,
        r.latency.p999_ms,
        r.latency.max_ms,
        r.sent,
        r.arrived,
        r.missing
    );
    let _ = writeln!(
        out,
        "relay throughput / single-gateway submit: {}",
        r.ratio_to_single
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}×"))
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::options::Scenario;

    fn spec(mode: Mode) -> LoadSpec {
        LoadSpec {
            scenario: Scenario::Submit,
            concurrency: 4,
            duration: Duration::from_secs(2),
            warmup: Duration::ZERO,
            mode,
            recipients: 1,
            body_bytes: 1024,
            progress: false,
        }
    }

    fn run(target: &'static str, ok: u64, ms: u64) -> RunReport {
        let mut l = Latencies::new();
        for _ in 0..ok {
            l.record(Duration::from_millis(ms));
        }
        RunReport::new(target, &spec(Mode::Closed), ok, BTreeMap::new(), &l, None)
    }

    #[test]
    fn throughput_is_ok_per_measured_second() {
        let mut errors = BTreeMap::new();
        errors.insert("503 unavailable".to_owned(), 3);
        errors.insert("connect".to_owned(), 2);
        let r = RunReport::new(
            "gateway",
            &spec(Mode::Open { rate: 100.0 }),
            200,
            errors,
            &Latencies::new(),
            None,
        );
        assert_eq!(r.throughput, 100.0);
        assert_eq!(r.error_count, 5);
        assert_eq!(r.mode, "open");
        assert_eq!(r.offered_rate, Some(100.0));
    }

    #[test]
    fn ratios_divide_gateway_by_baseline() {
        let base = run("baseline", 1000, 1);
        let gw = run("gateway", 250, 4);
        let x = Ratios::of(&gw, &base);
        assert_eq!(x.throughput, Some(0.25));
        let p50 = x.p50.expect("p50");
        assert!((p50 - 4.0).abs() < 0.01, "{p50}");
        let empty = run("baseline", 0, 1);
        assert_eq!(Ratios::of(&gw, &empty).throughput, None);
        assert_eq!(Ratios::of(&gw, &empty).p99, None);
    }

    #[test]
    fn report_json_and_text_carry_every_figure() {
        let r = Report::new(
            Machine {
                cpus: 2,
                cpu_model: Some("Test CPU".into()),
                load_average_1m: Some(1.5),
            },
            Some(run("baseline", 1000, 1)),
            run("gateway", 500, 2),
        );
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["gateway"]["ok"], 500);
        assert_eq!(v["gateway"]["scenario"], "submit");
        assert_eq!(v["ratios"]["throughput"], 0.5);
        assert!(v["baseline"]["latency"]["p999_ms"].is_number());
        let t = r.text();
        assert!(
            t.contains("baseline") && t.contains("ratio") && t.contains("0.50×"),
            "{t}"
        );
        assert!(!r.has_errors());
        assert!(v["durable"].is_null() && v["durable_ratios"].is_null());
        assert!(!t.contains("durable"), "{t}");
    }

    #[test]
    fn the_durable_echo_has_its_row_and_ratios() {
        let r = Report::new(
            Machine {
                cpus: 2,
                cpu_model: None,
                load_average_1m: None,
            },
            None,
            run("gateway", 500, 2),
        )
        .with_durable(Some(run("durable", 2000, 1)));
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["durable"]["ok"], 2000);
        assert_eq!(v["durable_ratios"]["throughput"], 0.25);
        assert!(v["ratios"].is_null());
        let t = r.text();
        assert!(
            t.contains("durable") && t.contains("÷ durable") && t.contains("0.25×"),
            "{t}"
        );
        let mut failed = run("durable", 10, 1);
        failed.error_count = 1;
        assert!(r.clone().with_durable(Some(failed)).has_errors());
    }
}
