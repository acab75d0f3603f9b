//! Logs, traces and metrics for operators.
//!
//! Logs (on stderr): JSON lines when stdout or stderr is not a terminal
//! (collectors), readable text when both are (people); `RUST_LOG` filters,
//! default `info`. Traces and
//! metrics: exported over OTLP (gRPC) when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set — one span per request carrying its request id, role, caller, route,
//! status and outcome, and the gateway's counters. Prometheus text is served
//! separately (`health`).
//!
//! Nothing recorded anywhere carries message subjects, bodies, attachment
//! content, keys or passwords: spans and logs carry ids, codes and partner
//! names only.

use std::io::IsTerminal;
use std::sync::Arc;
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
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

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
pub fn observe_metrics(provider: &SdkMeterProvider, metrics: Arc<Metrics>) {
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

/// Installs logging, and OTLP export when [`OTLP_ENDPOINT_VAR`] is set. Must
/// run inside a Tokio runtime (the exporters are asynchronous). A second
/// call installs nothing.
pub fn init() -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr so command output on stdout stays clean. Text only
    // when both streams are a terminal (a person at a console); JSON as soon
    // as either is redirected (a service manager or a collector).
    let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let json = (!terminal).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            // The current span is enough: requests have one level, and the
            // list repeated it in every line.
            .with_span_list(false)
            .with_writer(std::io::stderr)
    });
    let text = terminal.then(|| {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(std::io::stderr)
    });
    let mut telemetry = Telemetry::default();
    let mut export_error = None;
    if std::env::var_os(OTLP_ENDPOINT_VAR).is_some() {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => telemetry.tracer = Some(tracer_provider(exporter, true)),
            Err(e) => export_error = Some(format!("OTLP trace export: {e}")),
        }
        match opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()
        {
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
            Err(e) => export_error = Some(format!("OTLP metric export: {e}")),
        }
    }
    let otel = telemetry.tracer.as_ref().map(otel_layer);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text)
        .with(otel)
        .try_init();
    if let Some(e) = export_error {
        tracing::warn!(error = %e, "OpenTelemetry export is off");
    } else if telemetry.tracer.is_some() {
        tracing::info!("exporting traces and metrics over OTLP");
    }
    telemetry
}
