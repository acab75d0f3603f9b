//! `peer-bench`: the exchange Brdo replaces, built on a durable broker, under
//! the load `brdo bench` puts on the gateway: N publishers of 1 KiB bodies,
//! each waiting for a durable acknowledgement before the next.
//!
//! Exit status: 0 when every publish was acknowledged, 1 when some failed,
//! 2 when the run could not start (bad flag, broker not reachable or
//! refusing the queue or stream).
#![forbid(unsafe_code)]

mod histogram;
mod load;
mod nats;
mod options;
mod rabbit;
mod reach;
mod report;

use std::process::ExitCode;

use clap::Parser;

use load::{Clock, Publish};
use options::{Args, Broker};
use reach::SetupError;
use report::{Machine, Report, RunReport, Tally};

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let machine = Machine::read();
    let peer = match runtime.block_on(run(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = Report { machine, peer };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        print!("{}", report.text());
    }
    if report.peer.error_count > 0 {
        eprintln!("error: some publishes were not acknowledged (see the errors above)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

async fn run(args: &Args) -> Result<RunReport, SetupError> {
    let tally = match args.broker {
        Broker::Rabbitmq => run_rabbitmq(args).await?,
        Broker::Nats => run_nats(args).await?,
    };
    Ok(RunReport::new(
        args.broker.name(),
        args.durability(),
        args.concurrency,
        args.body_bytes,
        args.duration.as_secs_f64(),
        tally,
    ))
}

async fn run_rabbitmq(args: &Args) -> Result<Tally, SetupError> {
    reach::check("rabbitmq", &reach::authority(&args.amqp_url, 5672)).await?;
    let rabbit = rabbit::Rabbit::setup(&args.amqp_url).await?;
    let mut publishers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        match rabbit.publisher(&args.amqp_url).await {
            Ok(p) => publishers.push(p),
            Err(e) => {
                let _ = rabbit.teardown().await;
                return Err(e);
            }
        }
    }
    let (publishers, tally) = load(publishers, args).await;
    for p in publishers {
        p.close().await;
    }
    rabbit.teardown().await?;
    Ok(tally)
}

async fn run_nats(args: &Args) -> Result<Tally, SetupError> {
    reach::check("nats", &reach::authority(&args.nats_url, 4222)).await?;
    let nats = nats::Nats::setup(&args.nats_url).await?;
    let mut publishers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        match nats.publisher(&args.nats_url).await {
            Ok(p) => publishers.push(p),
            Err(e) => {
                let _ = nats.teardown().await;
                return Err(e);
            }
        }
    }
    let (publishers, tally) = load(publishers, args).await;
    drop(publishers);
    nats.teardown().await?;
    Ok(tally)
}

/// Runs every publisher for the warm-up and the measured interval; returns
/// them (to be closed) and their merged tally.
async fn load<P: Publish + Send + 'static>(publishers: Vec<P>, args: &Args) -> (Vec<P>, Tally) {
    let clock = Clock::starting_now(args.warmup, args.duration);
    let tasks: Vec<_> = publishers
        .into_iter()
        .map(|p| tokio::spawn(load::drive(p, body(args.body_bytes), clock)))
        .collect();
    let mut total = Tally::default();
    let mut back = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok((p, tally)) => {
                back.push(p);
                total.merge(tally);
            }
            // A publisher that panicked: its publishes are lost, say so.
            Err(_) => *total.errors.entry("publisher_failed".into()).or_default() += 1,
        }
    }
    (back, total)
}

/// A body of `n` printable bytes (its content does not matter to either
/// broker; `brdo bench` sends text of the same size).
fn body(n: usize) -> Vec<u8> {
    b"0123456789abcdef"
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}
