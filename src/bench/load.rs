//! The load drivers: closed loop (each worker waits for its answer) or
//! open loop (requests due at a fixed rate, latency from when each was due),
//! a warm-up that is not measured, and a progress line.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::Semaphore;
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
    let setup = |e: brdo_tools::client::ClientError| BenchError::Setup(e.to_string());
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
    let pacer = match spec.mode {
        Mode::Open { rate } => Some(Pacer::start(clock, rate).map_err(|e| {
            BenchError::Setup(format!("cannot start the open loop's pacing thread: {e}"))
        })?),
        Mode::Closed => None,
    };
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|w| {
            let open = pacer.as_ref().map(|p| (p.rate, p.released.clone()));
            tokio::spawn(drive(w, clock, open, next_tick.clone(), live.clone()))
        })
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
    drop(pacer);
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

/// When open-loop request `n` is due.
fn due_at(clock: Clock, rate: f64, n: u64) -> Instant {
    clock.start + Duration::from_secs_f64(n as f64 / rate)
}

/// Releases open-loop requests at their due times, from an OS thread of
/// its own. Workers used to wait with tokio's timer, which rounds a
/// deadline up to its next millisecond tick and parks in whole
/// milliseconds: every request left 1–2 ms late, and since latency counts
/// from when a request was due, that lateness was reported as the
/// server's (the in-process echo baseline showed a 1.0–1.7 ms median at
/// 1 000/s, 0.3 ms with this pacer). The thread sleeps to each due time
/// with the OS's own timer (`nanosleep`, microsecond resolution) and adds
/// one permit per request; a request
/// no worker is free to take keeps its due time, so a stalled server
/// still shows in the percentiles.
struct Pacer {
    rate: f64,
    released: Arc<Semaphore>,
    stop: Arc<AtomicBool>,
}

impl Pacer {
    fn start(clock: Clock, rate: f64) -> std::io::Result<Self> {
        let released = Arc::new(Semaphore::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (sem, stopped) = (released.clone(), stop.clone());
        std::thread::Builder::new()
            .name("bench-pacer".into())
            .spawn(move || {
                for n in 0.. {
                    let due = due_at(clock, rate, n);
                    if due >= clock.end || stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    let wait = due.saturating_duration_since(Instant::now());
                    if !wait.is_zero() {
                        std::thread::sleep(wait);
                    }
                    sem.add_permits(1);
                }
                // Past the end: each worker takes one more, finds it due
                // after the end and stops. (Closing the semaphore instead
                // would drop requests released but not yet taken.)
                sem.add_permits(END_PERMITS);
            })?;
        Ok(Self {
            rate,
            released,
            stop,
        })
    }
}

/// More than any run has workers.
const END_PERMITS: usize = 1 << 20;

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.released.close();
    }
}

/// One worker: repeats its operation until the end; only operations that
/// start (closed loop) or are due (open loop) in the measured interval
/// count.
async fn drive(
    mut worker: Worker,
    clock: Clock,
    open: Option<(f64, Arc<Semaphore>)>,
    next_tick: Arc<AtomicU64>,
    live: Arc<Live>,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let due = match &open {
            // Open loop: the pacer's rate and the requests it released.
            Some((rate, released)) => {
                // All workers share one schedule: request n is due at
                // start + n / rate, whichever worker is free takes it
                // once the pacer has released it.
                match released.acquire().await {
                    Ok(permit) => permit.forget(),
                    // Closed: the run was abandoned.
                    Err(_) => break,
                }
                let n = next_tick.fetch_add(1, Ordering::Relaxed);
                due_at(clock, *rate, n)
            }
            None => Instant::now(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request due before the end is released and taken, none after
    /// it, and every worker stops: the workers count requests, not time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pacer_releases_each_due_request_once_and_then_stops_the_workers() {
        let start = Instant::now();
        let clock = Clock {
            start,
            measure_from: start,
            end: start + Duration::from_millis(40),
        };
        let rate = 1000.0;
        let pacer = Pacer::start(clock, rate).expect("pacer");
        let next = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (released, next) = (pacer.released.clone(), next.clone());
                tokio::spawn(async move {
                    let mut taken = Vec::new();
                    loop {
                        released.acquire().await.expect("open").forget();
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if due_at(clock, rate, n) >= clock.end {
                            return taken;
                        }
                        taken.push(n);
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.expect("worker"));
        }
        all.sort_unstable();
        assert_eq!(all, (0..40).collect::<Vec<u64>>());
        drop(pacer);
    }
}
