//! `brdo pki init | issue | revoke | crl refresh | list`.

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args, Subcommand};
use time::OffsetDateTime;

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, fail};
use brdo::audit::record::format_at;
use brdo::pki::{self, PkiError, RevocationReason, Subject};

/// PKI commands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a CA, an empty CRL, the gateway's certificate, the audit
    /// signing key, and an operator and a gateway-DPO certificate.
    Init {
        /// The PKI directory.
        #[arg(long)]
        dir: PathBuf,
        /// A host name or IP address for the gateway certificate (repeat;
        /// default localhost and 127.0.0.1).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// This gateway's id among gateways (SPEC §11): gateway.crt then
        /// also names urn:brdo:gateway:ID and may authenticate to peers.
        #[arg(long = "gateway-id")]
        gateway_id: Option<String>,
    },
    /// Issue a client certificate as PEM and PKCS#12.
    Issue(IssueArgs),
    /// Revoke a certificate by serial (updates ca.crl).
    Revoke {
        /// The PKI directory.
        #[arg(long)]
        dir: PathBuf,
        /// The serial in hex, as `pki list` or `pki issue` print it.
        #[arg(long)]
        serial: String,
        /// RFC 5280 reason: unspecified, key-compromise, ca-compromise,
        /// affiliation-changed, superseded, cessation-of-operation,
        /// certificate-hold, privilege-withdrawn.
        #[arg(long, default_value = "unspecified")]
        reason: String,
        /// Also revoke a serial that no certificate file in the directory
        /// matches (its file is gone); recorded in pki.log.
        #[arg(long)]
        force: bool,
    },
    /// CRL maintenance.
    #[command(subcommand)]
    Crl(CrlCommand),
    /// List issued certificates with identity, serial, expiry and status.
    List {
        /// The PKI directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Create the envelope (label-binding) key pair in a PKI directory made
    /// before label binding; an existing key is kept.
    EnvelopeKey {
        /// The PKI directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// `pki crl` commands.
#[derive(Debug, Subcommand)]
pub enum CrlCommand {
    /// Re-sign ca.crl with the same entries, a higher CRL number and a new
    /// nextUpdate (365 days on). The gateway refuses an expired CRL, so run
    /// this before nextUpdate even when nobody was revoked.
    Refresh {
        /// The PKI directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Arguments of `pki issue`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("who").required(true).args(["partner", "dpo", "operator", "gateway"])))]
pub struct IssueArgs {
    /// The PKI directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// A partner system, e.g. AL-CTD.
    #[arg(long)]
    pub partner: Option<String>,
    /// A data-protection officer: a partner id, or `gateway`.
    #[arg(long)]
    pub dpo: Option<String>,
    /// An operator name, e.g. admin.
    #[arg(long)]
    pub operator: Option<String>,
    /// A new server certificate for the gateway itself (rotation): replaces
    /// gateway.crt and gateway.key; a running gateway picks them up.
    #[arg(long)]
    pub gateway: bool,
    /// With --gateway: a host name or IP address (repeat; default localhost
    /// and 127.0.0.1).
    #[arg(long = "host", requires = "gateway")]
    pub hosts: Vec<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Password of the .p12 file (default: a random one, printed once).
    #[arg(long, env = "BRDO_P12_PASSWORD", hide_env_values = true)]
    pub p12_password: Option<String>,
}

/// Runs a PKI command.
pub fn run(cmd: PkiCommand) -> u8 {
    let now = OffsetDateTime::now_utc();
    match cmd {
        PkiCommand::Init {
            dir,
            hosts,
            gateway_id,
        } => init(&dir, &hosts, gateway_id.as_deref(), now),
        PkiCommand::Issue(args) => issue(args, now),
        PkiCommand::EnvelopeKey { dir } => envelope_key(&dir),
        PkiCommand::Revoke {
            dir,
            serial,
            reason,
            force,
        } => revoke(&dir, &serial, &reason, force, now),
        PkiCommand::Crl(CrlCommand::Refresh { dir }) => refresh_crl(&dir, now),
        PkiCommand::List { dir } => list(&dir, now),
    }
}

fn init(dir: &Path, hosts: &[String], gateway_id: Option<&str>, now: OffsetDateTime) -> u8 {
    match pki::init_gateway(dir, hosts, gateway_id, now) {
        Ok(report) => {
            println!("initialised PKI in {}", report.dir.display());
            for p in &report.written {
                println!("  wrote {}", p.display());
            }
            println!("CA serial {}", report.ca_serial_hex);
            println!("gateway certificate serial {}", report.gateway_serial_hex);
            for c in &report.clients {
                println!(
                    "{} certificate serial {} (PKCS#12 password: {})",
                    c.subject, c.issued.serial_hex, c.p12_password
                );
            }
            EXIT_OK
        }
        Err(e) => fail(code_of(&e), e),
    }
}

fn envelope_key(dir: &Path) -> u8 {
    match pki::ensure_envelope_key(dir) {
        Ok(true) => {
            println!("wrote {}", dir.join(pki::ENVELOPE_KEY_FILE).display());
            println!("wrote {}", dir.join(pki::ENVELOPE_PUB_FILE).display());
            EXIT_OK
        }
        Ok(false) => {
            println!(
                "{} exists; kept (recipients verify bindings with its public half)",
                dir.join(pki::ENVELOPE_KEY_FILE).display()
            );
            EXIT_OK
        }
        Err(e) => fail(code_of(&e), e),
    }
}

fn revoke(dir: &Path, serial: &str, reason: &str, force: bool, now: OffsetDateTime) -> u8 {
    let reason: RevocationReason = match reason.parse() {
        Ok(r) => r,
        Err(e) => return fail(EXIT_CONFIG, format!("--reason: {e}")),
    };
    match pki::revoke_serial(dir, serial, reason, force, now) {
        Ok(done) => {
            if done.forced {
                eprintln!(
                    "warning: serial {} matches no certificate file in {}; revoked because of --force (recorded in {})",
                    done.serial,
                    dir.display(),
                    dir.join(pki::LOG_FILE).display()
                );
            }
            println!(
                "revoked {} ({reason}); {} updated (CRL number {})",
                done.serial,
                dir.join(pki::CA_CRL_FILE).display(),
                done.crl_number
            );
            EXIT_OK
        }
        Err(e) => fail(code_of(&e), e),
    }
}

fn refresh_crl(dir: &Path, now: OffsetDateTime) -> u8 {
    match pki::refresh_crl(dir, now) {
        Ok(done) => {
            println!(
                "re-signed {}: CRL number {}, {} revoked, next update {}",
                dir.join(pki::CA_CRL_FILE).display(),
                done.crl_number,
                done.revoked,
                format_at(done.next_update)
            );
            EXIT_OK
        }
        Err(e) => fail(code_of(&e), e),
    }
}

fn list(dir: &Path, now: OffsetDateTime) -> u8 {
    match pki::list(dir, now) {
        Ok(certs) => {
            println!(
                "{:<28} {:<36} {:<32} {:<20} status",
                "file", "identity", "serial", "not after"
            );
            for c in certs {
                println!(
                    "{:<28} {:<36} {:<32} {:<20} {}",
                    c.file,
                    c.identity,
                    c.serial_hex,
                    format_at(c.not_after),
                    c.status
                );
            }
            EXIT_OK
        }
        Err(e) => fail(code_of(&e), e),
    }
}

fn issue(args: IssueArgs, now: OffsetDateTime) -> u8 {
    if args.gateway {
        return match pki::renew_gateway(&args.dir, &args.hosts, args.days.max(1), now) {
            Ok(issued) => {
                println!("{}", issued.serial_hex);
                eprintln!(
                    "issued a new gateway certificate: {}, {} (valid until {})",
                    issued.cert_path.display(),
                    issued.key_path.display(),
                    format_at(issued.not_after)
                );
                EXIT_OK
            }
            Err(e) => fail(code_of(&e), e),
        };
    }
    let subject = match (args.partner, args.dpo, args.operator) {
        (Some(p), None, None) => Subject::Partner(p),
        (None, Some(d), None) => Subject::Dpo(d),
        (None, None, Some(o)) => Subject::Operator(o),
        _ => {
            return fail(
                EXIT_CONFIG,
                "give exactly one of --partner, --dpo, --operator",
            );
        }
    };
    let (password, generated) = match args.p12_password {
        Some(p) => (p, false),
        None => match pki::random_password() {
            Ok(p) => (p, true),
            Err(e) => return fail(EXIT_RUNTIME, e),
        },
    };
    match pki::issue(&args.dir, &subject, args.days, &password, now) {
        Ok(issued) => {
            println!("{}", issued.serial_hex);
            eprintln!(
                "issued {subject}: {}, {}, {}",
                issued.cert_path.display(),
                issued.key_path.display(),
                issued.p12_path.display()
            );
            if generated {
                eprintln!("PKCS#12 password: {password}");
            }
            EXIT_OK
        }
        Err(e) => fail(code_of(&e), e),
    }
}

/// Input problems exit 2; I/O and crypto failures exit 1.
fn code_of(e: &PkiError) -> u8 {
    match e {
        PkiError::Io { .. } | PkiError::Crypto { .. } => EXIT_RUNTIME,
        _ => EXIT_CONFIG,
    }
}
