//! The OpenAPI description: served over mTLS to every role, audited, and
//! identical to the committed `openapi.json`.

use serde_json::Value;

use crate::harness::{TestGateway, text};

/// The committed copy must be what the code generates. To regenerate:
/// `cargo run -- openapi > openapi.json`, or run this test with
/// `BRDO_UPDATE_OPENAPI=1`.
#[test]
fn committed_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = brdo::api::openapi::document_json();
    if std::env::var_os("BRDO_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, generated).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json differs from what the code generates; regenerate it with \
         `cargo run -- openapi > openapi.json` (or BRDO_UPDATE_OPENAPI=1 cargo test --test it openapi::)"
    );
}

#[tokio::test]
async fn served_to_every_role_and_audited() {
    let gw = TestGateway::start().await;
    for stem in ["partner-AL-CTD", "dpo-gateway", "operator-admin"] {
        let resp = gw
            .client(stem)
            .get("/v1/openapi.json", &[])
            .await
            .expect("get");
        assert_eq!(resp.status, 200, "{stem}: {}", text(&resp.body));
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(
            text(&resp.body),
            brdo::api::openapi::document_json(),
            "{stem}"
        );
        let rec = gw.audit_of(&resp).await;
        assert_eq!(rec["action"], "inspect", "{stem}");
        assert_eq!(rec["outcome"], "allowed", "{stem}");
    }
}

#[test]
fn brdo_openapi_prints_the_document() {
    let out = crate::harness::brdo(&["openapi"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["openapi"], "3.1.0");
    assert_eq!(text(&out.stdout), brdo::api::openapi::document_json());
}
