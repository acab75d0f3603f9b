//! Trust between authorities (SPEC §11 "Identities and trust"), with real
//! certificates from independent CAs made by `pki init`: which CA may vouch
//! for which identity, the gateway role's gate, and the roots following a
//! policy reload.
//!
//! Every `pki init` CA is named "Brdo CA", so these tests also hold the
//! gateway to telling same-named CAs apart by their keys.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use brdo::api::routes::ROUTES;
use brdo::pki::{self, Subject};
use brdo_tools::client::{Client, ClientResponse, Protocol};
use time::OffsetDateTime;

use crate::harness::{OFFICER, P12_PASSWORD, TestGateway, assert_problem, text};

/// The CAs of the matrix, each a `pki init` directory.
struct Cas {
    /// The gateway's own CA (first `client_ca`, its CRL in force).
    a: PathBuf,
    /// Another authority's CA, the second `client_ca`.
    b: PathBuf,
    /// A partner-only CA: not a `client_ca`, BA-SIPA is bound to it.
    c: PathBuf,
    /// Peer RS-NCB's CA; its `gateway.crt` names urn:brdo:gateway:RS-NCB.
    px: PathBuf,
    /// Peer ME-NCB's CA.
    py: PathBuf,
    _keep: tempfile::TempDir,
}

fn issue(dir: &Path, subject: Subject) {
    pki::issue(dir, &subject, 30, P12_PASSWORD, OffsetDateTime::now_utc()).expect("issue");
}

fn partner(id: &str) -> Subject {
    Subject::Partner(id.into())
}

impl Cas {
    fn shared() -> &'static Cas {
        static CAS: OnceLock<Cas> = OnceLock::new();
        CAS.get_or_init(Cas::create)
    }

    fn create() -> Cas {
        let keep = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        let dir = |n: &str| keep.path().join(n);
        let (a, b, c, px, py) = (dir("a"), dir("b"), dir("c"), dir("px"), dir("py"));
        pki::init_gateway(&a, &[], Some("AL-NCB"), now).expect("init a");
        pki::init(&b, &[], now).expect("init b");
        pki::init(&c, &[], now).expect("init c");
        pki::init_gateway(&px, &[], Some("RS-NCB"), now).expect("init px");
        pki::init_gateway(&py, &[], Some("ME-NCB"), now).expect("init py");
        for id in ["AL-CTD", "RS-MOI", "ME-MOI"] {
            issue(&a, partner(id));
        }
        issue(&a, Subject::Dpo("AL-CTD".into()));
        issue(&a, Subject::Gateway("RS-NCB".into()));
        issue(&a, Subject::Gateway("ZZ-NCB".into()));
        for id in ["AL-CTD", "RS-MOI", "BA-SIPA"] {
            issue(&b, partner(id));
        }
        issue(&b, Subject::Dpo("AL-CTD".into()));
        issue(&c, partner("BA-SIPA"));
        issue(&px, partner("RS-MOI"));
        issue(&px, partner("AL-CTD"));
        issue(&py, Subject::Gateway("RS-NCB".into()));
        Cas {
            a,
            b,
            c,
            px,
            py,
            _keep: keep,
        }
    }

    /// The policy: the demo partners, AL-CTD bound to CA A, BA-SIPA to CA
    /// C, ME-MOI behind peer RS-NCB; peers RS-NCB (CA PX) and, when
    /// `with_me`, ME-NCB (CA PY).
    fn policy(&self, with_me: bool) -> String {
        let ca = |d: &Path| d.join("ca.crt").display().to_string();
        let mut text = brdo_tools::demo_data::POLICY
            .replace(
                "id = \"AL-CTD\"\n",
                &format!("id = \"AL-CTD\"\nca = \"{}\"\n", ca(&self.a)),
            )
            .replace(
                "id = \"BA-SIPA\"\n",
                &format!("id = \"BA-SIPA\"\nca = \"{}\"\n", ca(&self.c)),
            )
            .replace("id = \"ME-MOI\"\n", "id = \"ME-MOI\"\nvia = \"RS-NCB\"\n");
        let mut peer = |id: &str, dir: &Path, port: u16| {
            text.push_str(&format!(
                "\n[[peer]]\nid = \"{id}\"\nurl = \"https://127.0.0.1:{port}\"\nca = \"{}\"\n\
                 envelope_key = \"{}\"\n",
                ca(dir),
                dir.join("audit-signing.pub").display()
            ));
        };
        peer("RS-NCB", &self.px, 9443);
        if with_me {
            peer("ME-NCB", &self.py, 9444);
        }
        text
    }

    /// A gateway on CA A (and B as a second client CA) with [`Self::policy`].
    async fn gateway(&self, with_me: bool) -> TestGateway {
        let policy = self.policy(with_me);
        let (a, b) = (self.a.clone(), self.b.clone());
        TestGateway::start_with(&self.a, move |c| {
            c.tls.client_ca =
                brdo::config::ClientCas::new(vec![a.join("ca.crt"), b.join("ca.crt")])
                    .expect("two files");
            c.federation.id = brdo::domain::PartnerId::parse("AL-NCB");
            let file = c.policy.file.clone();
            std::fs::write(&file, policy).expect("policy");
        })
        .await
    }
}

/// A client presenting `dir/<stem>.crt`, trusting the gateway's CA.
fn client(gw: &TestGateway, dir: &Path, stem: &str) -> Client {
    let cfg = brdo_tools::client::tls_config(
        &dir.join(format!("{stem}.crt")),
        &dir.join(format!("{stem}.key")),
        &gw.pki.join("ca.crt"),
        Protocol::Http1,
    )
    .expect("client TLS config");
    Client::new(cfg, gw.addr(), "localhost", Protocol::Http1)
}

/// The serial of `dir/<stem>.crt`, as audit records name it.
fn serial(dir: &Path, stem: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_file(dir.join(format!("{stem}.crt")))
        .expect("cert");
    brdo::tls::PeerCert::from_der(&der).serial
}

/// Asserts a `403 no_identity` whose detail names `rule`, and its audit
/// record: a denial by an unidentified caller, naming the certificate.
async fn assert_refused(
    gw: &TestGateway,
    r: &ClientResponse,
    rule: &str,
    cert_serial: &str,
    what: &str,
) {
    let v = assert_problem(r, 403, "no_identity");
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(rule), "{what}: {detail}");
    assert!(
        !detail.contains("BEGIN"),
        "{what}: no CA contents: {detail}"
    );
    let rec = gw.audit_of(r).await;
    assert_eq!(
        (
            rec["action"].as_str(),
            rec["outcome"].as_str(),
            rec["code"].as_str()
        ),
        (Some("deny"), Some("denied"), Some("no_identity")),
        "{what}: {rec}"
    );
    assert_eq!(rec["actor"]["role"], "unidentified", "{what}");
    assert_eq!(rec["actor"]["cert_serial"], cert_serial, "{what}");
}

/// What a cell of the matrix must answer.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Served: 200.
    Ok,
    /// Identified, but the route is not for its role.
    ForbiddenRole,
    /// `403 no_identity` naming this rule.
    NoIdentity(&'static str),
}

const BOUND: &str = "is bound to its [[partner]] ca";
const PEER_CA: &str = "vouches for nothing but that peer's gateway id";
const PEER_ONLY: &str = "must be vouched for by its [[peer]] ca and no other CA";
const CLIENT_CA_ONLY: &str = "must be issued by a [tls] client_ca";

#[tokio::test]
async fn which_ca_may_vouch_for_which_identity() {
    let cas = Cas::shared();
    let gw = cas.gateway(true).await;
    let (a, b, c, px, py) = (&cas.a, &cas.b, &cas.c, &cas.px, &cas.py);
    #[rustfmt::skip]
    let matrix: &[(&str, &Path, &str, &str, Want)] = &[
        // A partner bound to CA A: its CA alone vouches for it and its DPO.
        ("bound partner from its CA", a, "partner-AL-CTD", "/v1/inbox", Want::Ok),
        ("bound partner from another client CA", b, "partner-AL-CTD", "/v1/inbox", Want::NoIdentity(BOUND)),
        ("bound partner from a peer CA", px, "partner-AL-CTD", "/v1/inbox", Want::NoIdentity(PEER_CA)),
        ("bound partner's DPO from its CA", a, "dpo-AL-CTD", "/v1/audit", Want::Ok),
        ("bound partner's DPO from another client CA", b, "dpo-AL-CTD", "/v1/audit", Want::NoIdentity(BOUND)),
        // A partner bound to a CA that is no client_ca.
        ("partner bound to a partner-only CA", c, "partner-BA-SIPA", "/v1/inbox", Want::Ok),
        ("that partner from a client CA", b, "partner-BA-SIPA", "/v1/inbox", Want::NoIdentity(BOUND)),
        ("operator from a partner-only CA", c, "operator-admin", "/v1/admin/partners", Want::NoIdentity(CLIENT_CA_ONLY)),
        // An unbound partner: any client CA, never a peer's.
        ("unbound partner from CA A", a, "partner-RS-MOI", "/v1/inbox", Want::Ok),
        ("unbound partner from CA B", b, "partner-RS-MOI", "/v1/inbox", Want::Ok),
        ("unbound partner from a peer CA", px, "partner-RS-MOI", "/v1/inbox", Want::NoIdentity(PEER_CA)),
        // A gateway id: its peer's CA and no other.
        ("gateway X from peer X's CA", px, "gateway", "/v1/inbox", Want::ForbiddenRole),
        ("gateway X from peer Y's CA", py, "gateway-RS-NCB", "/v1/inbox", Want::NoIdentity(PEER_ONLY)),
        ("gateway Y from peer Y's CA", py, "gateway", "/v1/inbox", Want::ForbiddenRole),
        ("gateway X from a client CA", a, "gateway-RS-NCB", "/v1/inbox", Want::NoIdentity(PEER_ONLY)),
        // Operators and the gateway DPO: client CAs only.
        ("operator from CA A", a, "operator-admin", "/v1/admin/partners", Want::Ok),
        ("operator from CA B", b, "operator-admin", "/v1/admin/partners", Want::Ok),
        ("operator from a peer CA", px, "operator-admin", "/v1/admin/partners", Want::NoIdentity(PEER_CA)),
        ("gateway DPO from a peer CA", px, "dpo-gateway", "/v1/audit", Want::NoIdentity(PEER_CA)),
    ];
    for (what, dir, stem, path, want) in matrix {
        let r = client(&gw, dir, stem)
            .get(path, &[OFFICER])
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        match want {
            Want::Ok => assert_eq!(r.status, 200, "{what}: {}", text(&r.body)),
            Want::ForbiddenRole => {
                assert_problem(&r, 403, "forbidden_role");
                let rec = gw.audit_of(&r).await;
                assert_eq!(rec["actor"]["role"], "gateway", "{what}: {rec}");
                assert!(
                    rec["actor"]["id"]
                        .as_str()
                        .is_some_and(|g| g.ends_with("-NCB")),
                    "{what}: {rec}"
                );
            }
            Want::NoIdentity(rule) => {
                assert_refused(&gw, &r, rule, &serial(dir, stem), what).await;
            }
        }
    }
    // The operator sees both client CAs in the effective configuration.
    let r = client(&gw, a, "operator-admin")
        .get("/v1/admin/config", &[])
        .await
        .expect("config");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(
        r.json()["config"]["tls"]["client_ca"],
        serde_json::json!([
            a.join("ca.crt").display().to_string(),
            b.join("ca.crt").display().to_string()
        ])
    );
    gw.stop().await;
}

/// Every route of the table refuses a gateway certificate: a known peer's
/// with `forbidden_role` (no route names the gateway role until the
/// federation endpoints exist), an unknown gateway's and a partner behind a
/// peer with `no_identity`; each refusal audited.
#[tokio::test]
async fn every_route_but_the_federation_endpoints_refuses_gateway_certificates() {
    let cas = Cas::shared();
    let gw = cas.gateway(false).await;
    let callers: [(&str, &Path, &str, &str, &str); 3] = [
        (
            "known peer",
            &cas.px,
            "gateway",
            "forbidden_role",
            "gateway",
        ),
        (
            "unknown gateway",
            &cas.a,
            "gateway-ZZ-NCB",
            "no_identity",
            "unidentified",
        ),
        (
            "partner behind a peer",
            &cas.a,
            "partner-ME-MOI",
            "no_identity",
            "unidentified",
        ),
    ];
    for (who, dir, stem, code, role) in callers {
        let c = client(&gw, dir, stem);
        for route in ROUTES {
            // The federation endpoints are the gateway role's own: a known
            // peer reaches them (tests/it/federation.rs covers them).
            if who == "known peer" && route.op.roles == brdo::api::routes::Roles::GATEWAY {
                continue;
            }
            let path = route
                .path
                .replace("{id}", "0190f0e0-0000-7000-8000-000000000000")
                .replace("{attachment_id}", "0190f0e0-0000-7000-8000-000000000001")
                .replace("{seq}", "1");
            let what = format!("{who}: {} {}", route.method, route.path);
            let body = (route.method != hyper::Method::GET).then(|| b"{}".to_vec());
            let r = c
                .request(
                    route.method.clone(),
                    &path,
                    &[OFFICER, ("content-type", "application/json")],
                    body,
                )
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let v = assert_problem(&r, 403, code);
            if code == "no_identity" {
                let detail = v["detail"].as_str().unwrap_or_default();
                assert!(
                    detail.contains("no peer") || detail.contains("behind a peer"),
                    "{what}: {detail}"
                );
            }
            let rec = gw.audit_of(&r).await;
            assert_eq!(rec["code"], code, "{what}: {rec}");
            assert_eq!(rec["actor"]["role"], role, "{what}: {rec}");
        }
    }
    gw.stop().await;
}

/// The roots and the bindings follow a policy reload: a peer added to the
/// policy is accepted, and a binding added applies to an open connection
/// at its next request.
#[tokio::test]
async fn roots_and_bindings_follow_a_policy_reload() {
    let cas = Cas::shared();
    let gw = cas.gateway(false).await;
    let operator = client(&gw, &cas.a, "operator-admin");
    // Peer ME-NCB is not in the policy yet: its CA is no anchor, so its
    // gateway's certificate does not even complete a handshake.
    let me_gateway = client(&gw, &cas.py, "gateway");
    assert!(
        me_gateway.get("/v1/inbox", &[]).await.is_err(),
        "not a peer yet"
    );
    // RS-MOI is unbound: CA B may vouch for it, on a connection kept open.
    let rs_from_b = client(&gw, &cas.b, "partner-RS-MOI");
    let r = rs_from_b.get("/v1/inbox", &[OFFICER]).await.expect("inbox");
    assert_eq!(r.status, 200, "{}", text(&r.body));

    let policy = cas.policy(true).replace(
        "id = \"RS-MOI\"\n",
        &format!(
            "id = \"RS-MOI\"\nca = \"{}\"\n",
            cas.a.join("ca.crt").display()
        ),
    );
    std::fs::write(&gw.config.policy.file, policy).expect("policy");
    let r = operator
        .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
        .await
        .expect("reload");
    assert_eq!(r.status, 200, "{}", text(&r.body));

    let r = me_gateway.get("/v1/inbox", &[]).await.expect("now a peer");
    assert_problem(&r, 403, "forbidden_role");
    let r = rs_from_b.get("/v1/inbox", &[OFFICER]).await.expect("inbox");
    assert_refused(&gw, &r, BOUND, &serial(&cas.b, "partner-RS-MOI"), "rebound").await;
    let r = client(&gw, &cas.a, "partner-RS-MOI")
        .get("/v1/inbox", &[OFFICER])
        .await
        .expect("inbox");
    assert_eq!(r.status, 200, "{}", text(&r.body));

    // A policy naming a CA file that is missing is refused whole; the
    // anchors in force stay.
    let broken = cas.policy(true).replace(
        &cas.py.join("ca.crt").display().to_string(),
        "/nonexistent/ca.crt",
    );
    std::fs::write(&gw.config.policy.file, broken).expect("policy");
    let r = operator
        .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
        .await
        .expect("reload");
    assert_eq!(r.status, 400, "{}", text(&r.body));
    assert!(
        text(&r.body).contains("/nonexistent/ca.crt"),
        "{}",
        text(&r.body)
    );
    let r = me_gateway
        .get("/v1/inbox", &[])
        .await
        .expect("still a peer");
    assert_problem(&r, 403, "forbidden_role");
    gw.stop().await;
}

/// Sender signatures are held to the same bindings as connections: a
/// partner bound to CA A cannot sign with a certificate another client CA
/// or a peer's CA issued in its name.
#[tokio::test]
async fn sender_signatures_obey_the_bindings() {
    use brdo::signature::{self, submission_statement};
    let cas = Cas::shared();
    let gw = cas.gateway(true).await;
    let m = crate::harness::message();
    let sign = |dir: &Path| {
        let key = std::fs::read(dir.join("partner-AL-CTD.key")).expect("key");
        let crt = std::fs::read(dir.join("partner-AL-CTD.crt")).expect("crt");
        let st = submission_statement("AL-CTD", &m, &|_| String::new()).expect("statement");
        signature::sign(&key, &crt, &st).expect("sign")
    };
    let al = client(&gw, &cas.a, "partner-AL-CTD");
    for (what, dir, want) in [
        ("its own CA", &cas.a, None),
        ("another client CA", &cas.b, Some(BOUND)),
        ("a peer's CA", &cas.px, Some(PEER_CA)),
    ] {
        let sig = sign(dir);
        let before = gw.count("messages").await;
        let r = al
            .post_json("/v1/messages", &[OFFICER, ("brdo-signature", &sig)], &m)
            .await
            .expect("submit");
        match want {
            None => assert_eq!(r.status, 201, "{what}: {}", text(&r.body)),
            Some(rule) => {
                let p = assert_problem(&r, 400, "invalid_signature");
                let detail = p["detail"].as_str().unwrap_or_default();
                assert!(detail.contains(rule), "{what}: {detail}");
                assert_eq!(gw.audit_of(&r).await["code"], "invalid_signature");
                assert_eq!(gw.count("messages").await, before, "{what}: nothing stored");
            }
        }
    }
    gw.stop().await;
}

/// The CRL of the gateway's own CA still refuses its revoked certificates
/// at the handshake with a second client CA beside it, and is never
/// applied to that other CA's certificates (same name "Brdo CA", another
/// key), which have no CRL here (SECURITY.md).
#[tokio::test]
async fn the_own_crl_still_bites_beside_another_client_ca() {
    let pki = crate::harness::Pki::create();
    brdo::pki::revoke(
        &pki.dir,
        &serial(&pki.dir, "partner-RS-MOI"),
        brdo::pki::RevocationReason::KeyCompromise,
        OffsetDateTime::now_utc(),
    )
    .expect("revoke");
    let foreign = pki.foreign.clone();
    let own = pki.dir.clone();
    let gw = TestGateway::start_with(&pki.dir, move |c| {
        c.tls.client_ca =
            brdo::config::ClientCas::new(vec![own.join("ca.crt"), foreign.join("ca.crt")])
                .expect("two files");
    })
    .await;
    assert!(
        gw.partner("RS-MOI").get("/v1/inbox", &[]).await.is_err(),
        "revoked by the own CA's CRL: no handshake"
    );
    let r = gw
        .partner("AL-CTD")
        .get("/v1/inbox", &[])
        .await
        .expect("own");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let r = client(&gw, &pki.foreign, "partner-AL-CTD")
        .get("/v1/inbox", &[])
        .await
        .expect("the other CA's certificate completes a handshake");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    gw.stop().await;
}
