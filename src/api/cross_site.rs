//! Refusing requests a browser sends on another site's behalf.
//!
//! Operator and DPO certificates are issued as PKCS#12 for browsers, and a
//! browser presents them to every request for the gateway's origin, also
//! those a page on another site makes it send (a form, an image, a
//! `fetch` with `mode: "no-cors"`). Two independent checks keep such
//! requests from any handler:
//!
//! - [`cross_site_refusal`]: modern browsers say where a request comes
//!   from in `Sec-Fetch-Site` and `Origin`; anything but the gateway's own
//!   origin (or a navigation the user started, `none`) is refused.
//! - [`media_type_refusal`]: without a CORS preflight, which the gateway
//!   never grants, a page can only send a form's media types or none, so a
//!   state-changing call that requires another type cannot be forged even
//!   by a browser that sends neither header.
//!
//! Partner systems are not browsers and send neither header.

use axum::http::{HeaderMap, HeaderValue, header};

use super::problem::ApiError;
use super::routes::Accepts;

/// The `Sec-Fetch-Site` values that mean the request is not cross-site:
/// the gateway's own pages, and navigations the user started (address
/// bar, bookmark).
const SAME_SITE_FETCH: &[&str] = &["same-origin", "none"];

/// The media types a page can send without a preflight (the CORS
/// "safelisted" request types).
const FORM_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// Why the request must be refused as cross-site, if it must.
///
/// `authority` is the host (and port) the request was sent to, from the
/// `Host` header or the HTTP/2 `:authority`; an `Origin` is accepted only
/// when it is `https://` followed by it. A browser sets both itself, so a
/// page cannot make them agree for another site. Absent headers are fine
/// (non-browser clients); an `Origin` the gateway cannot compare is not.
pub(crate) fn cross_site_refusal(headers: &HeaderMap, authority: Option<&str>) -> Option<ApiError> {
    match single(headers, "sec-fetch-site") {
        Single::Absent => {}
        Single::Repeated => return Some(refused("Sec-Fetch-Site is sent more than once")),
        Single::One(v) => {
            let v = v.trim().to_ascii_lowercase();
            if !SAME_SITE_FETCH.contains(&v.as_str()) {
                // Only the standard values are named; anything else is
                // the caller's text and not echoed.
                let said = match v.as_str() {
                    "cross-site" => "cross-site",
                    "same-site" => "same-site (another origin on the same site)",
                    _ => "an unknown value",
                };
                return Some(refused(&format!(
                    "Sec-Fetch-Site says {said}; only same-origin requests and user-initiated navigations are served"
                )));
            }
        }
    }
    match single(headers, "origin") {
        Single::Absent => None,
        Single::Repeated => Some(refused("Origin is sent more than once")),
        Single::One(origin) => {
            let own = authority.map(|a| own_origins(a.trim()));
            let same =
                own.is_some_and(|own| own.iter().any(|o| o.eq_ignore_ascii_case(origin.trim())));
            if same {
                None
            } else if authority.is_none() {
                Some(refused(
                    "Origin is sent but the request names no host, so it cannot be compared with the gateway's own origin",
                ))
            } else {
                Some(refused(
                    "Origin names another site than the gateway's own origin",
                ))
            }
        }
    }
}

/// Why the body's declared media type must be refused for a route that
/// takes `accepts`, if it must.
pub(crate) fn media_type_refusal(accepts: Accepts, headers: &HeaderMap) -> Option<ApiError> {
    match accepts {
        Accepts::Nothing => None,
        Accepts::Json => match single(headers, header::CONTENT_TYPE.as_str()) {
            Single::One(v) if essence(v) == "application/json" => None,
            _ => Some(ApiError::UnsupportedMediaType),
        },
        Accepts::Raw => match single(headers, header::CONTENT_TYPE.as_str()) {
            Single::One(v)
                if !v.trim().is_empty() && !FORM_TYPES.contains(&essence(v).as_str()) =>
            {
                None
            }
            _ => Some(ApiError::UploadMediaType),
        },
    }
}

/// `scheme://authority` as a browser writes the gateway's origin; a
/// browser leaves out the default port, which a `Host` header may carry.
fn own_origins(authority: &str) -> Vec<String> {
    let mut out = vec![format!("https://{authority}")];
    if let Some(host) = authority.strip_suffix(":443") {
        out.push(format!("https://{host}"));
    }
    out
}

/// The lower-cased `type/subtype` of a media type, parameters dropped.
fn essence(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

enum Single<'a> {
    Absent,
    Repeated,
    /// The one value, as text (a value that is not visible ASCII is text
    /// no check accepts: it becomes the empty string).
    One(&'a str),
}

fn single<'a>(headers: &'a HeaderMap, name: &str) -> Single<'a> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Single::Absent,
        (Some(_), Some(_)) => Single::Repeated,
        (Some(v), None) => Single::One(text(v)),
    }
}

fn text(v: &HeaderValue) -> &str {
    v.to_str().unwrap_or_default()
}

fn refused(why: &str) -> ApiError {
    ApiError::CrossSiteRequest(format!(
        "{why}. The gateway does not serve requests a page on another site makes a browser send."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    type Headers = &'static [(&'static str, &'static str)];

    #[test]
    fn cross_site_table() {
        let own = Some("gw.example:8443");
        // (headers, the request's authority, served)
        let cases: &[(Headers, Option<&str>, bool)] = &[
            (&[], own, true),
            (&[("sec-fetch-site", "same-origin")], own, true),
            (&[("sec-fetch-site", "none")], own, true),
            (&[("sec-fetch-site", "Same-Origin")], own, true),
            (&[("sec-fetch-site", "cross-site")], own, false),
            (&[("sec-fetch-site", "same-site")], own, false),
            (&[("sec-fetch-site", "bogus")], own, false),
            (&[("sec-fetch-site", "")], own, false),
            (
                &[("sec-fetch-site", "none"), ("sec-fetch-site", "none")],
                own,
                false,
            ),
            (&[("origin", "https://gw.example:8443")], own, true),
            (&[("origin", "HTTPS://GW.example:8443")], own, true),
            (
                &[("origin", "https://gw.example")],
                Some("gw.example:443"),
                true,
            ),
            (
                &[("origin", "https://gw.example")],
                Some("gw.example"),
                true,
            ),
            (&[("origin", "https://evil.example")], own, false),
            (&[("origin", "http://gw.example:8443")], own, false),
            (&[("origin", "https://gw.example:8444")], own, false),
            (
                &[("origin", "https://gw.example:8443.evil.example")],
                own,
                false,
            ),
            (&[("origin", "null")], own, false),
            (&[("origin", "")], own, false),
            (&[("origin", "https://gw.example:8443")], None, false),
            (
                &[
                    ("origin", "https://gw.example:8443"),
                    ("origin", "https://gw.example:8443"),
                ],
                own,
                false,
            ),
            (
                &[
                    ("origin", "https://gw.example:8443"),
                    ("sec-fetch-site", "cross-site"),
                ],
                own,
                false,
            ),
            (
                &[
                    ("origin", "https://evil.example"),
                    ("sec-fetch-site", "same-origin"),
                ],
                own,
                false,
            ),
        ];
        for (pairs, authority, ok) in cases {
            let refusal = cross_site_refusal(&headers(pairs), *authority);
            assert_eq!(refusal.is_none(), *ok, "{pairs:?} to {authority:?}");
            if let Some(e) = refusal {
                assert_eq!(e.code(), "cross_site_request");
                assert!(
                    !e.to_string().contains("evil"),
                    "the caller's text is not echoed"
                );
            }
        }
    }

    #[test]
    fn media_type_table() {
        let cases: &[(Headers, bool, bool)] = &[
            // (headers, JSON route accepts, upload route accepts)
            (&[], false, false),
            (&[("content-type", "application/json")], true, true),
            (
                &[("content-type", "Application/JSON; charset=utf-8")],
                true,
                true,
            ),
            (&[("content-type", "application/octet-stream")], false, true),
            (&[("content-type", "application/pdf")], false, true),
            (
                &[("content-type", "application/x-www-form-urlencoded")],
                false,
                false,
            ),
            (
                &[("content-type", "multipart/form-data; boundary=x")],
                false,
                false,
            ),
            (&[("content-type", "text/plain")], false, false),
            (
                &[("content-type", " Text/Plain ;charset=utf-8")],
                false,
                false,
            ),
            (&[("content-type", "")], false, false),
            (
                &[
                    ("content-type", "application/json"),
                    ("content-type", "text/plain"),
                ],
                false,
                false,
            ),
        ];
        for (pairs, json, upload) in cases {
            let h = headers(pairs);
            assert!(media_type_refusal(Accepts::Nothing, &h).is_none());
            assert_eq!(
                media_type_refusal(Accepts::Json, &h).is_none(),
                *json,
                "{pairs:?}"
            );
            assert_eq!(
                media_type_refusal(Accepts::Raw, &h).is_none(),
                *upload,
                "{pairs:?}"
            );
        }
        assert_eq!(
            media_type_refusal(Accepts::Raw, &headers(&[("content-type", "text/plain")]))
                .map(|e| e.status().as_u16()),
            Some(415)
        );
    }
}
