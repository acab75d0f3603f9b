//! The headers every response carries for the browsers that hold operator
//! and DPO certificates.
//!
//! The API answers JSON, CSV and attachments a partner uploaded (whose
//! media type the partner chose); none of it is meant to be rendered,
//! framed, cached on a shared workstation or leak its URL onward. The
//! `/dpo` page sets its own, looser policy (its one stylesheet) and keeps
//! it; everything else gets [`API_CSP`].

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// The policy of every response that sets none: nothing may load, run,
/// frame it, submit from it or change its base; `sandbox` gives anything
/// rendered anyway an opaque origin.
pub const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox";

/// Adds the browser security headers to `response`.
pub fn add(response: &mut Response) {
    let h = response.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(API_CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
