//! Parameter faults the framework finds before a handler runs.
//!
//! Handlers read their query strings themselves and answer `400` naming
//! the parameter. One fault is found earlier, by the path extractor: a
//! percent-encoded path segment that is not UTF-8 (`/v1/messages/%FF`).
//! Its rejection is a bare `400` in plain text, which no client can match
//! to a field; every id in a path names a message, attachment, partner or
//! record, and a segment that is not even text names none, so it answers
//! `404 not_found` like any other id that cannot exist (SPEC §8).

use axum::response::Response;

use super::problem::{ApiError, ErrorInfo};

/// Replaces a rejection the framework rendered itself (a `400` without a
/// problem document) by `404 not_found`; any other response passes
/// unchanged.
pub(crate) fn framework_rejection(response: Response, request_id: &str) -> Response {
    let rendered_by_us = response.extensions().get::<ErrorInfo>().is_some()
        || response.extensions().get::<ApiError>().is_some();
    if response.status() == axum::http::StatusCode::BAD_REQUEST && !rendered_by_us {
        return ApiError::NotFound.to_response(Some(request_id));
    }
    response
}
