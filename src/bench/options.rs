//! What a benchmark run does, checked before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::BenchError;

/// The operation each worker repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// `POST /v1/messages` with a 1 KiB body to `--recipients` partners on a
    /// kept connection: the durable, audited write path.
    Submit,
    /// The recipient's side: long-poll the inbox, read the message, ack it,
    /// while as many senders submit alongside so there is always mail.
    Receive,
    /// A new TLS connection (full handshake, no resumption) per request.
    Handshake,
    /// A blend per worker, in a cycle of ten: four submits, two reads and
    /// two acks of those messages by the recipient, one status check, one
    /// inbox listing.
    Mixed,
    /// Two gateways of the benchmark's own, A and B, peers (SPEC §11):
    /// workers submit on A to a partner behind B, and a long-polling reader
    /// on B times each message from submit to its arrival in the inbox;
    /// the same load with a recipient local to A is the baseline.
    Relay,
}

impl Scenario {
    /// The lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Receive => "receive",
            Self::Handshake => "handshake",
            Self::Mixed => "mixed",
            Self::Relay => "relay",
        }
    }
}

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Each worker sends its next request when the previous one is answered.
    Closed,
    /// Requests are due at a fixed offered rate (per second, all workers
    /// together); latency counts from when a request was due, so a stalled
    /// server is not hidden by the generator waiting for it (coordinated
    /// omission).
    Open {
        /// Offered requests per second.
        rate: f64,
    },
}

/// The load itself.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The operation.
    pub scenario: Scenario,
    /// Workers, each with its own connection(s).
    pub concurrency: usize,
    /// The measured interval.
    pub duration: Duration,
    /// Load before measuring (connections, caches, the SQLite WAL warm up).
    pub warmup: Duration,
    /// Closed or open loop.
    pub mode: Mode,
    /// Recipients per submitted message.
    pub recipients: usize,
    /// Size of each message body, bytes.
    pub body_bytes: usize,
    /// Draw a progress line on stderr (only when it is a terminal).
    pub progress: bool,
}

/// Where the gateway is.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// Start a gateway in a temporary directory (fresh PKI, SQLite) as a
    /// child process, so its CPU and memory are its own.
    Own {
        /// Its database instead of the SQLite file in the temporary
        /// directory (e.g. an empty PostgreSQL database), so the durable
        /// write path can be measured on either store the gateway supports.
        database: Option<String>,
    },
    /// A running gateway.
    Running {
        /// Its mTLS address.
        addr: SocketAddr,
        /// The PKI directory holding `ca.crt`, the partner certificates
        /// and (for `--baseline`) `gateway.crt`/`gateway.key`/`ca.crl`.
        pki: PathBuf,
        /// Its process, for CPU and memory figures.
        server_pid: Option<u32>,
    },
}

/// The servers the gateway is compared with, run first with the same load.
///
/// Each is the gateway's own TLS configuration and accept loop
/// ([`brdo::tls::serve`]) in the generator's process; they differ only in
/// what the handler does before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Baselines {
    /// The echo: answers 202 and does nothing. Tells how much of the
    /// machine the generator, TLS and HTTP leave.
    pub echo: bool,
    /// The durable echo: stores the body as one row through the store's
    /// own writer (group commit, `synchronous = FULL`) and answers 201.
    /// Tells what any durable answer costs here, so the gateway's audit,
    /// policy and content work can be told apart from durability itself.
    pub durable: bool,
}

impl Baselines {
    /// Whether any baseline runs.
    pub fn any(self) -> bool {
        self.echo || self.durable
    }
}

/// Parses `--baseline`'s value: `echo` (also what a bare `--baseline`
/// means), `durable`, or both separated by a comma.
pub fn parse_baselines(s: &str) -> Result<Baselines, String> {
    let mut b = Baselines::default();
    for part in s.split(',').map(str::trim) {
        match part {
            "echo" => b.echo = true,
            "durable" => b.durable = true,
            other => {
                return Err(format!(
                    "{other:?} is not a baseline: echo, durable or echo,durable"
                ));
            }
        }
    }
    Ok(b)
}

/// A whole benchmark run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The load.
    pub load: LoadSpec,
    /// The gateway.
    pub target: TargetSpec,
    /// The servers to run the same load against first.
    pub baseline: Baselines,
    /// The sending partner (`partner-<ID>.crt` in the PKI directory).
    pub sender: String,
    /// Partners the messages go to; the first `recipients` are used and the
    /// first one is the receiver in `receive` and `mixed`.
    pub to: Vec<String>,
}

/// The most workers: each holds one or two TLS connections, and the
/// gateway's default connection limit is 1024.
pub const MAX_CONCURRENCY: usize = 512;

fn usage(flag: &'static str, message: impl Into<String>) -> BenchError {
    BenchError::Usage {
        flag,
        message: message.into(),
    }
}

fn valid_partner_id(id: &str) -> bool {
    brdo::domain::PartnerId::parse(id).is_some()
}

impl BenchOptions {
    /// Checks every value; the error names the flag.
    pub fn validate(&self) -> Result<(), BenchError> {
        let l = &self.load;
        if l.concurrency == 0 || l.concurrency > MAX_CONCURRENCY {
            return Err(usage(
                "--concurrency",
                format!("must be 1 to {MAX_CONCURRENCY}, got {}", l.concurrency),
            ));
        }
        if l.duration.is_zero() {
            return Err(usage("--duration", "must be longer than zero"));
        }
        if l.duration > Duration::from_secs(24 * 3600) || l.warmup > Duration::from_secs(3600) {
            return Err(usage(
                "--duration",
                "at most 24 h of measurement and 1 h of warm-up",
            ));
        }
        if let Mode::Open { rate } = l.mode
            && !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0)
        {
            return Err(usage(
                "--rate",
                format!("must be a number of requests per second from 0 to 1000000, got {rate}"),
            ));
        }
        if l.scenario == Scenario::Relay {
            match &self.target {
                TargetSpec::Own { database: None } => {}
                TargetSpec::Own { database: Some(_) } => {
                    return Err(usage(
                        "--database",
                        "the relay scenario's two gateways use SQLite files of their own",
                    ));
                }
                TargetSpec::Running { .. } => {
                    return Err(usage(
                        "--target",
                        "the relay scenario runs two gateways of its own",
                    ));
                }
            }
            if self.baseline.any() {
                return Err(usage(
                    "--baseline",
                    "the relay scenario's baseline is the single gateway, always run",
                ));
            }
        }
        if l.body_bytes == 0 || l.body_bytes > 512 * 1024 {
            return Err(usage("--body-bytes", "must be 1 to 524288"));
        }
        if !valid_partner_id(&self.sender) {
            return Err(usage(
                "--as",
                format!("{:?} is not a partner id", self.sender),
            ));
        }
        if let Some(bad) = self.to.iter().find(|p| !valid_partner_id(p)) {
            return Err(usage("--to", format!("{bad:?} is not a partner id")));
        }
        if self.to.contains(&self.sender) {
            return Err(usage("--to", "the sender cannot be a recipient"));
        }
        if l.recipients == 0 || l.recipients > self.to.len() {
            return Err(usage(
                "--recipients",
                format!(
                    "must be 1 to {} (the number of partners in --to), got {}",
                    self.to.len(),
                    l.recipients
                ),
            ));
        }
        Ok(())
    }

    /// The sender and the recipients used, the first recipient receiving.
    pub fn scenario_parties(&self) -> Parties {
        Parties {
            sender: self.sender.clone(),
            recipients: self.to.iter().take(self.load.recipients).cloned().collect(),
        }
    }
}

/// Who sends and who receives.
#[derive(Debug, Clone)]
pub struct Parties {
    /// The sending partner.
    pub sender: String,
    /// The recipients; the first one receives in `receive` and `mixed`.
    pub recipients: Vec<String>,
}

/// Parses `2s`, `500ms`, `1m`, or a bare number of seconds.
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

    fn opts() -> BenchOptions {
        BenchOptions {
            load: LoadSpec {
                scenario: Scenario::Submit,
                concurrency: 8,
                duration: Duration::from_secs(2),
                warmup: Duration::ZERO,
                mode: Mode::Closed,
                recipients: 1,
                body_bytes: 1024,
                progress: false,
            },
            target: TargetSpec::Own { database: None },
            baseline: Baselines::default(),
            sender: "AL-CTD".into(),
            to: vec!["RS-MOI".into(), "EU-ECTC".into()],
        }
    }

    fn flag_of(o: &BenchOptions) -> &'static str {
        match o.validate() {
            Err(BenchError::Usage { flag, .. }) => flag,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        opts().validate().expect("valid");
        assert_eq!(opts().scenario_parties().recipients, vec!["RS-MOI"]);
    }

    #[test]
    fn each_bad_value_names_its_flag() {
        let mut o = opts();
        o.load.concurrency = 0;
        assert_eq!(flag_of(&o), "--concurrency");
        o.load.concurrency = MAX_CONCURRENCY + 1;
        assert_eq!(flag_of(&o), "--concurrency");

        let mut o = opts();
        o.load.duration = Duration::ZERO;
        assert_eq!(flag_of(&o), "--duration");

        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut o = opts();
            o.load.mode = Mode::Open { rate };
            assert_eq!(flag_of(&o), "--rate");
        }

        let mut o = opts();
        o.load.recipients = 3;
        assert_eq!(flag_of(&o), "--recipients");
        o.load.recipients = 0;
        assert_eq!(flag_of(&o), "--recipients");

        let mut o = opts();
        o.sender = "al-ctd".into();
        assert_eq!(flag_of(&o), "--as");

        let mut o = opts();
        o.to.push("AL-CTD".into());
        assert_eq!(flag_of(&o), "--to");
        let mut o = opts();
        o.to.push("../x".into());
        assert_eq!(flag_of(&o), "--to");

        let mut o = opts();
        o.load.body_bytes = 0;
        assert_eq!(flag_of(&o), "--body-bytes");

        let mut o = opts();
        o.load.scenario = Scenario::Relay;
        o.validate().expect("relay on its own gateways");
        o.target = TargetSpec::Own {
            database: Some("postgres://localhost/x".into()),
        };
        assert_eq!(flag_of(&o), "--database");
        o.target = TargetSpec::Own { database: None };
        o.baseline.echo = true;
        assert_eq!(flag_of(&o), "--baseline");
        o.baseline = Baselines {
            echo: false,
            durable: true,
        };
        assert_eq!(flag_of(&o), "--baseline");
        o.baseline = Baselines::default();
        o.target = TargetSpec::Running {
            addr: "127.0.0.1:1".parse().expect("addr"),
            pki: "pki".into(),
            server_pid: None,
        };
        assert_eq!(flag_of(&o), "--target");
    }

    #[test]
    fn baselines() {
        let only = |echo, durable| Ok(Baselines { echo, durable });
        assert_eq!(parse_baselines("echo"), only(true, false));
        assert_eq!(parse_baselines("durable"), only(false, true));
        assert_eq!(parse_baselines("echo,durable"), only(true, true));
        assert_eq!(parse_baselines("durable, echo"), only(true, true));
        assert!(parse_baselines("").is_err());
        assert!(parse_baselines("fsync").is_err());
        assert!(parse_baselines("echo,").is_err());
        assert!(!Baselines::default().any());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("").is_err());
    }
}
