//! The command line: the same load flags as `brdo bench`, so that one
//! script can run both with the same figures and compare like with like.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Which broker carries the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Broker {
    /// RabbitMQ: a durable quorum queue, persistent messages (delivery
    /// mode 2), publisher confirms, plain AMQP 0-9-1 over TCP.
    Rabbitmq,
    /// NATS JetStream: a stream with file storage; each publish waits for
    /// its PubAck.
    Nats,
}

impl Broker {
    /// The lower-case name, as on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rabbitmq => "rabbitmq",
            Self::Nats => "nats",
        }
    }
}

/// Flags of `peer-bench`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "peer-bench",
    about = "Durable publishes with an acknowledgement, on RabbitMQ or NATS JetStream, \
             measured like `brdo bench`"
)]
pub struct Args {
    /// The broker.
    #[arg(long, value_enum)]
    pub broker: Broker,
    /// Publishers, each with its own connection, each waiting for the
    /// acknowledgement of its message before it publishes the next.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// The measured interval (`10`, `10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load before measuring (`2`, `2s`, `0`).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Message body size, bytes.
    #[arg(long, default_value_t = 1024)]
    pub body_bytes: usize,
    /// RabbitMQ's address (guest/guest on the default virtual host).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// The NATS server with JetStream.
    #[arg(long, default_value = "127.0.0.1:4222")]
    pub nats_url: String,
    /// Say that the NATS server fsyncs every write before its PubAck
    /// (`jetstream { sync_interval: always }`, nats-server 2.10 or later):
    /// a client cannot ask for it per stream, so this only labels the run
    /// for the report; without it the run is labelled with JetStream's
    /// default (acknowledged before the fsync, which comes every 2 min).
    #[arg(long)]
    pub nats_sync: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// A flag whose value cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{flag}: {message}")]
pub struct UsageError {
    /// The flag, as typed.
    pub flag: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// The most publishers: each holds a connection to the broker.
pub const MAX_CONCURRENCY: usize = 512;

/// The largest body: RabbitMQ and NATS both take 1 MiB by default; the
/// gateway's benchmark stops at 512 KiB.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

impl Args {
    /// Checks every value; the error names the flag.
    pub fn validate(&self) -> Result<(), UsageError> {
        let usage = |flag, message: String| Err(UsageError { flag, message });
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return usage(
                "--concurrency",
                format!("must be 1 to {MAX_CONCURRENCY}, got {}", self.concurrency),
            );
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(24 * 3600) {
            return usage(
                "--duration",
                "must be longer than zero, at most 24 h".into(),
            );
        }
        if self.warmup > Duration::from_secs(3600) {
            return usage("--warmup", "at most 1 h".into());
        }
        if self.body_bytes == 0 || self.body_bytes > MAX_BODY_BYTES {
            return usage("--body-bytes", format!("must be 1 to {MAX_BODY_BYTES}"));
        }
        if self.nats_sync && self.broker != Broker::Nats {
            return usage("--nats-sync", "only with --broker nats".into());
        }
        Ok(())
    }

    /// What "acknowledged" means for this run, for the report.
    pub fn durability(&self) -> &'static str {
        match (self.broker, self.nats_sync) {
            (Broker::Rabbitmq, _) => {
                "quorum queue, persistent, publisher confirm (after the Raft log's fsync)"
            }
            (Broker::Nats, false) => {
                "JetStream file storage, PubAck before fsync (the server syncs every 2 min)"
            }
            (Broker::Nats, true) => "JetStream file storage, server set to sync_interval: always",
        }
    }
}

/// Parses `10`, `10s`, `500ms`, `1.5m` (a bare number is seconds), like
/// `brdo bench`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("peer-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_mirror_brdo_bench() {
        let a = parse(&["--broker", "rabbitmq"]).expect("parse");
        a.validate().expect("valid");
        assert_eq!(a.broker, Broker::Rabbitmq);
        assert_eq!(a.concurrency, 16);
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.warmup, Duration::from_secs(2));
        assert_eq!(a.body_bytes, 1024);
        assert!(!a.json && !a.nats_sync);
    }

    #[test]
    fn every_flag_is_read() {
        let a = parse(&[
            "--broker",
            "nats",
            "--concurrency",
            "4",
            "--duration",
            "3",
            "--warmup",
            "500ms",
            "--body-bytes",
            "64",
            "--nats-url",
            "127.0.0.1:4333",
            "--nats-sync",
            "--json",
        ])
        .expect("parse");
        a.validate().expect("valid");
        assert_eq!(a.broker, Broker::Nats);
        assert_eq!(a.concurrency, 4);
        assert_eq!(a.duration, Duration::from_secs(3));
        assert_eq!(a.warmup, Duration::from_millis(500));
        assert_eq!(a.body_bytes, 64);
        assert_eq!(a.nats_url, "127.0.0.1:4333");
        assert!(a.nats_sync && a.json);
        assert!(a.durability().contains("always"));
    }

    #[test]
    fn values_that_cannot_run_name_their_flag() {
        assert!(parse(&[]).is_err(), "--broker is required");
        assert!(parse(&["--broker", "kafka"]).is_err());
        assert!(parse(&["--broker", "nats", "--duration", "soon"]).is_err());
        let flag = |args: &[&str]| parse(args).expect("parse").validate().map_err(|e| e.flag);
        assert_eq!(
            flag(&["--broker", "nats", "--concurrency", "0"]),
            Err("--concurrency")
        );
        assert_eq!(
            flag(&["--broker", "nats", "--concurrency", "513"]),
            Err("--concurrency")
        );
        assert_eq!(
            flag(&["--broker", "nats", "--duration", "0"]),
            Err("--duration")
        );
        assert_eq!(
            flag(&["--broker", "nats", "--body-bytes", "0"]),
            Err("--body-bytes")
        );
        assert_eq!(
            flag(&["--broker", "rabbitmq", "--nats-sync"]),
            Err("--nats-sync")
        );
    }

    #[test]
    fn durations_read_like_brdo_bench() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("").is_err());
    }
}
