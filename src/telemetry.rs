//! Logs, traces and metrics for operators.
//!
//! Logs (on stderr): JSON lines when stdout or stderr is not a terminal
//! (collectors), readable text with level and target when both are
//! (people), or the format forced with `--log-format json|text`; `RUST_LOG`
//! filters, default `info`. A command can quiet the console for a while and
//! keep every line in a JSON log file instead (the demo does, during its
//! script). Traces and
//! metrics: exported over OTLP (gRPC) when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set — one span per request carrying its request id, role, caller, route,
//! status and outcome, and the gateway's counters. An `https://` endpoint is
//! reached over TLS (rustls with ring, the gateway's only TLS stack),
//! trusting only `OTEL_EXPORTER_OTLP_CERTIFICATE` when set and presenting
//! `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`/`_KEY` to a collector that
//! requires mTLS; a plaintext `http://` endpoint is warned about. Prometheus
//! text is served separately (`health`).
//!
//! Nothing recorded anywhere carries message subjects, bodies, attachment
//! content, keys or passwords: spans and logs carry ids, codes and partner
//! names only.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::metrics::Metrics;

/// The environment variable that turns OTLP export on.
pub(crate) const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The CA certificate (PEM) the collector's certificate must chain to; the
/// OpenTelemetry specification's name for it.
pub(crate) const OTLP_CA_VAR: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// The client certificate (PEM) the gateway presents to the collector.
pub(crate) const OTLP_CLIENT_CERT_VAR: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
/// Its private key (PEM, mode 0600).
pub(crate) const OTLP_CLIENT_KEY_VAR: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";

/// Where spans and metrics go, and how the connection is protected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpTarget {
    /// The collector, `https://host:4317` (TLS) or `http://…` (plaintext).
    pub endpoint: String,
    /// The CA file the collector's certificate must chain to.
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate and key files, for a collector that requires mTLS.
    pub client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Why the OTLP exporter cannot be set up; export then stays off.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// A certificate or key file cannot be used.
    #[error("{var} {path}: {message}")]
    File {
        /// The variable naming it.
        var: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// TLS settings without an `https://` endpoint would be ignored.
    #[error(
        "{OTLP_ENDPOINT_VAR} must start with https:// when {OTLP_CA_VAR} or a client certificate is set"
    )]
    PlaintextWithTls,
    /// Only one of client certificate and key is set.
    #[error("{OTLP_CLIENT_CERT_VAR} and {OTLP_CLIENT_KEY_VAR} must be set together")]
    HalfClientIdentity,
    /// The exporter refused the configuration.
    #[error("{0}")]
    Exporter(String),
}

impl OtlpTarget {
    /// Reads the target from the standard OpenTelemetry variables; `None`
    /// when [`OTLP_ENDPOINT_VAR`] is unset.
    pub(crate) fn from_env() -> Result<Option<Self>, OtlpError> {
        let Some(endpoint) = std::env::var_os(OTLP_ENDPOINT_VAR) else {
            return Ok(None);
        };
        let path = |v: &str| std::env::var_os(v).map(std::path::PathBuf::from);
        let client = match (path(OTLP_CLIENT_CERT_VAR), path(OTLP_CLIENT_KEY_VAR)) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(OtlpError::HalfClientIdentity),
        };
        Ok(Some(Self {
            endpoint: endpoint.to_string_lossy().into_owned(),
            ca: path(OTLP_CA_VAR),
            client,
        }))
    }

    /// Whether the endpoint is TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.endpoint
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }

    /// The rustls-based (ring) TLS settings for the collector connection:
    /// its certificate must chain to `ca` (no system roots are trusted),
    /// and `client`, when set, is presented.
    pub fn tls_config(
        &self,
    ) -> Result<Option<opentelemetry_otlp::tonic_types::transport::ClientTlsConfig>, OtlpError>
    {
        use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
        if !self.is_tls() {
            if self.ca.is_some() || self.client.is_some() {
                return Err(OtlpError::PlaintextWithTls);
            }
            return Ok(None);
        }
        let read = |var: &'static str, p: &std::path::Path| {
            std::fs::read(p).map_err(|e| OtlpError::File {
                var,
                path: p.to_owned(),
                message: e.to_string(),
            })
        };
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(OTLP_CA_VAR, ca)?));
        }
        if let Some((cert, key)) = &self.client {
            crate::crypto::check_owner_only(key).map_err(|message| OtlpError::File {
                var: OTLP_CLIENT_KEY_VAR,
                path: key.clone(),
                message,
            })?;
            tls = tls.identity(Identity::from_pem(
                read(OTLP_CLIENT_CERT_VAR, cert)?,
                read(OTLP_CLIENT_KEY_VAR, key)?,
            ));
        }
        Ok(Some(tls))
    }

    /// The span exporter for this target (OTLP over gRPC).
    pub fn span_exporter(&self) -> Result<opentelemetry_otlp::SpanExporter, OtlpError> {
        use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
        let mut b = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(self.endpoint.clone());
        if let Some(tls) = self.tls_config()? {
            b = b.with_tls_config(tls);
        }
        b.build()
            .map_err(|e| OtlpError::Exporter(format!("OTLP trace export: {e}")))
    }

    /// The metric exporter for this target.
    pub(crate) fn metric_exporter(&self) -> Result<opentelemetry_otlp::MetricExporter, OtlpError> {
        use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
        let mut b = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(self.endpoint.clone());
        if let Some(tls) = self.tls_config()? {
            b = b.with_tls_config(tls);
        }
        b.build()
            .map_err(|e| OtlpError::Exporter(format!("OTLP metric export: {e}")))
    }
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("brdo")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A tracer provider exporting with `exporter` (OTLP in production, an
/// in-memory exporter in tests).
pub fn tracer_provider<E: SpanExporter + 'static>(exporter: E, batch: bool) -> SdkTracerProvider {
    let builder = SdkTracerProvider::builder().with_resource(resource());
    if batch {
        builder.with_batch_exporter(exporter).build()
    } else {
        builder.with_simple_exporter(exporter).build()
    }
}

/// The tracing layer turning `tracing` spans into OpenTelemetry spans.
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("brdo"))
}

/// Exports the gateway's counters through `provider`: messages accepted,
/// denials by code, requests by route and status.
pub(crate) fn observe_metrics(provider: &SdkMeterProvider, metrics: Arc<Metrics>) {
    let meter = provider.meter("brdo");
    let m = metrics.clone();
    let _accepted = meter
        .u64_observable_counter("brdo.messages.accepted")
        .with_description("Messages and forwards accepted.")
        .with_callback(move |o| o.observe(m.accepted_total(), &[]))
        .build();
    let m = metrics.clone();
    let _denied = meter
        .u64_observable_counter("brdo.messages.denied")
        .with_description("Messages refused by the policy, by violation code.")
        .with_callback(move |o| {
            for (code, n) in m.denied_totals() {
                o.observe(n, &[KeyValue::new("code", code)]);
            }
        })
        .build();
    let _requests = meter
        .u64_observable_counter("brdo.requests")
        .with_description("API requests by route and status.")
        .with_callback(move |o| {
            for (route, status, n) in metrics.request_totals() {
                o.observe(
                    n,
                    &[
                        KeyValue::new("route", route),
                        KeyValue::new("status", i64::from(status)),
                    ],
                );
            }
        })
        .build();
}

/// Keeps the exporters alive; flushes them on drop.
#[derive(Default)]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    quiet: Arc<AtomicBool>,
    json_console: bool,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("otlp", &self.tracer.is_some())
            .finish()
    }
}

impl Telemetry {
    /// Starts exporting the gateway's counters, when OTLP is on.
    pub fn observe(&self, metrics: Arc<Metrics>) {
        if let Some(meter) = &self.meter {
            observe_metrics(meter, metrics);
        }
    }

    /// Makes the console show warnings and errors only until the guard is
    /// dropped, so a person can read what a command prints on stdout (the
    /// demo's script) without the gateway's per-request lines in between.
    /// The log file given to [`init_with`], if any, still gets everything.
    pub fn quiet_console(&self) -> QuietConsole {
        self.quiet.store(true, Ordering::Relaxed);
        QuietConsole(self.quiet.clone())
    }

    /// A subscriber like the installed one (same filter, console format and
    /// quiet switch, same trace export) whose file is `file`: for a process
    /// that runs several gateways (`brdo demo --federation`), each on
    /// threads of its own with this as their default, so each gateway's
    /// lines land in its own log file. Not installed: the caller sets it as
    /// the default where it wants it.
    pub fn dispatch_with_file(&self, file: std::fs::File) -> tracing::Dispatch {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let quiet = ConsoleQuiet(self.quiet.clone());
        let otel = self.tracer.as_ref().map(otel_layer);
        tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(filter)
                .with(console_layer(self.json_console, quiet))
                .with(file_layer(file))
                .with(otel),
        )
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Readable text when stdout and stderr are both a terminal (a person at
    /// a console), JSON lines as soon as either is redirected (a service
    /// manager or a collector).
    #[default]
    Auto,
    /// Readable text with level and target, whatever stderr is.
    Text,
    /// One JSON object a line, whatever stderr is.
    Json,
}

impl LogFormat {
    /// Whether lines are JSON, given whether stdout and stderr are both a
    /// terminal; a forced format wins over what the streams are.
    #[must_use]
    pub fn is_json(self, terminal: bool) -> bool {
        match self {
            Self::Auto => !terminal,
            Self::Text => false,
            Self::Json => true,
        }
    }
}

/// What [`init_with`] installs: the console format and, for a session that
/// wants its whole log kept (the demo), a file.
#[derive(Debug, Default)]
pub struct LogSettings {
    /// The format of the lines on stderr.
    pub format: LogFormat,
    /// A file that receives every log line as JSON, also while the console
    /// is quiet (see [`Telemetry::quiet_console`]).
    pub file: Option<std::fs::File>,
}

/// The switch that makes the console show warnings and errors only; the
/// log file, if any, still receives everything. Applied where each line is
/// written (the writer is asked per event), not as a subscriber filter,
/// whose answers `tracing` caches per call site.
#[derive(Debug, Clone, Default)]
struct ConsoleQuiet(Arc<AtomicBool>);

impl ConsoleQuiet {
    /// Whether a line of this level reaches the console now.
    fn passes(&self, meta: &tracing::Metadata<'_>) -> bool {
        !self.0.load(Ordering::Relaxed) || *meta.level() <= tracing::Level::WARN
    }

    /// Stderr, or nothing for a line the switch holds back.
    fn stderr(
        self,
    ) -> impl for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static {
        use tracing_subscriber::fmt::writer::MakeWriterExt;
        std::io::stderr.with_filter(move |meta: &tracing::Metadata<'_>| self.passes(meta))
    }
}

/// While alive, the console shows warnings and errors only; dropping it
/// brings the configured level back.
#[derive(Debug)]
#[must_use = "the console is quiet only while the guard lives"]
pub struct QuietConsole(Arc<AtomicBool>);

impl Drop for QuietConsole {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Installs logging in the automatic format, and OTLP export when
/// [`OTLP_ENDPOINT_VAR`] is set. Must run inside a Tokio runtime (the
/// exporters are asynchronous). A second call installs nothing.
pub fn init() -> Telemetry {
    init_with(LogSettings::default())
}

/// [`init`] with a chosen console format and an optional log file.
pub fn init_with(settings: LogSettings) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr so command output on stdout stays clean.
    let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let json_console = settings.format.is_json(terminal);
    let quiet = ConsoleQuiet::default();
    let console = console_layer(json_console, quiet.clone());
    let file = settings.file.map(file_layer);
    let mut telemetry = Telemetry {
        tracer: None,
        meter: None,
        quiet: quiet.0.clone(),
        json_console,
    };
    let mut export_error = None;
    let mut plaintext = false;
    match OtlpTarget::from_env() {
        Ok(None) => {}
        Err(e) => export_error = Some(e.to_string()),
        Ok(Some(target)) => {
            plaintext = !target.is_tls();
            match target.span_exporter() {
                Ok(exporter) => telemetry.tracer = Some(tracer_provider(exporter, true)),
                Err(e) => export_error = Some(e.to_string()),
            }
            match target.metric_exporter() {
                Ok(exporter) => {
                    let reader = PeriodicReader::builder(exporter)
                        .with_interval(Duration::from_secs(15))
                        .build();
                    telemetry.meter = Some(
                        SdkMeterProvider::builder()
                            .with_resource(resource())
                            .with_reader(reader)
                            .build(),
                    );
                }
                Err(e) => export_error = Some(e.to_string()),
            }
        }
    }
    let otel = telemetry.tracer.as_ref().map(otel_layer);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(console)
        .with(file)
        .with(otel)
        .try_init();
    if let Some(e) = export_error {
        tracing::warn!(error = %e, "OpenTelemetry export is off");
    } else if telemetry.tracer.is_some() && plaintext {
        tracing::warn!(
            "exporting traces and metrics over OTLP in plaintext (http://); use an https:// endpoint with {OTLP_CA_VAR}"
        );
    } else if telemetry.tracer.is_some() {
        tracing::info!("exporting traces and metrics over OTLP with TLS");
    }
    telemetry
}

/// The console layer: JSON lines or readable text on stderr, its writer
/// under the quiet switch.
fn console_layer<S>(json: bool, quiet: ConsoleQuiet) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            // The current span is enough: requests have one level, and the
            // list repeated it in every line.
            .with_span_list(false)
            .with_writer(quiet.stderr())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_level(true)
            .with_target(true)
            // Colours only for a terminal: `--log-format text` into a file
            // stays plain.
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(quiet.stderr())
            .boxed()
    }
}

/// The layer that writes every line, as JSON, to a kept log file.
fn file_layer<S>(file: std::fs::File) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_span_list(false)
        .with_ansi(false)
        .with_writer(Arc::new(file))
}

#[cfg(test)]
mod log_format_tests {
    use super::LogFormat;

    #[test]
    fn a_forced_format_wins_over_what_the_streams_are() {
        for (format, terminal, json) in [
            (LogFormat::Auto, true, false),
            (LogFormat::Auto, false, true),
            (LogFormat::Text, false, false),
            (LogFormat::Text, true, false),
            (LogFormat::Json, true, true),
            (LogFormat::Json, false, true),
        ] {
            assert_eq!(
                format.is_json(terminal),
                json,
                "{format:?} terminal={terminal}"
            );
        }
    }
}
