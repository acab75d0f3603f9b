//! Mutual TLS and identity (SPEC §1): who gets in, and as whom.

use std::sync::Arc;
use std::time::Duration;

use brdo_tools::client::{Client, Protocol, tls_config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::harness::*;

fn roots(gw: &TestGateway) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(gw.pki.join("ca.crt")).expect("ca");
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.expect("pem")).expect("root");
    }
    roots
}

/// A rustls client config without a client certificate.
fn anonymous_config(
    gw: &TestGateway,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots(gw))
        .with_no_client_auth()
}

#[tokio::test]
async fn partner_certificate_is_accepted_over_http1_and_http2() {
    let gw = TestGateway::start().await;
    let r = gw
        .partner("RS-MOI")
        .get("/v1/inbox", &[])
        .await
        .expect("h1");
    assert_eq!(r.status, 200);
    let r = gw
        .partner_h2("RS-MOI")
        .get("/v1/inbox", &[])
        .await
        .expect("h2");
    assert_eq!(r.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn no_certificate_is_refused() {
    let gw = TestGateway::start().await;
    let before = gw.audit_size().await;
    let client = Client::new(
        anonymous_config(&gw, &[&rustls::version::TLS13]),
        gw.addr(),
        "localhost",
        Protocol::Http1,
    );
    // TLS 1.3: the server's rejection arrives after the client's handshake
    // completes, so the request (not the connect) is what fails.
    assert!(client.get("/v1/inbox", &[]).await.is_err());
    assert_eq!(
        gw.audit_size().await,
        before,
        "refused handshakes never reach the API"
    );
    gw.stop().await;
}

#[tokio::test]
async fn foreign_ca_certificate_is_refused() {
    let gw = TestGateway::start().await;
    let foreign = &Pki::shared().foreign;
    let cfg = tls_config(
        &foreign.join("partner-AL-CTD.crt"),
        &foreign.join("partner-AL-CTD.key"),
        &gw.pki.join("ca.crt"),
        Protocol::Http1,
    )
    .expect("config");
    let client = Client::new(cfg, gw.addr(), "localhost", Protocol::Http1);
    assert!(client.get("/v1/inbox", &[]).await.is_err());
    gw.stop().await;
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let gw = TestGateway::start().await;
    assert!(gw.client("expired").get("/v1/inbox", &[]).await.is_err());
    // The same identity with a valid certificate gets in.
    assert_eq!(
        gw.partner("AL-CTD")
            .get("/v1/inbox", &[])
            .await
            .expect("ok")
            .status,
        200
    );
    gw.stop().await;
}

#[tokio::test]
async fn tls12_is_refused_by_default() {
    let gw = TestGateway::start().await;
    let cfg = anonymous_config(&gw, &[&rustls::version::TLS12]);
    let tcp = TcpStream::connect(gw.addr()).await.expect("tcp");
    let name = ServerName::try_from("localhost").expect("name");
    let res = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await;
    assert!(
        res.is_err(),
        "a TLS 1.2-only client must not complete a handshake"
    );
    gw.stop().await;
}

#[tokio::test]
async fn tls12_opt_in_negotiates_only_ecdhe_aead_suites() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.tls.min_version = brdo::config::TlsMinVersion::Tls12;
    })
    .await;
    let cert: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(gw.pki.join("partner-AL-CTD.crt"))
            .expect("cert")
            .collect::<Result<_, _>>()
            .expect("pem");
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(gw.pki.join("partner-AL-CTD.key"))
        .expect("key");
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .expect("versions")
    .with_root_certificates(roots(&gw))
    .with_client_auth_cert(cert, key)
    .expect("client cert");
    let tcp = TcpStream::connect(gw.addr()).await.expect("tcp");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("with the opt-in, a TLS 1.2 client with a certificate gets in");
    let (_, session) = tls.get_ref();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let suite = session.negotiated_cipher_suite().expect("suite").suite();
    assert!(
        brdo::tls::is_ecdhe_aead(suite),
        "negotiated {suite:?}, not an ECDHE AEAD suite"
    );
    gw.stop().await;
}

#[tokio::test]
async fn certificates_without_a_usable_identity_get_no_identity() {
    let gw = TestGateway::start().await;
    for stem in ["no-uri", "two-uris", "unknown-partner", "malformed-uri"] {
        let r = gw
            .client(stem)
            .get("/v1/inbox", &[])
            .await
            .expect("request");
        let p = assert_problem(&r, 403, "no_identity");
        assert!(
            p["detail"].as_str().is_some_and(|d| d.len() > 20),
            "{stem}: {p}"
        );
        let rec = gw.audit_of(&r).await;
        assert_eq!(rec["action"], "deny", "{stem}");
        assert_eq!(rec["outcome"], "denied");
        assert_eq!(rec["code"], "no_identity");
        assert_eq!(rec["actor"]["role"], "unidentified");
        assert!(
            rec["actor"]["cert_serial"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert_eq!(rec["details"]["attempted"], "list");
    }
    gw.stop().await;
}

#[tokio::test]
async fn other_roles_get_forbidden_role() {
    let gw = TestGateway::start().await;
    for stem in ["dpo-gateway", "dpo-RS-MOI", "operator-admin"] {
        let r = gw
            .client(stem)
            .get("/v1/inbox", &[])
            .await
            .expect("request");
        assert_problem(&r, 403, "forbidden_role");
        let r = gw
            .client(stem)
            .post_json("/v1/messages", &[OFFICER], &message())
            .await
            .expect("request");
        assert_problem(&r, 403, "forbidden_role");
        let rec = gw.audit_of(&r).await;
        assert_eq!(rec["action"], "deny");
        assert_eq!(rec["details"]["attempted"], "collect");
    }
    assert_eq!(gw.count("messages").await, 0);
    gw.stop().await;
}

#[tokio::test]
async fn silent_connections_are_dropped_after_the_handshake_timeout() {
    let gw =
        TestGateway::start_with(&Pki::shared().dir, |c| c.server.handshake_timeout_secs = 1).await;
    let mut silent = TcpStream::connect(gw.addr()).await.expect("tcp");
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("closed by the server well before 5 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closes the connection");
    // Meanwhile real clients are served.
    assert_eq!(
        gw.partner("AL-CTD")
            .get("/v1/inbox", &[])
            .await
            .expect("ok")
            .status,
        200
    );
    gw.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| c.server.max_connections = 2).await;
    let a = gw.partner("AL-CTD");
    let b = gw.partner("RS-MOI");
    assert_eq!(a.get("/v1/inbox", &[]).await.expect("a").status, 200);
    assert_eq!(b.get("/v1/inbox", &[]).await.expect("b").status, 200);
    // Both keep-alive connections hold their slots; a third is closed
    // once its handshake is done (a handshake takes no slot, so clients
    // without a certificate cannot hold them).
    assert!(
        gw.partner("EU-ECTC").get("/v1/inbox", &[]).await.is_err(),
        "a third connection is not served"
    );
    // When one closes its connection, a new one fits again.
    a.disconnect().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = gw.partner("EU-ECTC");
    assert_eq!(c.get("/v1/inbox", &[]).await.expect("c").status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn certificate_revoked_before_start_is_refused() {
    let pki = Pki::create();
    let serial = std::fs::read(pki.dir.join("partner-RS-MOI.crt")).expect("cert");
    let serial =
        brdo::tls::PeerCert::from_der(&CertificateDer::from_pem_slice(&serial).expect("pem"))
            .serial;
    brdo::pki::revoke(
        &pki.dir,
        &serial,
        brdo::pki::RevocationReason::KeyCompromise,
        time::OffsetDateTime::now_utc(),
    )
    .expect("revoke");
    let gw = TestGateway::start_with(&pki.dir, |_| {}).await;
    assert!(
        gw.partner("RS-MOI").get("/v1/inbox", &[]).await.is_err(),
        "revoked: no handshake"
    );
    assert_eq!(
        gw.partner("AL-CTD")
            .get("/v1/inbox", &[])
            .await
            .expect("ok")
            .status,
        200
    );
    gw.stop().await;
}

/// A TCP connection that never sends a ClientHello has shown no
/// certificate; it must not hold a connection slot. Every slot filled by
/// such stallers (from the same address as the partner, so no per-address
/// rule can tell them apart) must still leave certified partners served.
#[tokio::test]
async fn clients_without_a_certificate_cannot_take_every_connection_slot() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.max_connections = 8;
        c.server.handshake_timeout_secs = 30;
    })
    .await;
    let mut stallers = Vec::new();
    for _ in 0..16 {
        stallers.push(TcpStream::connect(gw.addr()).await.expect("tcp"));
    }
    for p in ["RS-MOI", "EU-ECTC"] {
        let r = gw.partner(p).get("/v1/inbox", &[]).await;
        assert_eq!(
            r.map(|r| r.status).map_err(|e| e.to_string()),
            Ok(200),
            "{p} is served while 16 stallers wait"
        );
    }
    drop(stallers);
    gw.stop().await;
}
