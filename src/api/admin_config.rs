//! `GET /v1/admin/config`: the effective configuration an operator is
//! running, without secrets, with its digest and its weakened settings.
//!
//! Why: the `config_start` audit record carries the digest and the
//! weakenings; this endpoint lets an operator (or an accreditor) see the
//! configuration behind that digest without shell access to the host.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::problem::ApiError;
use crate::app::AppState;
use crate::config_report::ConfigReport;

/// The answer of `GET /v1/admin/config` (documentation only; the body is
/// [`ConfigReport`]).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ConfigView {
    /// The effective configuration by section (`server`, `tls`, `database`,
    /// `accreditation`, `audit`, `crypto`, `policy`, `retention`,
    /// `storage`, `pki`, `federation`), paths resolved; `tls.client_ca` is
    /// a path, or a list of paths when several CAs are configured.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// SHA-256 (hex) of the RFC 8785 canonical form of `config`.
    pub digest: String,
    /// Settings weaker than their safe defaults (empty when none).
    pub weakened: Vec<WeakenedView>,
}

/// One setting weaker than its safe default.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct WeakenedView {
    /// `section.key`, e.g. `tls.min_version`.
    pub setting: String,
    /// Its value now.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// The safe default.
    #[schema(value_type = Object)]
    pub default: serde_json::Value,
    /// What the difference gives up.
    pub risk: String,
}

/// `GET /v1/admin/config`.
#[utoipa::path(
    get,
    path = "/v1/admin/config",
    tag = "operators",
    operation_id = "admin_config",
    summary = "The effective configuration, its digest and weakened settings (operator)",
    description = "The configuration the gateway started with, as JSON (passwords in the \
        database URL replaced; key material is never part of it), the SHA-256 of its RFC 8785 \
        canonical form (the `config_digest` of the `config_start` audit record), and every \
        setting weaker than its safe default with that default and what it gives up.",
    responses(
        (status = 200, description = "The effective configuration", body = ConfigView)
    )
)]
pub async fn show(State(app): State<Arc<AppState>>) -> Result<Response, ApiError> {
    Ok(Json(ConfigReport::of(&app.config)).into_response())
}
