//! Accepting PEM or DER input, so callers (and operators copying files around) need not care which.

use super::PkiError;

/// Returns the DER inside `bytes`: the first PEM block if it looks like PEM, else `bytes` itself.
///
/// `label` is the expected PEM label (e.g. `CERTIFICATE`, `X509 CRL`); a
/// different label is an error so a key is never mistaken for a certificate.
pub(crate) fn der_from_pem_or_der(
    bytes: &[u8],
    label: &str,
    origin: &str,
    what: &'static str,
) -> Result<Vec<u8>, PkiError> {
    let trimmed = bytes.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN ") {
        return Ok(bytes.to_vec());
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(trimmed)
        .map_err(|e| PkiError::malformed(origin, what, format!("bad PEM encoding ({e})")))?;
    if pem.label != label {
        return Err(PkiError::malformed(
            origin,
            what,
            format!(
                "found a PEM block labelled \"{}\" instead of \"{label}\"",
                pem.label
            ),
        ));
    }
    Ok(pem.contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_passes_through_and_wrong_label_fails() {
        assert_eq!(
            der_from_pem_or_der(&[0x30, 0x00], "CERTIFICATE", "t", "certificate").unwrap(),
            vec![0x30, 0x00]
        );
        let pem = "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n";
        let ok = der_from_pem_or_der(pem.as_bytes(), "PRIVATE KEY", "k", "key").unwrap();
        assert_eq!(ok, vec![1, 2, 3]);
        let err =
            der_from_pem_or_der(pem.as_bytes(), "CERTIFICATE", "f.crt", "certificate").unwrap_err();
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
        assert!(
            err.to_string()
                .starts_with("f.crt is not a valid certificate"),
            "{err}"
        );
    }
}
