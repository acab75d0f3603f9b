//! Request spans over OpenTelemetry, in a test binary of its own.
//!
//! The test collects spans with a thread-local subscriber. In the shared
//! `it` binary other tests' threads register the same callsites at the
//! same time without any subscriber, and tracing's global interest cache
//! can then mark a callsite "never" before this test's subscriber sees it
//! (the test saw 0 spans once in a loaded run). Alone in its process it
//! cannot be disturbed.

#[path = "it/harness.rs"]
#[allow(
    dead_code,
    reason = "the shared harness serves many binaries; this one uses a part"
)]
mod harness;

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "current_thread")]
async fn request_spans_are_exported_with_their_attributes_and_no_content() {
    use opentelemetry_sdk::trace::InMemorySpanExporter;
    use tracing_subscriber::layer::SubscriberExt;

    let exporter = InMemorySpanExporter::default();
    let provider = brdo::telemetry::tracer_provider(exporter.clone(), false);
    let subscriber = tracing_subscriber::registry().with(brdo::telemetry::otel_layer(&provider));
    // The gateway runs on this single-threaded runtime, so the thread's
    // default subscriber sees its spans.
    let _guard = tracing::subscriber::set_default(subscriber);
    let gw = TestGateway::start().await;
    let mut m = message();
    m["subject"] = json!("SPAN-MARKER-subject");
    m["body"] = json!("SPAN-MARKER-body");
    let id = send(&gw, "AL-CTD", &m).await;
    let denied = submit(&gw, "XK-CTD", &message()).await;
    read(&gw, "RS-MOI", &id).await;
    gw.stop().await;
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let requests: Vec<_> = spans.iter().filter(|s| s.name == "request").collect();
    assert!(requests.len() >= 3, "{} request spans", requests.len());
    let attr = |s: &opentelemetry_sdk::trace::SpanData, k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    let denial = requests
        .iter()
        .find(|s| attr(s, "request_id").as_deref() == denied.header("brdo-request-id"))
        .expect("the denied request's span");
    assert_eq!(attr(denial, "role").as_deref(), Some("partner"));
    assert_eq!(attr(denial, "caller").as_deref(), Some("XK-CTD"));
    assert_eq!(attr(denial, "route").as_deref(), Some("/v1/messages"));
    assert_eq!(attr(denial, "status").as_deref(), Some("403"));
    assert_eq!(attr(denial, "outcome").as_deref(), Some("denied"));
    for s in &spans {
        let dump = format!("{s:?}");
        assert!(
            !dump.contains("SPAN-MARKER"),
            "span {} carries content",
            s.name
        );
    }
}
