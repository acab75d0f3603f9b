//! The mTLS HTTP API (SPEC §3).
//!
//! `routes` is the table of endpoints and roles; `context` is the gate every
//! request passes (identity, route, role, audit), with `cross_site` refusing
//! requests browsers send for other sites and `security_headers` stamping
//! every answer; `problem` maps errors to problem
//! documents; `body` reads bounded JSON bodies; `caller` hands a request's
//! identity and audit notes to the operations (`app::ops`); `messages` and
//! `inbox` are the partner endpoints, each parse -> operation -> answer.

pub mod admin;
pub(crate) mod admin_config;
pub mod admin_peers;
pub mod attachments;
pub mod audit;
pub(crate) mod audit_safe;
pub mod bodies;
pub mod body;
pub mod caller;
pub mod context;
pub mod cross_site;
pub(crate) mod dpo_page;
pub mod federation;
pub mod federation_batch;
pub mod inbox;
pub mod lifecycle;
pub mod messages;
pub mod openapi;
pub mod operation;
pub mod params;
pub mod problem;
pub mod request_ctx;
pub mod retention;
pub mod routes;
pub mod schema;
pub mod security_headers;
pub(crate) mod upload_rate;

use std::sync::Arc;

use axum::Router;
use axum::middleware;

pub use problem::ApiError;
pub use request_ctx::RequestCtx;

use crate::app::AppState;

/// The complete API router with the gate around every route.
pub fn router(app: Arc<AppState>) -> Router {
    routes::build()
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(app.clone(), context::gate))
        .with_state(app)
}
