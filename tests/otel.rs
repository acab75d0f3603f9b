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

/// A TLS listener standing in for an OTLP collector: its certificate is
/// the PKI's `gateway.crt` (SAN localhost), it requires a client
/// certificate of the same CA, and it reports each handshake's outcome
/// (the client certificate's serial, or the error).
async fn tls_collector(
    pki: &std::path::Path,
) -> (
    u16,
    tokio::sync::mpsc::UnboundedReceiver<Result<String, String>>,
) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.join("ca.crt")).expect("ca"))
        .expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.join("gateway.crt"))
            .expect("cert")
            .collect::<Result<_, _>>()
            .expect("cert");
    let key = PrivateKeyDer::from_pem_file(pki.join("gateway.key")).expect("key");
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let outcome = match acceptor.accept(tcp).await {
                Ok(tls) => Ok(tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| brdo::tls::PeerCert::from_der(c).serial)
                    .unwrap_or_default()),
                Err(e) => Err(e.to_string()),
            };
            if tx.send(outcome).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

/// Exports an (empty) batch in the background and returns the collector's
/// first handshake outcome (bounded wait: a hang guard).
async fn first_handshake(
    target: &brdo::telemetry::OtlpTarget,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<String, String>>,
) -> Result<String, String> {
    use opentelemetry_sdk::trace::SpanExporter as _;
    let exporter = target.span_exporter().expect("exporter");
    let export = tokio::spawn(async move {
        let _ = exporter.export(Vec::new()).await;
    });
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("the exporter connected")
        .expect("an outcome");
    export.abort();
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_export_uses_mutual_tls_and_refuses_a_collector_of_another_ca() {
    use brdo::telemetry::OtlpTarget;
    let pki = Pki::create();
    let (port, mut rx) = tls_collector(&pki.dir).await;
    let endpoint = format!("https://localhost:{port}");
    let client = (
        pki.dir.join("operator-admin.crt"),
        pki.dir.join("operator-admin.key"),
    );

    // Trusting the collector's CA and presenting a certificate: the
    // handshake completes and the collector sees who exports.
    let good = OtlpTarget {
        endpoint: endpoint.clone(),
        ca: Some(pki.dir.join("ca.crt")),
        client: Some(client.clone()),
    };
    let serial = first_handshake(&good, &mut rx).await.expect("handshake");
    let want = {
        use rustls::pki_types::pem::PemObject;
        brdo::tls::PeerCert::from_der(
            &rustls::pki_types::CertificateDer::from_pem_file(&client.0).expect("pem"),
        )
        .serial
    };
    assert_eq!(serial, want);

    // A collector whose certificate does not chain to the configured CA
    // is refused by the exporter: the handshake fails.
    let other_ca = OtlpTarget {
        ca: Some(pki.foreign.join("ca.crt")),
        ..good.clone()
    };
    let refused = first_handshake(&other_ca, &mut rx).await;
    assert!(refused.is_err(), "{refused:?}");

    // TLS settings with a plaintext endpoint are a configuration error,
    // not a silent downgrade.
    let plaintext = OtlpTarget {
        endpoint: format!("http://localhost:{port}"),
        ..good.clone()
    };
    let err = plaintext.span_exporter().expect_err("refused");
    assert!(err.to_string().contains("https://"), "{err}");
}
