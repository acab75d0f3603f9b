//! The load drivers: closed loop (each worker waits for its answer) or
//! open loop (requests due at a fixed rate, latency from when each was due),
//! a warm-up that is not measured, and a progress line.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use super::BenchError;
use super::histogram::Latencies;
use super::options::{LoadSpec, Mode};
use super::procstat;
use super::report::RunReport;
use super::scenario::{self, Endpoint, Worker};

/// What one worker measured.
#[derive(Debug, Default)]
struct Tally {
    latencies: Latencies,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

/// Counters the progress line reads while workers run.
#[derive(Debug, Default)]
struct Live {
    done: AtomicU64,
    failed: AtomicU64,
}

/// When the phases end.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

/// Runs `spec` against `endpoint`; `server_pid` is read before and after
/// the measured interval. `label` names the run in the report.
pub async fn run(
    spec: &LoadSpec,
    endpoint: &Endpoint,
    server_pid: Option<u32>,
    label: &'static str,
) -> Result<RunReport, BenchError> {
    let setup = |e: crate::client::ClientError| BenchError::Setup(e.to_string());
    let workers = scenario::workers(spec.scenario, spec.concurrency, spec.body_bytes, endpoint)
        .map_err(setup)?;
    let feeders = scenario::feeders(spec.scenario, spec.concurrency, spec.body_bytes, endpoint)
        .map_err(setup)?;
    let start = Instant::now();
    let clock = Clock {
        start,
        measure_from: start + spec.warmup,
        end: start + spec.warmup + spec.duration,
    };
    let live = Arc::new(Live::default());
    let stop_feeding = Arc::new(AtomicBool::new(false));
    let feeding: Vec<_> = feeders
        .into_iter()
        .map(|w| tokio::spawn(feed(w, stop_feeding.clone())))
        .collect();
    let next_tick = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|w| tokio::spawn(drive(w, spec.mode, clock, next_tick.clone(), live.clone())))
        .collect();
    let progress = spec
        .progress
        .then(|| tokio::spawn(show_progress(label, clock, live.clone())));
    tokio::time::sleep_until(clock.measure_from).await;
    let before = server_pid.and_then(|pid| procstat::sample(pid).ok());
    let measured_from = Instant::now();
    let mut total = Tally::default();
    for t in tasks {
        let tally = t
            .await
            .map_err(|e| BenchError::Setup(format!("a load worker failed: {e}")))?;
        total.latencies.merge(&tally.latencies);
        total.ok += tally.ok;
        for (k, n) in tally.errors {
            *total.errors.entry(k).or_default() += n;
        }
    }
    let wall = measured_from.elapsed().as_secs_f64();
    let server = match (server_pid, before) {
        (Some(pid), Some(b)) => procstat::sample(pid)
            .ok()
            .map(|a| procstat::usage(pid, &b, &a, wall)),
        _ => None,
    };
    stop_feeding.store(true, Ordering::Relaxed);
    for f in feeding {
        let _ = f.await;
    }
    if let Some(p) = progress {
        p.abort();
        let _ = p.await;
    }
    Ok(RunReport::new(
        label,
        spec,
        total.ok,
        total.errors,
        &total.latencies,
        server,
    ))
}

/// One worker: repeats its operation until the end; only operations that
/// start (closed loop) or are due (open loop) in the measured interval
/// count.
async fn drive(
    mut worker: Worker,
    mode: Mode,
    clock: Clock,
    next_tick: Arc<AtomicU64>,
    live: Arc<Live>,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let due = match mode {
            Mode::Closed => Instant::now(),
            Mode::Open { rate } => {
                // All workers share one schedule: request n is due at
                // start + n / rate, whichever worker is free takes it.
                let n = next_tick.fetch_add(1, Ordering::Relaxed);
                let due = clock.start + Duration::from_secs_f64(n as f64 / rate);
                if due < clock.end {
                    tokio::time::sleep_until(due).await;
                }
                due
            }
        };
        if due >= clock.end {
            break;
        }
        let outcome = worker.op().await;
        let latency = Instant::now().saturating_duration_since(due);
        live.done.fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            live.failed.fetch_add(1, Ordering::Relaxed);
        }
        if due < clock.measure_from {
            continue;
        }
        match outcome {
            Ok(()) => {
                tally.ok += 1;
                tally.latencies.record(latency);
            }
            Err(key) => *tally.errors.entry(key).or_default() += 1,
        }
    }
    tally
}

/// A feeder: submits until told to stop, measuring nothing.
async fn feed(mut worker: Worker, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if worker.op().await.is_err() {
            // Do not spin on a refusing server.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The progress line on stderr (drawn only when stderr is a terminal).
async fn show_progress(label: &'static str, clock: Clock, live: Arc<Live>) {
    let total_ms = clock.end.duration_since(clock.start).as_millis();
    let bar = ProgressBar::with_draw_target(
        Some(u64::try_from(total_ms).unwrap_or(u64::MAX)),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label);
    let mut last = (Instant::now(), 0u64);
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let done = live.done.load(Ordering::Relaxed);
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
        last = (now, done);
        let phase = if now < clock.measure_from {
            "warm-up"
        } else {
            "measuring"
        };
        bar.set_position(u64::try_from(now.duration_since(clock.start).as_millis()).unwrap_or(0));
        bar.set_message(format!(
            "{phase}: {done} ops, {} errors, {rate:.0}/s",
            live.failed.load(Ordering::Relaxed)
        ));
        if now >= clock.end {
            bar.finish_and_clear();
        }
    }
}
