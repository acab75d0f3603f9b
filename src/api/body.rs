//! Reading request bodies: bounded, JSON only, with errors that say why.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use serde_json::Value;

use super::problem::ApiError;
use crate::domain::FieldError;

/// Reads at most `limit` bytes; a larger body is `413 payload_too_large`
/// without reading the rest.
pub(crate) async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge {
        limit: limit as u64,
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large);
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large)
        }
        Err(e) => {
            tracing::info!(error = %e, "request body could not be read");
            Err(ApiError::InvalidMessage(vec![FieldError {
                field: "(body)".into(),
                message: "the request body could not be read completely".into(),
            }]))
        }
    }
}

/// Checks that a body, if typed, is JSON.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE) {
        None => Ok(()),
        Some(v) => {
            let essence = v
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if essence == "application/json" {
                Ok(())
            } else {
                Err(ApiError::UnsupportedMediaType)
            }
        }
    }
}

/// Reads a bounded JSON body into a `Value`, reporting a syntax error with
/// its line and column (never echoing the body).
pub async fn read_json(body: Body, headers: &HeaderMap, limit: usize) -> Result<Value, ApiError> {
    require_json(headers)?;
    let bytes = read_limited(body, headers, limit).await?;
    parse_json(&bytes)
}

/// Parses JSON text; the error names the position only.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::InvalidMessage(vec![FieldError {
            field: "(body)".into(),
            message: format!(
                "is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        }])
    })
}
