//! PKCS#12 bundles, the format browsers (NSS/Chromium) and OpenSSL import client certificates from.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
    PrivateKeyChain,
};

use super::PkiError;

/// PBKDF2 and MAC iteration count: well above OpenSSL 3's default of 2048,
/// yet below the 1,000,000 that p12-keystore accepts when reading.
pub(crate) const ITERATIONS: u32 = 200_000;

/// Builds a password-protected PKCS#12 with the key, the leaf and the CA certificate.
///
/// Encryption is PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for both the key and
/// the certificate bag, with an HMAC-SHA256 integrity MAC; OpenSSL 3 and NSS
/// read this, and no legacy RC2/3DES is involved. The key's friendly name is
/// `friendly_name`, which is what a browser shows in its certificate picker.
pub(crate) fn build(
    friendly_name: &str,
    key_pkcs8_der: &[u8],
    leaf_der: &[u8],
    ca_der: &[u8],
    password: &str,
) -> Result<Vec<u8>, PkiError> {
    if password.is_empty() {
        return Err(PkiError::EmptyPassword {
            stem: friendly_name.to_owned(),
        });
    }
    let action = || format!("build {friendly_name}.p12");
    let key = PrivateKey::from_der(key_pkcs8_der).map_err(|e| PkiError::crypto(action(), e))?;
    let leaf = Certificate::from_der(leaf_der).map_err(|e| PkiError::crypto(action(), e))?;
    let ca = Certificate::from_der(ca_der).map_err(|e| PkiError::crypto(action(), e))?;
    // The local key ID ties the key bag to the leaf's cert bag; a digest of the
    // leaf is the conventional choice and is unique per certificate.
    let local_key_id = ring::digest::digest(&ring::digest::SHA256, leaf_der)
        .as_ref()
        .to_vec();
    let chain = PrivateKeyChain::new(local_key_id, key, [leaf, ca]);

    let mut store = KeyStore::new();
    store.add_entry(friendly_name, KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(|e| PkiError::crypto(action(), e))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;
    use std::process::Command;

    use p12_keystore::Pkcs12ImportPolicy;

    use super::*;

    /// Opens a bundle and returns (alias, key DER, certificate DERs), to compare with the inputs.
    pub(crate) fn open(p12: &[u8], password: &str) -> (String, Vec<u8>, Vec<Vec<u8>>) {
        let store = KeyStore::from_pkcs12(p12, password, Pkcs12ImportPolicy::Strict).unwrap();
        let (alias, chain) = store.private_key_chain().unwrap();
        let certs = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        (alias.to_owned(), chain.key().as_der().to_vec(), certs)
    }

    /// Runs `openssl pkcs12 -info` on the file; `None` when openssl is not installed.
    pub(crate) fn openssl_info(path: &Path, password: &str) -> Option<(bool, String)> {
        let out = Command::new("openssl")
            .arg("pkcs12")
            .arg("-in")
            .arg(path)
            .arg("-info")
            .arg("-nokeys")
            .arg("-passin")
            .arg(format!("pass:{password}"))
            .output()
            .ok()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some((out.status.success(), text))
    }

    /// Imports the file into a scratch NSS database (what Chromium and Firefox use);
    /// `None` when the NSS tools are not installed.
    pub(crate) fn nss_import(path: &Path, password: &str) -> Option<bool> {
        let db = tempfile::tempdir().ok()?;
        let db_arg = format!("sql:{}", db.path().display());
        let created = Command::new("certutil")
            .args(["-N", "-d", &db_arg, "--empty-password"])
            .output()
            .ok()?;
        if !created.status.success() {
            return None;
        }
        let out = Command::new("pk12util")
            .arg("-i")
            .arg(path)
            .args(["-d", &db_arg, "-W", password])
            .output()
            .ok()?;
        Some(out.status.success())
    }

    #[test]
    fn empty_password_is_refused() {
        let err = build("operator-x", &[], &[], &[], "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the PKCS#12 password for operator-x.p12 must not be empty"
        );
    }

    #[test]
    fn garbage_inputs_are_errors_not_panics() {
        let err = build("partner-AB", b"junk", b"junk", b"junk", "pw").unwrap_err();
        assert!(err.to_string().contains("partner-AB.p12"), "{err}");
    }
}
